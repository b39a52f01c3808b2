"""Span trees: captured trees, the expected-tree builder :func:`span`, matching and diffs.

A captured tree is built from the test's finished spans by parent id; siblings are ordered
by start time, then by the order in which they started (under a frozen clock siblings often
share a start time). An expected tree is built with :func:`span`; matching reports the
first divergence, and :func:`render_mismatch` shows both trees with that place marked.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import SpecError
from .matchers import describe, matches

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

STATUSES = ("UNSET", "OK", "ERROR")
KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
MAX_RENDERED_LINES = 200
MAX_ATTRIBUTES_SHOWN = 6


class SpanNode:
    """A captured span with its children, in start order."""

    __slots__ = ("children", "parent", "seq", "span")

    def __init__(self, span: ReadableSpan, seq: int) -> None:
        self.span = span
        self.seq = seq
        self.children: list[SpanNode] = []
        self.parent: SpanNode | None = None

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self.span.attributes or {}

    @property
    def status(self) -> str:
        return self.span.status.status_code.name

    @property
    def status_description(self) -> str | None:
        return self.span.status.description

    @property
    def kind(self) -> str:
        return self.span.kind.name

    @property
    def events(self) -> list[tuple[str, Mapping[str, Any]]]:
        return [(e.name, e.attributes or {}) for e in self.span.events]

    @property
    def duration_ms(self) -> float:
        start, end = self.span.start_time or 0, self.span.end_time or 0
        return (end - start) / 1e6

    def walk(self) -> Iterator[SpanNode]:
        """This node and all its descendants, depth first, in start order."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))

    def descendants(self) -> Iterator[SpanNode]:
        it = self.walk()
        next(it)
        return it

    def path(self) -> str:
        names = []
        node: SpanNode | None = self
        while node is not None:
            names.append(node.name)
            node = node.parent
        return " > ".join(reversed(names))

    def __repr__(self) -> str:
        return f"<SpanNode {_node_line(self)} children={len(self.children)}>"


def build_forest(spans: Sequence[ReadableSpan], start_seq: Mapping[int, int]) -> list[SpanNode]:
    """Root nodes (spans whose parent was not captured), each tree in start order."""
    unknown = len(start_seq)
    nodes: dict[int, SpanNode] = {}
    for i, s in enumerate(spans):
        sid = s.context.span_id if s.context is not None else 0
        nodes[sid] = SpanNode(s, start_seq.get(sid, unknown + i))
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent = node.span.parent
        owner = nodes.get(parent.span_id) if parent is not None else None
        if owner is None:
            roots.append(node)
        else:
            node.parent = owner
            owner.children.append(node)

    def order(n: SpanNode) -> tuple[int, int]:
        return (n.span.start_time or 0, n.seq)

    for node in nodes.values():
        if len(node.children) > 1:
            node.children.sort(key=order)
    roots.sort(key=order)
    return roots


# ----------------------------------------------------------------------------------------
# expected trees


@dataclass(frozen=True)
class EventSpec:
    name: str
    attributes: Mapping[str, Any] | None = None

    def __repr__(self) -> str:
        attrs = f", attributes={_fmt_attrs(self.attributes)}" if self.attributes else ""
        return f"event({self.name!r}{attrs})"


def event(name: str, attributes: Mapping[str, Any] | None = None) -> EventSpec:
    """An expected span event; attributes match as a subset."""
    return EventSpec(name, attributes)


@dataclass(frozen=True, eq=False)
class SpanSpec:
    """An expected span; build it with :func:`span`, :func:`descendant` or :func:`absent`."""

    name: Any
    attributes: Mapping[str, Any] | None = None
    status: str | None = None
    status_description: Any = None
    kind: str | None = None
    events: tuple[EventSpec, ...] | None = None
    children: tuple[SpanSpec, ...] | None = None
    any_order: bool = False
    exact: bool = False
    count: int | None = None
    anywhere: bool = False
    duration_ms: Any = None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SpanNode):
            return match(self, other) is None
        if isinstance(other, list) and all(isinstance(n, SpanNode) for n in other):
            return match_forest([self], other) is None
        return NotImplemented

    __hash__ = object.__hash__

    def label(self) -> str:
        """The spec as the user wrote it, without children."""
        parts = [describe(self.name)]
        for key in ("attributes", "status", "status_description", "kind", "duration_ms", "count"):
            value = getattr(self, key)
            if value is not None:
                shown = _fmt_attrs(value) if key == "attributes" else describe(value)
                parts.append(f"{key}={shown}")
        if self.events:
            parts.append(f"events={list(self.events)!r}")
        if self.any_order:
            parts.append("any_order=True")
        if self.exact:
            parts.append("exact=True")
        fn = "descendant" if self.anywhere else ("absent" if self.count == 0 else "span")
        if fn == "absent":
            parts.remove("count=0")
        return f"{fn}({', '.join(parts)})"

    def __repr__(self) -> str:
        return self.label() if not self.children else f"{self.label()[:-1]}, children=[...])"


