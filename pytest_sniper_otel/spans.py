"""Span trees: captured trees, the expected-tree builder :func:`span`, matching and diffs.

A captured tree is built by parent id from ended spans (:class:`Forest`); siblings are ordered
by start time, then by the order in which they started (under a frozen clock siblings often
share a start time). An expected tree is built with :func:`span`; matching reports the
first divergence; :mod:`.render` renders it.
"""

from __future__ import annotations

import bisect
import math
import operator
import os
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from .errors import SpecError, did_you_mean, shown
from .matchers import ANY, describe, matches

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.trace import SpanKind, StatusCode
    from typing_extensions import Unpack

STATUSES = ("UNSET", "OK", "ERROR")
KINDS = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
MAX_ATTRIBUTES_SHOWN = 6


class SpanNode:
    """A captured span with its children, in start order."""

    # Made for every span as it ends: only what ordering siblings needs is read here.
    __slots__ = ("__weakref__", "_parent", "children", "seq", "span", "start")

    def __init__(self, span: ReadableSpan, seq: int) -> None:
        self.span = span
        self.seq = seq
        self.start: int = span.start_time or 0
        self.children: list[SpanNode] = []
        self._parent: weakref.ref[SpanNode] | None = None

    @property
    def parent(self) -> SpanNode | None:
        """The parent node (None for a root), while its tree is alive: the link up is weak,
        so a test's trees are freed as soon as the test is done with them, without waiting
        for the garbage collector to find the cycles strong links would make."""
        ref = self._parent
        return ref() if ref is not None else None

    @property
    def name(self) -> str:
        return self.span.name

    @property
    def attributes(self) -> Mapping[str, Any]:
        return self.span.attributes or {}

    @property
    def status(self) -> str:
        # _name_, not .name: Enum's .name is a Python-level descriptor, read per candidate.
        return self.span.status.status_code._name_

    @property
    def status_description(self) -> str | None:
        return self.span.status.description

    @property
    def kind(self) -> str:
        return self.span.kind._name_

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
        return f"<SpanNode {node_line(self)} children={len(self.children)}>"


# Siblings sort by start time, then by start sequence (a frozen clock gives them one start).
_start_order = operator.attrgetter("start", "seq")


