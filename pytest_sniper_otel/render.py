"""How captured span trees read in failure messages and report sections.

Bounded by default: a small capture prints whole; a large one prints the path to a
divergence with a few siblings either side (the rest counted and folded by name), and a
report section prints each run of same-shaped sibling subtrees once, as ``x N``. Under
``-vv`` every span prints. Every line is one line (newlines in names and status
descriptions are escaped) and goes through a :class:`Masker`, so the values given to
``assert_no_secrets`` never print. Nothing here recurses: a tree 5,000 levels deep renders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from .spans import SpanNode, SpanSpec, node_line, one_line, plural

MAX_RENDERED_LINES = 200  # a full tree outside -vv
FULL_TREE_SPANS = 40  # captures up to this size print whole
FOLDED_LINES = 40  # the folded trees of a report section
FOCUS_LINES = 8  # the folded subtree under a marked span
CONTEXT_SIBLINGS = 2  # siblings shown on either side of the path to a divergence
MAX_MARKED = 3  # marked spans shown around a divergence
MAX_INDENT = 40  # deeper levels say their depth instead of indenting further
PATH_HEAD, PATH_TAIL = 2, 5  # ancestors kept at either end of a long path


class Masker:
    """Replaces secrets (strings or regexes) in text with ``***``."""

    MASK = "***"

    def __init__(self) -> None:
        self._patterns: list[re.Pattern[str]] = []

    def add(self, secret: str | re.Pattern[str]) -> None:
        if isinstance(secret, re.Pattern):
            self._patterns.append(secret)
            return
        # Also as repr() and one_line() print it: a quote or a newline in the secret is
        # escaped in those forms, and the plain form would no longer match.
        forms = sorted({secret, repr(secret)[1:-1], one_line(secret)}, key=len, reverse=True)
        self._patterns.append(re.compile("|".join(re.escape(f) for f in forms)))

    def __call__(self, text: str) -> str:
        for pattern in self._patterns:
            text = pattern.sub(_mask_match, text)
        return text

    def __bool__(self) -> bool:
        return bool(self._patterns)


def _mask_match(m: re.Match[str]) -> str:
    return Masker.MASK if m.group() else ""  # a regex that matches "" masks nothing


def no_mask(text: str) -> str:
    return text


Mask = Callable[[str], str]


def _indent(depth: int) -> str:
    if depth <= MAX_INDENT:
        return "  " * depth
    return "  " * MAX_INDENT + f"(depth {depth}) "


def _marked(line: str, marked: bool, color: bool) -> str:
    if not marked:
        return "   " + line
    text = ">> " + line
    return f"\x1b[31;1m{text}\x1b[0m" if color else text


def count_spans(roots: Iterable[SpanNode]) -> int:
    return sum(1 for root in roots for _ in root.walk())


def short_path(node: SpanNode | None, mask: Mask = no_mask) -> str:
    """``a > b > c``; a long path keeps its ends and counts the levels between."""
    if node is None:
        return "top level"
    names: list[str] = []
    current: SpanNode | None = node
    while current is not None:
        names.append(mask(one_line(current.name)))
        current = current.parent
    names.reverse()
    if len(names) > PATH_HEAD + PATH_TAIL + 1:
        hidden = len(names) - PATH_HEAD - PATH_TAIL
        names = [*names[:PATH_HEAD], f"... {hidden:,} levels ...", *names[-PATH_TAIL:]]
    return " > ".join(names)


# -- full trees ----------------------------------------------------------------------------


def render_tree(
    roots: Sequence[SpanNode],
    mark: SpanNode | Iterable[SpanNode] | None = None,
    *,
    color: bool = False,
    limit: int | None = MAX_RENDERED_LINES,
    mask: Mask = no_mask,
) -> list[str]:
    """Captured trees as indented lines, every span; the ``mark`` node(s) prefixed ``>>``.
    ``limit=None`` prints them all."""
    marked = _ids(mark)
    lines: list[str] = []
    total = 0
    stack: list[tuple[SpanNode, int]] = [(r, 0) for r in reversed(roots)]
    while stack:
        node, depth = stack.pop()
        total += 1
        if limit is None or len(lines) < limit:
            text = _indent(depth) + node_line(node, mask)
            lines.append(_marked(text, id(node) in marked, color))
        stack.extend((c, depth + 1) for c in reversed(node.children))
    if total > len(lines):
        lines.append(f"... {total - len(lines):,} more spans (-vv shows them all)")
    return lines or ["(no spans captured)"]


def _ids(mark: SpanNode | Iterable[SpanNode] | None) -> set[int]:
    if mark is None:
        return set()
    if isinstance(mark, SpanNode):
        return {id(mark)}
    return {id(n) for n in mark}


def render_spec(
    specs: Sequence[SpanSpec],
    mark: SpanSpec | None = None,
    *,
    color: bool = False,
    mask: Mask = no_mask,
) -> list[str]:
    lines: list[str] = []
    stack: list[tuple[SpanSpec, int]] = [(s, 0) for s in reversed(specs)]
    while stack:
        spec, depth = stack.pop()
        text = _indent(depth) + mask(one_line(spec.label()))
        lines.append(_marked(text, spec is mark, color))
        stack.extend((c, depth + 1) for c in reversed(spec.children or ()))
    return lines


# -- folded trees: each run of same-shaped siblings once -------------------------------------


def _shapes(roots: Sequence[SpanNode]) -> dict[int, int]:
    """A number per node (by id) that is equal for subtrees of the same shape: names,
    statuses and kinds, children in order (runs of equal children counted)."""
    known: dict[tuple[object, ...], int] = {}
    shape: dict[int, int] = {}
    stack: list[tuple[SpanNode, bool]] = [(r, False) for r in roots]
    while stack:
        node, children_done = stack.pop()
        if not children_done:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children)
            continue
        runs = tuple(_runs([shape[id(c)] for c in node.children]))
        key = (node.name, node.status, node.status_description, node.kind, runs)
        shape[id(node)] = known.setdefault(key, len(known))
    return shape


def _runs(values: Sequence[int]) -> Iterator[tuple[int, int]]:
    i = 0
    while i < len(values):
        j = i + 1
        while j < len(values) and values[j] == values[i]:
            j += 1
        yield values[i], j - i
        i = j


def _groups(
    levels: Sequence[Sequence[SpanNode]], shape: dict[int, int]
) -> Iterator[tuple[list[SpanNode], int]]:
    """Sibling lists of the same shape (the children of same-shaped spans), run by run:
    (the corresponding spans of every list, the run's length in one list)."""
    first = levels[0]
    i = 0
    while i < len(first):
        j = i + 1
        while j < len(first) and shape[id(first[j])] == shape[id(first[i])]:
            j += 1
        yield [siblings[k] for siblings in levels for k in range(i, j)], j - i
        i = j


def _group_line(group: Sequence[SpanNode], times: int, mask: Mask) -> str:
    """One line for same-shaped spans: ``x N`` when ``times`` > 1, ranges where they differ."""
    first = group[0]
    if len(group) == 1:
        return node_line(first, mask)
    status = first.status
    if first.status_description:
        status += f"({_clip(mask(one_line(first.status_description)), 60)})"
    durations = [n.duration_ms for n in group]
    low, high = min(durations), max(durations)
    took = f"{low:g}ms" if low == high else f"{low:g}-{high:g}ms"
    attrs = []
    for key, value in list(first.attributes.items())[:6]:
        values = {repr(n.attributes.get(key)) for n in group}
        shown = _clip(mask(repr(value)), 40) if len(values) == 1 else f"<{len(values)} values>"
        attrs.append(f"{mask(key)}={shown}")
    more = len(first.attributes) - len(attrs)
    if more > 0:
        attrs.append(f"+{more} more")
    joined = f" {{{', '.join(attrs)}}}" if attrs else ""
    count = f" x {times:,}," if times > 1 else ""
    return f"{mask(one_line(first.name))} [{status}]{count} {took}{joined}"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def render_folded(
    roots: Sequence[SpanNode], *, limit: int = FOLDED_LINES, mask: Mask = no_mask, depth: int = 0
) -> list[str]:
    """The trees with each run of same-shaped sibling subtrees printed once, as ``x N``
    (durations and attribute values as ranges over all of them); what doesn't fit in
    ``limit`` lines is counted."""
    shape = _shapes(roots)
    lines: list[str] = []
    hidden_lines = 0
    Groups = Iterator[tuple[list[SpanNode], int]]
    stack: list[tuple[Groups, int]] = [(_groups([roots], shape), depth)]
    while stack:
        groups, level = stack[-1]
        item = next(groups, None)
        if item is None:
            stack.pop()
            continue
        group, times = item
        if len(lines) < limit:
            lines.append("   " + _indent(level) + _group_line(group, times, mask))
        else:
            hidden_lines += 1
        if group[0].children:
            stack.append((_groups([n.children for n in group], shape), level + 1))
    if hidden_lines:
        lines.append(f"... {hidden_lines:,} more lines (-vv shows every span)")
    return lines or ["(no spans captured)"]


# -- around a divergence -------------------------------------------------------------------


def render_context(
    roots: Sequence[SpanNode],
    marks: Sequence[SpanNode],
    *,
    color: bool = False,
    mask: Mask = no_mask,
) -> list[str]:
    """The path from a root to each marked span with a few siblings either side; other
    siblings are counted by name, the marked span's own subtree is folded, and the middle
    of a very long path is counted."""
    focus = list(marks[:MAX_MARKED])
    if not focus:
        return render_folded(roots, mask=mask)
    focus_ids = {id(n) for n in focus}
    kept: set[int] = set()
    for marked in focus:
        current: SpanNode | None = marked
        while current is not None and id(current) not in kept:
            kept.add(id(current))
            current = current.parent
    path = _ancestors(focus[0])
    elided = path[PATH_HEAD:-PATH_TAIL] if len(path) > PATH_HEAD + PATH_TAIL + 1 else []
    skip_from = {id(elided[0]): elided[-1]} if elided else {}
    lines: list[str] = []
    stack: list[Iterator[tuple[str, SpanNode | None, int]]] = [
        _context_items(roots, 0, kept, mask)
    ]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            continue
        text, node, depth = item
        if node is None:
            lines.append("   " + _indent(depth) + text)
            continue
        last = skip_from.get(id(node))
        if last is not None:
            # The middle of a long path: one line, then the children of its last level.
            lines.append(f"   {_indent(depth)}... {len(elided):,} levels ...")
            stack.append(_context_items(last.children, depth, kept, mask))
            continue
        lines.append(_marked(_indent(depth) + text, id(node) in focus_ids, color))
        if id(node) in focus_ids:
            if node.children:
                lines += render_folded(node.children, limit=FOCUS_LINES, mask=mask, depth=depth + 1)
        elif id(node) in kept:
            stack.append(_context_items(node.children, depth + 1, kept, mask))
    more = len(marks) - len(focus)
    if more > 0:
        lines.append(f"(+{more:,} more marked spans not shown; -vv shows the full trees)")
    return lines


def _ancestors(node: SpanNode) -> list[SpanNode]:
    """Root first, ``node`` last."""
    chain: list[SpanNode] = []
    current: SpanNode | None = node
    while current is not None:
        chain.append(current)
        current = current.parent
    chain.reverse()
    return chain


def _context_items(
    siblings: Sequence[SpanNode], depth: int, kept: set[int], mask: Mask
) -> Iterator[tuple[str, SpanNode | None, int]]:
    """(text, node or None for a summary line, depth) for one level around the kept path."""
    on_path = [i for i, n in enumerate(siblings) if id(n) in kept]
    shown: set[int] = set()
    for i in on_path:
        shown.update(range(max(0, i - CONTEXT_SIBLINGS), i + CONTEXT_SIBLINGS + 1))
    i = 0
    while i < len(siblings):
        if i not in shown:
            j = i
            while j < len(siblings) and j not in shown:
                j += 1
            yield _summary(siblings[i:j], mask), None, depth
            i = j
            continue
        node = siblings[i]
        text = node_line(node, mask)
        if id(node) not in kept and node.children:
            below = sum(1 for _ in node.descendants())
            text += f" (+{plural(below, 'span')} below)"
        yield text, node, depth
        i += 1


def _summary(run: Sequence[SpanNode], mask: Mask) -> str:
    """``... 41 siblings: trading-flow x 41``: a run of siblings counted by name."""
    counts: dict[str, int] = {}
    for node in run:
        counts[node.name] = counts.get(node.name, 0) + 1
    names = [
        mask(one_line(name)) + (f" x {n:,}" if n > 1 else "")
        for name, n in list(counts.items())[:4]
    ]
    if len(counts) > 4:
        names.append(f"{len(counts) - 4} more names")
    noun = "sibling" if len(run) == 1 else "siblings"
    return f"... {len(run):,} {noun}: {', '.join(names)}"


# -- a failed match ------------------------------------------------------------------------


def render_mismatch(
    mismatch: object,
    specs: Sequence[SpanSpec],
    roots: Sequence[SpanNode],
    *,
    color: bool = False,
    verbose: bool = False,
    mask: Mask = no_mask,
) -> str:
    """The failure message of a span tree match: the divergence, the expected tree with the
    spec marked, and the captured trees (whole when small or under ``-vv``, otherwise the
    part around the divergence)."""
    from .spans import Mismatch

    assert isinstance(mismatch, Mismatch)
    marks = [n for n in (mismatch.node, *mismatch.others) if n is not None]
    where = short_path(mismatch.node, mask)
    lines = [
        f"span tree mismatch at {where}: {mask(one_line(mismatch.reason))}",
        "",
        "expected:",
        *render_spec(specs, mismatch.spec, color=color, mask=mask),
        "",
        *render_captured(roots, marks, "the divergence", color=color, verbose=verbose, mask=mask),
    ]
    return "\n".join(lines)


def render_captured(
    roots: Sequence[SpanNode],
    marks: Sequence[SpanNode],
    around: str,
    *,
    color: bool = False,
    verbose: bool = False,
    mask: Mask = no_mask,
) -> list[str]:
    """The captured trees with ``marks`` marked: whole when small or under ``-vv``,
    otherwise the part ``around`` the marked spans."""
    total = count_spans(roots)
    summary = f"{plural(len(roots), 'root')}, {plural(total, 'span')}"
    if verbose or total <= FULL_TREE_SPANS:
        return [
            f"captured ({summary}):",
            *render_tree(roots, marks, color=color, limit=None, mask=mask),
        ]
    return [
        f"captured around {around} ({summary}; -vv shows the full trees):",
        *render_context(roots, marks, color=color, mask=mask),
    ]


def render_spans(
    roots: Sequence[SpanNode], *, verbose: bool = False, mask: Mask = no_mask
) -> list[str]:
    """The spans part of a report section: whole when small or under ``-vv``, else folded."""
    total = count_spans(roots)
    if verbose or total <= FULL_TREE_SPANS:
        return [f"spans ({total:,}):", *render_tree(roots, limit=None, mask=mask)]
    return [
        f"spans ({total:,}; runs of same-shaped subtrees shown once as x N, -vv shows all):",
        *render_folded(roots, mask=mask),
    ]