_SPAN_KEYWORDS = (
    "attributes",
    "status",
    "status_description",
    "kind",
    "events",
    "children",
    "any_order",
    "exact",
    "count",
    "duration_ms",
)


def span(name: Any, **options: Any) -> SpanSpec:
    """An expected span.

    ``name``: a string, a compiled regex or a predicate. Keyword options:
    ``attributes`` (a subset; values may be matchers: ``ANY``, a callable, a regex,
    ``pytest.approx``), ``status`` ("OK", "ERROR", "UNSET"), ``status_description``,
    ``kind`` ("INTERNAL", "CLIENT", ...), ``events`` (names or :func:`event` specs),
    ``duration_ms`` (a number or matcher), ``children`` (specs or names, matched in start
    order as a subsequence), ``any_order=True`` (children in any order), ``exact=True``
    (no other children allowed), ``count=N`` (exactly N siblings match; 0 means absent).
    """
    __tracebackhide__ = True
    _check_keywords("span", name, options)
    return _build(name, **options)


def _check_keywords(fn: str, name: Any, options: Mapping[str, Any]) -> None:
    __tracebackhide__ = True
    unknown = [k for k in options if k not in _SPAN_KEYWORDS]
    if unknown:
        hints = []
        for k in unknown:
            close = difflib.get_close_matches(k, _SPAN_KEYWORDS, n=1)
            hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise SpecError(
            f"{fn}({name!r}) got unknown keyword {', '.join(hints)}; "
            f"valid keywords: {', '.join(_SPAN_KEYWORDS)}"
        )


def descendant(name: Any, **options: Any) -> SpanSpec:
    """Like :func:`span`, but matches at any depth below the parent (or anywhere at top level).

    With ``count=N`` it asserts exactly N such descendants; without, at least one.
    """
    __tracebackhide__ = True
    _check_keywords("descendant", name, options)
    return _replace(_build(name, **options), anywhere=True)


def absent(name: Any, **options: Any) -> SpanSpec:
    """No sibling matches this spec (at top level: no root span does).

    ``absent`` is ``span(..., count=0)``: it looks at one level, like the specs beside it.
    For "no such span at any depth" use ``descendant(name, count=0)`` or
    ``telemetry.assert_no_span(name)``.
    """
    __tracebackhide__ = True
    if "count" in options:
        raise SpecError(f"absent({name!r}) takes no count: it means count=0")
    _check_keywords("absent", name, options)
    return _build(name, count=0, **options)


def _replace(spec: SpanSpec, **changes: Any) -> SpanSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def _build(
    name: Any,
    *,
    attributes: Mapping[str, Any] | None = None,
    status: Any = None,
    status_description: Any = None,
    kind: Any = None,
    events: Sequence[str | EventSpec] | None = None,
    children: Sequence[SpanSpec | str] | None = None,
    any_order: bool = False,
    exact: bool = False,
    count: int | None = None,
    duration_ms: Any = None,
) -> SpanSpec:
    __tracebackhide__ = True
    where = f"span({name!r})"
    if not (isinstance(name, str | re.Pattern) or callable(name)):
        raise SpecError(f"{where}: name must be a string, a compiled regex or a predicate")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise SpecError(f"{where}: attributes must be a mapping, got {type(attributes).__name__}")
    if status is not None:
        status = getattr(status, "name", status)
        if not isinstance(status, str) or status.upper() not in STATUSES:
            raise SpecError(f"{where}: status must be one of {', '.join(STATUSES)}, got {status!r}")
        status = status.upper()
    if kind is not None:
        kind = getattr(kind, "name", kind)
        if not isinstance(kind, str) or kind.upper() not in KINDS:
            raise SpecError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        kind = kind.upper()
    event_specs: tuple[EventSpec, ...] | None = None
    if events is not None:
        if isinstance(events, str | EventSpec):
            raise SpecError(f"{where}: events must be a list, e.g. events=[{events!r}]")
        event_specs = tuple(EventSpec(e) if isinstance(e, str) else e for e in events)
        for e in event_specs:
            if not isinstance(e, EventSpec):
                raise SpecError(f"{where}: each event must be a name or event(...), got {e!r}")
    child_specs: tuple[SpanSpec, ...] | None = None
    if children is not None:
        if isinstance(children, str | SpanSpec):
            raise SpecError(f"{where}: children must be a list, e.g. children=[{children!r}]")
        built = []
        for i, c in enumerate(children):
            if isinstance(c, str):
                c = span(c)
            if not isinstance(c, SpanSpec):
                raise SpecError(
                    f"{where}: children[{i}] must be span(...) or a name, got {type(c).__name__}"
                )
            built.append(c)
        child_specs = tuple(built)
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise SpecError(f"{where}: count must be a non-negative int, got {count!r}")
    return SpanSpec(
        name=name,
        attributes=dict(attributes) if attributes is not None else None,
        status=status,
        status_description=status_description,
        kind=kind,
        events=event_specs,
        children=child_specs,
        any_order=any_order,
        exact=exact,
        count=count,
        duration_ms=duration_ms,
    )