class Forest:
    """Span trees, built by parent id from ended spans, in any order and from any thread.

    Children usually end before their parent: they wait under their parent's id until it
    ends. Spans whose parent never ends here are the roots.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[int, SpanNode] = {}
        self._waiting: dict[int, list[SpanNode]] = {}  # parent span id -> ended children
        self._top: list[SpanNode] = []  # spans without a parent
        self._roots: list[SpanNode] | None = None
        self._fed = 0  # how many spans of the list given to add_ended are in the trees

    def add(self, span: ReadableSpan, seq: int, span_id: int | None = None) -> None:
        """Add an ended span (``span_id``: its id, when the caller has read it already)."""
        if span_id is None:
            span_id = span.context.span_id if span.context is not None else 0
        with self._lock:
            self._add(span, seq, span_id)

    def add_ended(
        self, spans: Sequence[ReadableSpan], start_seq: Mapping[int, int], unknown_seq: int
    ) -> None:
        """Add the spans of ``spans`` (a list that only grows, in the order spans ended) not
        added by an earlier call. A span missing from ``start_seq`` (span id -> start
        sequence) gets ``unknown_seq`` + its index: after every span that started here."""
        with self._lock:
            fed = self._fed
            for i in range(fed, len(spans)):
                span = spans[i]
                span_id = span.context.span_id if span.context is not None else 0
                self._add(span, start_seq.get(span_id, unknown_seq + i), span_id)
                fed = i + 1
            self._fed = fed

    def add_last(
        self, spans: Sequence[ReadableSpan], index: int, seq: int, span_id: int
    ) -> bool:
        """As a span ends: add ``spans[index]`` (its start sequence and id read already) if
        every span before it is in the trees. False when not (spans ended in other threads
        meanwhile): :meth:`add_ended` catches up."""
        with self._lock:
            if self._fed != index:
                return False
            self._add(spans[index], seq, span_id)
            self._fed = index + 1
            return True

    def _add(self, span: ReadableSpan, seq: int, span_id: int) -> None:
        node = SpanNode(span, seq)
        parent = span.parent
        self._roots = None
        self._nodes[span_id] = node
        early = self._waiting.pop(span_id, None)
        if early is not None:
            up = weakref.ref(node)
            for child in early:
                child._parent = up
            if len(early) > 1:
                early.sort(key=_start_order)
            node.children = early
        if parent is None:
            self._top.append(node)
            return
        parent_id = parent.span_id
        owner = self._nodes.get(parent_id)
        if owner is None:
            self._waiting.setdefault(parent_id, []).append(node)
            return
        node._parent = weakref.ref(owner)
        siblings = owner.children
        if not siblings or _start_order(siblings[-1]) <= _start_order(node):
            siblings.append(node)
        else:
            bisect.insort(siblings, node, key=_start_order)

    def roots(self) -> list[SpanNode]:
        """Root nodes (spans whose parent was not captured), in start order."""
        with self._lock:
            if self._roots is None:
                roots = self._top + [n for early in self._waiting.values() for n in early]
                roots.sort(key=_start_order)
                self._roots = roots
            return list(self._roots)

    def __len__(self) -> int:
        return len(self._nodes)


def build_forest(spans: Sequence[ReadableSpan], start_seq: Mapping[int, int]) -> list[SpanNode]:
    """Root nodes of ``spans`` (whose parent was not captured), each tree in start order.

    ``start_seq`` orders siblings that share a start time; spans missing from it go last."""
    forest = Forest()
    unknown = len(start_seq)
    for i, s in enumerate(spans):
        sid = s.context.span_id if s.context is not None else 0
        forest.add(s, start_seq.get(sid, unknown + i))
    return forest.roots()


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
    __tracebackhide__ = True
    if not isinstance(name, str):
        raise SpecError(f"event(name): name must be a str, got {shown(name)}")
    if attributes is not None and not isinstance(attributes, Mapping):
        raise SpecError(
            f"event({name!r}, attributes): attributes must be a mapping, got {shown(attributes)}"
        )
    return EventSpec(name, dict(attributes) if attributes is not None else None)



class SpanOptions(TypedDict, total=False):
    """The keywords of :func:`span`, :func:`descendant` and :func:`absent`."""

    attributes: Mapping[str, Any]
    status: str | StatusCode
    status_description: Any
    kind: str | SpanKind
    events: Sequence[str | EventSpec]
    children: Sequence[SpanSpec | str]
    any_order: bool
    exact: bool
    count: int
    duration_ms: Any


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


def span(name: Any, **options: Unpack[SpanOptions]) -> SpanSpec:
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
            hints.append(f"{k!r}" + did_you_mean(k, _SPAN_KEYWORDS, template=" ({})"))
        raise SpecError(
            f"{fn}({name!r}) got unknown keyword {', '.join(hints)}; "
            f"valid keywords: {', '.join(_SPAN_KEYWORDS)}"
        )


def descendant(name: Any, **options: Unpack[SpanOptions]) -> SpanSpec:
    """Like :func:`span`, but matches at any depth below the parent (or anywhere at top level).

    With ``count=N`` it asserts exactly N such descendants; without, at least one.
    """
    __tracebackhide__ = True
    _check_keywords("descendant", name, options)
    return _replace(_build(name, **options), anywhere=True)


def absent(name: Any, **options: Unpack[SpanOptions]) -> SpanSpec:
    """No sibling matches this spec (at top level: no root span does).

    ``absent`` is ``span(..., count=0)``: it looks at one level, like the specs beside it.
    For "no such span at any depth" use ``descendant(name, count=0)`` or
    ``telemetry.assert_no_span(name)``.
    """
    __tracebackhide__ = True
    if "count" in options:
        raise SpecError(f"absent({name!r}) takes no count: it means count=0")
    _check_keywords("absent", name, options)
    return _replace(_build(name, **options), count=0)


def _is_text_matcher(value: Any) -> bool:
    return (
        value is ANY
        or isinstance(value, str | re.Pattern)
        or (callable(value) and not isinstance(value, type))
    )


def _is_list(value: Any) -> bool:
    # A str, a mapping or a set is a common slip for a list: its items would be
    # characters, keys or in no order.
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


T = TypeVar("T")


def _spec_list(
    where: str, field: str, items: Any, kind: type[T], from_name: Callable[[str], T],
    many: str, one: str,
) -> tuple[T, ...]:
    """``items`` as a tuple of ``kind``, names converted; a SpecError names the slip."""
    __tracebackhide__ = True
    if isinstance(items, str | kind):
        raise SpecError(f"{where}: {field} must be a list, e.g. {field}=[{items!r}]")
    if not _is_list(items):
        raise SpecError(f"{where}: {field} must be a list of {many}, got {shown(items)}")
    built = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            item = from_name(item)
        if not isinstance(item, kind):
            raise SpecError(f"{where}: {field}[{i}] must be {one}, got {shown(item)}")
        built.append(item)
    return tuple(built)


def _event_specs(where: str, events: Any) -> tuple[EventSpec, ...]:
    __tracebackhide__ = True
    return _spec_list(where, "events", events, EventSpec, EventSpec,
                      "names or event(...)", "a name or event(...)")


def _child_specs(where: str, children: Any) -> tuple[SpanSpec, ...]:
    __tracebackhide__ = True
    return _spec_list(where, "children", children, SpanSpec, span,
                      "span(...) or names", "span(...) or a name")


def _check_duration(where: str, duration_ms: Any) -> None:
    __tracebackhide__ = True
    if isinstance(duration_ms, int | float) and not isinstance(duration_ms, bool):
        if not math.isfinite(duration_ms) or duration_ms < 0:
            raise SpecError(
                f"{where}: duration_ms must be a finite number >= 0, got {duration_ms!r}"
            )
        return
    # Anything else must be a matcher: ANY, a predicate, pytest.approx(...).
    if isinstance(duration_ms, str | bytes | bool | re.Pattern | Mapping | Sequence | set):
        raise SpecError(
            f"{where}: duration_ms must be a number of milliseconds or a matcher "
            f"(ANY, a predicate, pytest.approx(...)), got {shown(duration_ms)}"
        )


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
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            raise SpecError(f"{where}: attributes must be a mapping, got {shown(attributes)}")
        for key in attributes:
            if not isinstance(key, str):
                raise SpecError(f"{where}: attribute names must be str, got {shown(key)}")
    if status is not None:
        status = getattr(status, "name", status)
        if not isinstance(status, str) or status.upper() not in STATUSES:
            raise SpecError(f"{where}: status must be one of {', '.join(STATUSES)}, got {status!r}")
        status = status.upper()
    if status_description is not None and not _is_text_matcher(status_description):
        raise SpecError(
            f"{where}: status_description must be a str, a compiled regex or a predicate, "
            f"got {shown(status_description)}"
        )
    if kind is not None:
        kind = getattr(kind, "name", kind)
        if not isinstance(kind, str) or kind.upper() not in KINDS:
            raise SpecError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        kind = kind.upper()
    event_specs = None if events is None else _event_specs(where, events)
    child_specs = None if children is None else _child_specs(where, children)
    for flag, value in (("any_order", any_order), ("exact", exact)):
        if not isinstance(value, bool):
            raise SpecError(f"{where}: {flag} must be True or False, got {shown(value)}")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise SpecError(f"{where}: count must be a non-negative int, got {count!r}")
    if duration_ms is not None:
        _check_duration(where, duration_ms)
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


def _self_matches(spec: SpanSpec, node: SpanNode) -> bool:
    """Whether ``node`` itself (not its children) satisfies ``spec``: the fast test, run
    against every candidate; :func:`_self_mismatch` explains a failure."""
    name = spec.name
    if name.__class__ is str:
        if name != node.span.name:
            return False
    elif not matches(name, node.span.name):
        return False
    return _self_mismatch(spec, node) is None


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
    if not _self_matches(spec, node):
        return False
    return spec.children is None or match(spec, node, depth) is None


def _subtree(parent: SpanNode | None, siblings: Sequence[SpanNode]) -> Iterator[SpanNode]:
    """Every node below ``parent`` (at top level: every node), depth first, in start order."""
    stack = list(reversed(parent.children if parent is not None else siblings))
    while stack:
        node = stack.pop()
        yield node
        if node.children:
            stack.extend(reversed(node.children))


@dataclass
class _Siblings:
    """One level of matching: the captured siblings, which of them expected specs took, and
    the position an ordered match has reached."""

    children: Sequence[SpanNode]
    parent: SpanNode | None
    depth: int
    used: set[int]
    pos: int = 0

    def matching(self, spec: SpanSpec) -> list[int]:
        return [i for i, c in enumerate(self.children) if _matches(spec, c, self.depth)]


def _match_children(
    specs: tuple[SpanSpec, ...],
    children: Sequence[SpanNode],
    parent: SpanNode | None,
    holder: SpanSpec,
    depth: int,
) -> Mismatch | None:
    level = _Siblings(children, parent, depth, set())
    unordered: list[SpanSpec] = []
    for spec in specs:
        if spec.anywhere:
            found = _match_descendant(spec, level)
        elif spec.count is not None:
            found = _match_counted(spec, level, ordered=not holder.any_order)
        elif holder.any_order:
            unordered.append(spec)
            continue
        else:
            found = _match_next(spec, level)
        if found is not None:
            return found
    if unordered:
        found = _match_unordered(unordered, level)
        if found is not None:
            return found
    return _unexpected(level) if holder.exact else None


def _match_descendant(spec: SpanSpec, level: _Siblings) -> Mismatch | None:
    """``descendant(...)``: at any depth below the parent, at least one or exactly ``count``."""
    # Most nodes differ by name: skip them before any call.
    name = spec.name if spec.name.__class__ is str else None
    found = [
        n
        for n in _subtree(level.parent, level.children)
        if (name is None or n.span.name == name) and _matches(spec, n, level.depth)
    ]
    if spec.count is None and not found:
        candidates = list(_subtree(level.parent, level.children))
        return _missing(spec, candidates, level.parent, level.depth, "descendant")
    if spec.count is not None and len(found) != spec.count:
        return _count_mismatch(spec, found, level.parent, level.depth)
    # Direct children it matched are expected ones as far as exact=True goes.
    found_ids = {id(n) for n in found}
    level.used.update(i for i, c in enumerate(level.children) if id(c) in found_ids)
    return None


def _match_counted(spec: SpanSpec, level: _Siblings, *, ordered: bool) -> Mismatch | None:
    """``count=N``: exactly N siblings match, after the previous expected sibling."""
    found_idx = level.matching(spec)
    if len(found_idx) != spec.count:
        found = [level.children[i] for i in found_idx]
        return _count_mismatch(spec, found, level.parent, level.depth)
    if not found_idx:
        return None
    if ordered and found_idx[0] < level.pos:
        return Mismatch(
            f"{spec.label()} matched, but before the previous expected sibling "
            "(children are matched in start order; use any_order=True)",
            spec,
            level.children[found_idx[0]],
            level.depth,
        )
    level.used.update(found_idx)
    level.pos = max(level.pos, found_idx[-1] + 1)
    return None


def _match_next(spec: SpanSpec, level: _Siblings) -> Mismatch | None:
    """In start order: the first unused sibling after the previous expected one."""
    children, depth = level.children, level.depth
    for i in range(level.pos, len(children)):
        if i not in level.used and _matches(spec, children[i], depth):
            level.used.add(i)
            level.pos = i + 1
            return None
    earlier = [
        children[i]
        for i in range(level.pos)
        if i not in level.used and _matches(spec, children[i], depth)
    ]
    if earlier:
        return Mismatch(
            f"{spec.label()} matched only before the previous expected sibling "
            "(children are matched in start order; use any_order=True)",
            spec,
            earlier[0],
            depth,
        )
    free = [c for i, c in enumerate(children) if i not in level.used]
    return _taken(spec, children, level.used, depth) or _missing(
        spec, free, level.parent, depth, "child"
    )


def _match_unordered(specs: list[SpanSpec], level: _Siblings) -> Mismatch | None:
    """``any_order=True``: each spec gets a sibling of its own, in any order."""
    children, depth = level.children, level.depth
    assignment = _assign(specs, children, level.used, depth)
    claimed = level.used | {i for i in assignment if i is not None}
    for spec, idx in zip(specs, assignment, strict=True):
        if idx is None:
            free = [c for i, c in enumerate(children) if i not in claimed]
            return _taken(spec, children, claimed, depth) or _missing(
                spec, free, level.parent, depth, "child"
            )
    level.used.update(claimed)
    return None


def _unexpected(level: _Siblings) -> Mismatch | None:
    """``exact=True``: every sibling must be an expected one."""
    extra = [c for i, c in enumerate(level.children) if i not in level.used]
    if not extra:
        return None
    names = ", ".join(repr(c.name) for c in extra[:5])
    return Mismatch(
        f"unexpected {'child' if level.parent else 'root'} span(s) {names} (exact=True)",
        None,
        extra[0],
        level.depth,
        extra[1:],
    )


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
        f"expected exactly {plural(spec.count or 0, 'span')} matching {spec.label()} {where}, "
        f"found {len(found)}",
        spec,
        found[0] if found else parent,
        depth,
        found[1:],
    )


# ----------------------------------------------------------------------------------------
# rendering


def _fmt_attrs(
    attrs: Mapping[str, Any], limit: int | None = None, mask: Callable[[str], str] | None = None
) -> str:
    items = list(attrs.items())
    shown = items if limit is None else items[:limit]
    parts = []
    for k, v in shown:
        # Masked before clipping: a clipped secret would leave its prefix behind.
        text = describe(v) if mask is None else mask(describe(v))
        if len(text) > 40:
            text = text[:37] + "..."
        parts.append(f"{k if mask is None else mask(k)}={text}")
    more = f", +{len(items) - len(shown)} more" if len(shown) < len(items) else ""
    return "{" + ", ".join(parts) + more + "}"


_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def one_line(text: str) -> str:
    """``text`` with its line breaks and tabs escaped, so it stays on one line."""
    return text.translate(_ESCAPES)


def node_line(node: SpanNode, mask: Callable[[str], str] | None = None) -> str:
    """One captured span as it reads in a tree: name, status, duration, attributes."""
    hide = mask or _unchanged
    attrs = f" {_fmt_attrs(node.attributes, MAX_ATTRIBUTES_SHOWN, hide)}" if node.attributes else ""
    status = node.status
    if node.status_description:
        description = hide(one_line(node.status_description))
        if len(description) > 60:
            description = description[:57] + "..."
        status += f"({description})"
    return f"{hide(one_line(node.name))} [{status}] {node.duration_ms:g}ms{attrs}"


def _unchanged(text: str) -> str:
    return text


def plural(n: int, noun: str) -> str:
    """``1 span``, ``3 spans``, ``1,000 spans``."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def use_color(markup: bool) -> bool:
    """Colour when the terminal takes it, unless NO_COLOR is set (https://no-color.org)."""
    return markup and not os.environ.get("NO_COLOR")


SpanPredicate = Callable[[SpanNode], bool]