# ----------------------------------------------------------------------------------------
# matching


@dataclass
class Mismatch:
    """Where an expected tree first diverges from a captured one, and why."""

    reason: str
    spec: SpanSpec | None
    node: SpanNode | None
    depth: int = 0
    # Further captured spans the reason is about (all spans a count found, all extras).
    others: Sequence[SpanNode] = ()

    def where(self) -> str:
        return self.node.path() if self.node is not None else "top level"


def _self_mismatch(spec: SpanSpec, node: SpanNode) -> str | None:
    if not matches(spec.name, node.name):
        return f"name: expected {describe(spec.name)}, got {node.name!r}"
    attrs = node.attributes
    for key, want in (spec.attributes or {}).items():
        if key not in attrs:
            return f"attribute {key!r} missing (has {_fmt_attrs(attrs)})"
        if not matches(want, attrs[key]):
            return f"attribute {key!r}: expected {describe(want)}, got {attrs[key]!r}"
    if spec.status is not None and spec.status != node.status:
        desc = f" ({node.status_description})" if node.status_description else ""
        return f"status: expected {spec.status}, got {node.status}{desc}"
    if spec.status_description is not None and not matches(
        spec.status_description, node.status_description
    ):
        return (
            f"status description: expected {describe(spec.status_description)}, "
            f"got {node.status_description!r}"
        )
    if spec.kind is not None and spec.kind != node.kind:
        return f"kind: expected {spec.kind}, got {node.kind}"
    if spec.duration_ms is not None and not _duration_matches(spec.duration_ms, node.duration_ms):
        return f"duration: expected {describe(spec.duration_ms)} ms, got {node.duration_ms!r} ms"
    for ev in spec.events or ():
        found = any(
            name == ev.name
            and all(k in a and matches(v, a[k]) for k, v in (ev.attributes or {}).items())
            for name, a in node.events
        )
        if not found:
            seen = ", ".join(name for name, _ in node.events) or "none"
            return f"missing {ev!r} (events: {seen})"
    return None


def _duration_matches(expected: Any, actual: float) -> bool:
    # Timestamps are integer nanoseconds and freezegun's are float-based (~256 ns
    # rounding), so a plain number matches within a microsecond.
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        return abs(expected - actual) <= 1e-3
    return matches(expected, actual)


def match(spec: SpanSpec, node: SpanNode, depth: int = 0) -> Mismatch | None:
    """None if ``node`` and its subtree satisfy ``spec``; else the first divergence."""
    reason = _self_mismatch(spec, node)
    if reason is not None:
        return Mismatch(reason, spec, node, depth)
    if spec.children is None:
        return None
    return _match_children(spec.children, node.children, node, spec, depth + 1)


def match_forest(
    specs: Sequence[SpanSpec],
    roots: Sequence[SpanNode],
    *,
    any_order: bool = False,
    exact: bool = False,
) -> Mismatch | None:
    """Match top-level specs against the captured roots (ordered subsequence by default)."""
    holder = SpanSpec(name="<top level>", any_order=any_order, exact=exact)
    return _match_children(tuple(specs), list(roots), None, holder, 0)


def _matches(spec: SpanSpec, node: SpanNode, depth: int) -> bool:
    return match(spec, node, depth) is None


def _subtree(parent: SpanNode | None, siblings: Sequence[SpanNode]) -> Iterator[SpanNode]:
    if parent is not None:
        yield from parent.descendants()
    else:
        for root in siblings:
            yield from root.walk()


def _match_children(
    specs: tuple[SpanSpec, ...],
    children: Sequence[SpanNode],
    parent: SpanNode | None,
    holder: SpanSpec,
    depth: int,
) -> Mismatch | None:
    used: set[int] = set()
    pos = 0
    singles: list[SpanSpec] = []
    for spec in specs:
        if spec.anywhere:
            found = [n for n in _subtree(parent, children) if _matches(spec, n, depth)]
            if spec.count is None and not found:
                return _missing(spec, list(_subtree(parent, children)), parent, depth, "descendant")
            if spec.count is not None and len(found) != spec.count:
                return _count_mismatch(spec, found, parent, depth)
            # Direct children it matched are expected ones as far as exact=True goes.
            found_ids = {id(n) for n in found}
            used.update(i for i, c in enumerate(children) if id(c) in found_ids)
            continue
        if spec.count is not None:
            found_idx = [i for i, c in enumerate(children) if _matches(spec, c, depth)]
            if len(found_idx) != spec.count:
                return _count_mismatch(spec, [children[i] for i in found_idx], parent, depth)
            if found_idx:
                if not holder.any_order and found_idx[0] < pos:
                    return Mismatch(
                        f"{spec.label()} matched, but before the previous expected sibling "
                        "(children are matched in start order; use any_order=True)",
                        spec,
                        children[found_idx[0]],
                        depth,
                    )
                used.update(found_idx)
                pos = max(pos, found_idx[-1] + 1)
            continue
        if holder.any_order:
            singles.append(spec)
            continue
        for i in range(pos, len(children)):
            if i not in used and _matches(spec, children[i], depth):
                used.add(i)
                pos = i + 1
                break
        else:
            earlier = [
                children[i]
                for i in range(pos)
                if i not in used and _matches(spec, children[i], depth)
            ]
            if earlier:
                return Mismatch(
                    f"{spec.label()} matched only before the previous expected sibling "
                    "(children are matched in start order; use any_order=True)",
                    spec,
                    earlier[0],
                    depth,
                )
            taken = _taken(spec, children, used, depth)
            if taken is not None:
                return taken
            return _missing(
                spec, [c for i, c in enumerate(children) if i not in used], parent, depth, "child"
            )
    if singles:
        assignment = _assign(singles, children, used, depth)
        for spec, idx in zip(singles, assignment, strict=True):
            if idx is None:
                claimed = used | {i for i in assignment if i is not None}
                taken = _taken(spec, children, claimed, depth)
                if taken is not None:
                    return taken
                free = [c for i, c in enumerate(children) if i not in claimed]
                return _missing(spec, free, parent, depth, "child")
        used.update(i for i in assignment if i is not None)
    if holder.exact:
        extra = [c for i, c in enumerate(children) if i not in used]
        if extra:
            names = ", ".join(repr(c.name) for c in extra[:5])
            return Mismatch(
                f"unexpected {'child' if parent else 'root'} span(s) {names} (exact=True)",
                None,
                extra[0],
                depth,
                extra[1:],
            )
    return None


def _assign(
    specs: list[SpanSpec], children: Sequence[SpanNode], used: set[int], depth: int
) -> list[int | None]:
    """A maximum matching of specs to distinct unused children (Kuhn's augmenting paths)."""
    options = [
        [i for i, c in enumerate(children) if i not in used and _matches(s, c, depth)]
        for s in specs
    ]
    owner: dict[int, int] = {}

    def augment(si: int, seen: set[int]) -> bool:
        for ci in options[si]:
            if ci in seen:
                continue
            seen.add(ci)
            if ci not in owner or augment(owner[ci], seen):
                owner[ci] = si
                return True
        return False

    for si in range(len(specs)):
        augment(si, set())
    result: list[int | None] = [None] * len(specs)
    for ci, si in owner.items():
        result[si] = ci
    return result


def _taken(
    spec: SpanSpec, children: Sequence[SpanNode], claimed: set[int], depth: int
) -> Mismatch | None:
    """A mismatch for a spec whose only matches were claimed by other expected siblings."""
    taken = [children[i] for i in sorted(claimed) if _matches(spec, children[i], depth)]
    if not taken:
        return None
    n = len(taken)
    return Mismatch(
        f"{spec.label()} matches {n} span{'s' if n != 1 else ''} but "
        f"{'it is' if n == 1 else 'all are'} already matched by other expected siblings; "
        "each expected span needs a captured span of its own",
        spec,
        taken[0],
        depth,
    )


def _missing(
    spec: SpanSpec, candidates: Sequence[SpanNode], parent: SpanNode | None, depth: int, what: str
) -> Mismatch:
    where = f"under {parent.name!r}" if parent is not None else "among captured spans"
    if parent is None and what == "child":
        what = "root span"
    same_name = [c for c in candidates if matches(spec.name, c.name)]
    if same_name:
        # The closest candidate is the one whose divergence lies deepest; below the top
        # level its own reason is the clearest explanation.
        best = max((match(spec, c, depth) for c in same_name), key=lambda m: m.depth if m else -1)
        if best is not None:
            if best.depth > depth:
                return best
            return Mismatch(
                f"no {what} matched {spec.label()} {where}; closest: {best.reason}",
                best.spec,
                best.node,
                best.depth,
            )
    names = ", ".join(sorted({repr(c.name) for c in candidates})) or "none"
    return Mismatch(
        f"no {what} matched {spec.label()} {where} (candidates: {names})", spec, parent, depth
    )


def _count_mismatch(
    spec: SpanSpec, found: Sequence[SpanNode], parent: SpanNode | None, depth: int
) -> Mismatch:
    where = f"under {parent.name!r}" if parent is not None else "in the capture"
    if spec.count == 0:
        return Mismatch(
            f"expected no span matching {spec.label()} {where}, found {len(found)}",
            spec,
            found[0],
            depth,
            found[1:],
        )
    return Mismatch(
        f"expected exactly {_plural(spec.count or 0, 'span')} matching {spec.label()} {where}, "
        f"found {len(found)}",
        spec,
        found[0] if found else parent,
        depth,
        found[1:],
    )


# ----------------------------------------------------------------------------------------
# rendering


def _fmt_attrs(attrs: Mapping[str, Any], limit: int | None = None) -> str:
    items = list(attrs.items())
    shown = items if limit is None else items[:limit]
    parts = []
    for k, v in shown:
        text = describe(v)
        if len(text) > 40:
            text = text[:37] + "..."
        parts.append(f"{k}={text}")
    more = f", +{len(items) - len(shown)} more" if len(shown) < len(items) else ""
    return "{" + ", ".join(parts) + more + "}"


def _node_line(node: SpanNode) -> str:
    attrs = f" {_fmt_attrs(node.attributes, MAX_ATTRIBUTES_SHOWN)}" if node.attributes else ""
    status = node.status
    if node.status_description:
        status += f"({node.status_description})"
    return f"{node.name} [{status}] {node.duration_ms:g}ms{attrs}"


def render_tree(
    roots: Sequence[SpanNode],
    mark: SpanNode | Iterable[SpanNode] | None = None,
    *,
    color: bool = False,
    limit: int = MAX_RENDERED_LINES,
) -> list[str]:
    """Captured trees as indented lines; the ``mark`` node(s) are prefixed with ``>>``."""
    lines: list[str] = []
    total = 0
    if mark is None:
        marked: set[int] = set()
    elif isinstance(mark, SpanNode):
        marked = {id(mark)}
    else:
        marked = {id(n) for n in mark}

    def visit(node: SpanNode, depth: int) -> None:
        nonlocal total
        total += 1
        if len(lines) < limit:
            lines.append(_marked("  " * depth + _node_line(node), id(node) in marked, color))
        for child in node.children:
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    if total > len(lines):
        lines.append(f"... {total - len(lines)} more spans")
    return lines or ["(no spans captured)"]


def render_spec(
    specs: Sequence[SpanSpec], mark: SpanSpec | None = None, *, color: bool = False
) -> list[str]:
    lines: list[str] = []

    def visit(spec: SpanSpec, depth: int) -> None:
        lines.append(_marked("  " * depth + spec.label(), spec is mark, color))
        for child in spec.children or ():
            visit(child, depth + 1)

    for spec in specs:
        visit(spec, 0)
    return lines


def _marked(line: str, marked: bool, color: bool) -> str:
    if not marked:
        return "   " + line
    text = ">> " + line
    return f"\x1b[31;1m{text}\x1b[0m" if color else text


def render_mismatch(
    mismatch: Mismatch, specs: Sequence[SpanSpec], roots: Sequence[SpanNode], *, color: bool = False
) -> str:
    total = sum(1 for r in roots for _ in r.walk())
    lines = [
        f"span tree mismatch at {mismatch.where()}: {mismatch.reason}",
        "",
        "expected:",
        *render_spec(specs, mismatch.spec, color=color),
        "",
        f"captured ({_plural(len(roots), 'root')}, {_plural(total, 'span')}):",
        *render_tree(roots, [n for n in (mismatch.node, *mismatch.others) if n], color=color),
    ]
    return "\n".join(lines)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def use_color(markup: bool) -> bool:
    """Colour when the terminal takes it, unless NO_COLOR is set (https://no-color.org)."""
    return markup and not os.environ.get("NO_COLOR")


SpanPredicate = Callable[[SpanNode], bool]
