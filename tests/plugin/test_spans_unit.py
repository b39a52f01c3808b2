"""spans.py without pytest in between: trees, matching semantics, messages, rendering."""

from __future__ import annotations

import gc
import itertools
import re
import weakref
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from pytest_sniper_otel import ANY, SpecError, absent, descendant, event, span
from pytest_sniper_otel.render import render_mismatch, render_tree
from pytest_sniper_otel.spans import (
    Forest,
    SpanNode,
    build_forest,
    match,
    match_forest,
    use_color,
)

MS = 1_000_000


class Trace:
    """Builds finished ReadableSpans by hand: exact ids, times and start order."""

    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []
        self.start_seq: dict[int, int] = {}
        self._ids = itertools.count(1)

    def add(
        self,
        name: str,
        parent: SpanContext | None = None,
        *,
        start_ms: float = 0,
        duration_ms: float = 1,
        attributes: Mapping[str, Any] | None = None,
        status: StatusCode = StatusCode.UNSET,
        description: str | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        events: tuple[Event, ...] = (),
    ) -> SpanContext:
        sid = next(self._ids)
        ctx = SpanContext(trace_id=1, span_id=sid, is_remote=False)
        start = int(start_ms * MS)
        self.spans.append(
            ReadableSpan(
                name,
                context=ctx,
                parent=parent,
                attributes=dict(attributes or {}),
                events=events,
                kind=kind,
                status=Status(status, description),
                start_time=start,
                end_time=start + int(duration_ms * MS),
            )
        )
        self.start_seq[sid] = sid
        return ctx

    def roots(self) -> list[SpanNode]:
        return build_forest(self.spans, self.start_seq)


def family(*children: tuple[str, Mapping[str, Any]]) -> list[SpanNode]:
    """One root "p" whose children (name, attributes) all start at the same instant."""
    t = Trace()
    p = t.add("p", duration_ms=10)
    for name, attrs in children:
        t.add(name, p, attributes=attrs)
    return t.roots()


# -- trees -------------------------------------------------------------------------------


def test_forest_orders_siblings_by_start_then_start_sequence() -> None:
    t = Trace()
    root = t.add("root")
    t.add("late", root, start_ms=5)
    t.add("b", root, start_ms=1)  # same instant as "a" (a frozen clock): start order decides
    t.add("a", root, start_ms=1)
    t.start_seq[3], t.start_seq[4] = 10, 9  # "a" started first
    t.add("orphan", SpanContext(trace_id=1, span_id=999, is_remote=False), start_ms=-1)
    roots = t.roots()
    assert [r.name for r in roots] == ["orphan", "root"]
    assert [c.name for c in roots[1].children] == ["a", "b", "late"]
    assert roots[1].children[0].parent is roots[1]
    assert roots[1].children[0].path() == "root > a"
    assert [n.name for n in roots[1].walk()] == ["root", "a", "b", "late"]


def test_a_forest_is_freed_without_the_cycle_collector() -> None:
    # A window's trees go with it when the test is done: no parent <-> child cycle left for
    # the garbage collector, whose full passes are slow in a large test session.
    t = Trace()
    root = t.add("root")
    t.add("leaf", t.add("mid", root))
    roots = t.roots()
    leaf = weakref.ref(roots[0].children[0].children[0])
    assert leaf() is not None and leaf().path() == "root > mid > leaf"  # type: ignore[union-attr]
    gc.disable()
    try:
        del roots
        assert leaf() is None
    finally:
        gc.enable()


def shape(roots: list[SpanNode]) -> list[tuple[str, Any]]:
    return [(r.name, shape(r.children)) for r in roots]


@settings(deadline=None)  # a shared machine's load is not this test's business
@given(st.data())
def test_forest_is_the_same_whatever_order_spans_end_in(data: st.DataObject) -> None:
    # A random tree (each span's parent is an earlier span, or none), ended in any order,
    # some parents never ended: the forest as spans end equals the one built at once.
    n = data.draw(st.integers(1, 30))
    parents = [data.draw(st.integers(-1, i - 1)) for i in range(n)]
    t = Trace()
    contexts: list[SpanContext] = []
    for i, parent in enumerate(parents):
        contexts.append(t.add(f"s{i}", contexts[parent] if parent >= 0 else None, start_ms=i % 3))
    never_ended = set(data.draw(st.lists(st.integers(0, n - 1), max_size=3)))
    ended = [s for i, s in enumerate(t.spans) if i not in never_ended]
    order = data.draw(st.permutations(ended))
    forest = Forest()
    for s in order:
        assert s.context is not None
        forest.add(s, t.start_seq[s.context.span_id])
    # The definition, naively: roots are spans whose parent did not end here; siblings in
    # (start time, start sequence) order.
    by_id = {s.context.span_id: s for s in ended if s.context is not None}

    def key(s: ReadableSpan) -> tuple[int, int]:
        assert s.context is not None
        return (s.start_time or 0, t.start_seq[s.context.span_id])

    def tree(spans: list[ReadableSpan]) -> list[tuple[str, Any]]:
        return [
            (s.name, tree([c for c in ended if c.parent is not None and s.context is not None
                           and c.parent.span_id == s.context.span_id]))
            for s in sorted(spans, key=key)
        ]

    roots = [s for s in ended if s.parent is None or s.parent.span_id not in by_id]
    assert shape(forest.roots()) == tree(roots)
    assert len(forest) == len(ended)
    for root in forest.roots():
        assert root.parent is None
        assert all(c.parent is node for node in root.walk() for c in node.children)


@pytest.mark.parametrize("flows", [1, 40])  # 10 spans: built when asked; 400: as they end
def test_a_windows_trees_are_the_same_built_late_or_as_spans_end(flows: int) -> None:
    # A window builds its trees when first asked for, or as spans end once it holds many
    # (the first assertion on a large capture stays cheap); spans ending after the first
    # look are added to the trees already built, in whatever order threads append them.
    # The same trees either way.
    from pytest_sniper_otel.capture import install_session
    from pytest_sniper_otel.telemetry import Telemetry

    t = Trace()
    for f in range(flows):
        root = t.add("flow", start_ms=f)
        for _ in range(3):
            t.add("call", t.add("step", root, start_ms=f), start_ms=f)
        t.add("settle", root, start_ms=f)
        t.add("orphan", SpanContext(trace_id=1, span_id=10**9 + f, is_remote=False))
    window = Telemetry(install_session())
    for s in t.spans:
        assert s.context is not None
        # A finished span stands in for the live one the span processor passes.
        window._span_started(s, t.start_seq[s.context.span_id], s.context.span_id)  # type: ignore[arg-type]
    # Children end before their parents; the last flow ends after the first look.
    ended = sorted(t.spans, key=lambda s: -(s.context.span_id if s.context else 0))
    late = [s for s in ended if s.start_time == (flows - 1) * MS]
    for s in ended:
        if s not in late:
            window._span_ended(s, s.context.span_id if s.context else 0)
    assert shape(window.roots) == shape(build_forest([s for s in ended if s not in late],
                                                     t.start_seq))
    # The first late span ends in another thread, which is preempted after appending it:
    # the next span to end adds both.
    window._spans.append(late[0])
    for s in late[1:]:
        window._span_ended(s, s.context.span_id if s.context else 0)
    assert shape(window.roots) == shape(t.roots())
    assert len(window.roots) == 2 * flows


def test_node_views() -> None:
    t = Trace()
    t.add(
        "x",
        duration_ms=2.5,
        attributes={"k": 1},
        status=StatusCode.ERROR,
        description="HTTP 503",
        kind=SpanKind.CLIENT,
        events=(Event("retry", {"attempt": 2}, timestamp=1),),
    )
    [n] = t.roots()
    assert (n.name, dict(n.attributes), n.status, n.status_description, n.kind) == (
        "x",
        {"k": 1},
        "ERROR",
        "HTTP 503",
        "CLIENT",
    )
    assert n.events == [("retry", {"attempt": 2})]
    assert n.duration_ms == 2.5
    assert repr(n) == "<SpanNode x [ERROR(HTTP 503)] 2.5ms {k=1} children=0>"


# -- matching a single span ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (span("x"), None),
        (span(re.compile("^x$")), None),
        (span(lambda name: name == "x"), None),
        (span("y"), "name: expected 'y', got 'x'"),
        (span("x", attributes={"k": 1}), None),
        (span("x", attributes={"k": ANY, "s": re.compile("^BTC")}), None),
        (span("x", attributes={"q": pytest.approx(0.3)}), None),
        (span("x", attributes={"tags": ["a", "b"]}), None),  # lists match recorded tuples
        (span("x", attributes={"k": lambda v: v > 0}), None),
        (
            span("x", attributes={"s": lambda v: v > 0}),
            "attribute 's': expected <predicate <lambda>>, got 'BTCUSDT'",
        ),  # a raising predicate is a mismatch, not a crash
        (span("x", attributes={"k": 2}), "attribute 'k': expected 2, got 1"),
        (
            span("x", attributes={"s": re.compile("ETH")}),
            "attribute 's': expected re.compile('ETH'), got 'BTCUSDT'",
        ),
        (
            span("x", attributes={"nope": ANY}),
            "attribute 'nope' missing (has {k=1, s='BTCUSDT', "
            "q=0.30000000000000004, tags=('a', 'b')})",
        ),
        (span("x", status="ERROR", status_description="HTTP 503"), None),
        (span("x", status="OK"), "status: expected OK, got ERROR (HTTP 503)"),
        (span("x", status_description=re.compile("5..")), None),
        (
            span("x", status_description="HTTP 500"),
            "status description: expected 'HTTP 500', got 'HTTP 503'",
        ),
        (span("x", kind="client"), None),
        (span("x", kind="SERVER"), "kind: expected SERVER, got CLIENT"),
        (span("x", duration_ms=2000), None),
        (span("x", duration_ms=2000.0005), None),  # within a microsecond
        (span("x", duration_ms=2000.01), "duration: expected 2000.01 ms, got 2000.0 ms"),
        (span("x", duration_ms=lambda d: d > 1000), None),
        (span("x", events=["retry", event("retry", {"attempt": 2})]), None),
        (
            span("x", events=[event("retry", {"attempt": 3})]),
            "missing event('retry', attributes={attempt=3}) (events: retry)",
        ),
        (span("x", events=["timeout"]), "missing event('timeout') (events: retry)"),
    ],
)
def test_single_span(spec: Any, reason: str | None) -> None:
    t = Trace()
    t.add(
        "x",
        duration_ms=2000,
        attributes={"k": 1, "s": "BTCUSDT", "q": 0.1 + 0.2, "tags": ("a", "b")},
        status=StatusCode.ERROR,
        description="HTTP 503",
        kind=SpanKind.CLIENT,
        events=(Event("retry", {"attempt": 2}, timestamp=1),),
    )
    [node] = t.roots()
    mismatch = match(spec, node)
    assert (mismatch.reason if mismatch else None) == reason
    assert (spec == node) is (reason is None)


# -- children ------------------------------------------------------------------------------


def children_names(*names: str) -> list[SpanNode]:
    return family(*((n, {}) for n in names))


def test_ordered_children_are_a_subsequence() -> None:
    [p] = children_names("a", "b", "c", "b")
    assert match(span("p", children=["a", "c"]), p) is None
    assert match(span("p", children=["b", "b"]), p) is None  # the 2nd b is after c: fine
    m = match(span("p", children=["c", "a"]), p)
    assert m is not None and m.node is not None
    assert m.reason == (
        "span('a') matched only before the previous expected sibling (children are matched in "
        "start order; use any_order=True)"
    )
    assert m.node.name == "a"
    assert match(span("p", any_order=True, children=["c", "a"]), p) is None


def test_exact_forbids_unlisted_children() -> None:
    [p] = children_names("a", "b", "c")
    assert match(span("p", exact=True, children=["a", "b", "c"]), p) is None
    m = match(span("p", exact=True, children=["a"]), p)
    assert m is not None and m.reason == "unexpected child span(s) 'b', 'c' (exact=True)"
    assert [n.name for n in (m.node, *m.others) if n] == ["b", "c"]
    assert match(span("p", exact=True, children=[]), children_names()[0]) is None


def test_unordered_overlapping_specs_find_a_full_assignment() -> None:
    # Greedy would give x{k:1} to the broad span("x") and leave span("x", k=1) without one;
    # a maximum matching gives the broad spec the other child.
    [p] = family(("x", {"k": 1}), ("x", {"k": 2}))
    spec = span("p", any_order=True, children=[span("x"), span("x", attributes={"k": 1})])
    assert match(spec, p) is None
    # Three specs over three children where only one assignment works.
    [p] = family(("x", {"a": 1, "b": 1}), ("x", {"a": 1}), ("x", {"c": 1}))
    specs = [span("x", attributes={"a": 1}), span("x", attributes={"b": 1}), span("x")]
    assert match(span("p", any_order=True, children=specs), p) is None


def test_a_spec_whose_matches_are_all_taken() -> None:
    [p] = family(("x", {"k": 1}), ("y", {}))
    spec = span("p", any_order=True, children=[span("x"), span("x", attributes={"k": 1})])
    m = match(spec, p)
    assert m is not None and m.node is not None
    assert m.reason == (
        "span('x', attributes={k=1}) matches 1 span but it is already matched by other expected "
        "siblings; each expected span needs a captured span of its own"
    )
    assert m.spec is spec.children[1] and m.node.name == "x"  # type: ignore[index]
    # Same in order:
    m = match(span("p", children=[span("x"), span("x", attributes={"k": 1})]), p)
    assert m is not None and "already matched by other expected siblings" in m.reason


def test_counts() -> None:
    [p] = family(("retry", {"n": 1}), ("retry", {"n": 2}), ("retry", {"n": 3}), ("done", {}))
    assert match(span("p", children=[span("retry", count=3), "done"]), p) is None
    m = match(span("p", children=[span("retry", count=2)]), p)
    assert m is not None and m.reason == (
        "expected exactly 2 spans matching span('retry', count=2) under 'p', found 3"
    )
    assert [n.attributes["n"] for n in (m.node, *m.others) if n] == [1, 2, 3]
    m = match(span("p", children=[span("retry", attributes={"n": 9}, count=1)]), p)
    assert m is not None and m.reason == (
        "expected exactly 1 span matching span('retry', attributes={n=9}, count=1) under 'p', "
        "found 0"
    )
    assert m.node is p  # nothing found: the parent is where it diverges
    # A counted spec claims what it counted: exact=True is satisfied by it.
    assert match(span("p", exact=True, children=["done", span("retry", count=3)]), p) is not None
    assert (
        match(span("p", exact=True, any_order=True, children=["done", span("retry", count=3)]), p)
        is None
    )
    # Counts keep start order with their siblings unless any_order.
    m = match(span("p", children=["done", span("retry", count=3)]), p)
    assert m is not None and m.reason.startswith("span('retry', count=3) matched, but before the")


def test_absent() -> None:
    [p] = children_names("a", "b")
    assert match(span("p", children=[absent("c")]), p) is None
    m = match(span("p", children=[absent("b")]), p)
    assert m is not None and m.reason == "expected no span matching absent('b') under 'p', found 1"
    with pytest.raises(SpecError, match=re.escape("absent('b') takes no count: it means count=0")):
        absent("b", count=1)


def test_descendant_at_any_depth() -> None:
    t = Trace()
    root = t.add("root")
    mid = t.add("mid", root)
    t.add("redis.GET", mid, kind=SpanKind.CLIENT)
    t.add("redis.GET", root, kind=SpanKind.CLIENT, start_ms=1)
    [r] = t.roots()
    assert match(span("root", children=[descendant("redis.GET", count=2)]), r) is None
    assert match(span("root", children=[absent("redis.SET"), descendant("redis.GET")]), r) is None
    # Direct children it found count as expected under exact=True; grandchildren never matter.
    assert match(span("root", exact=True, children=["mid", descendant("redis.GET")]), r) is None
    m = match(span("root", children=[descendant("redis.GET", count=1)]), r)
    assert m is not None and m.reason == (
        "expected exactly 1 span matching descendant('redis.GET', count=1) under 'root', found 2"
    )
    m = match(span("root", children=[descendant("redis.GET", kind="SERVER")]), r)
    assert m is not None and m.reason == (
        "no descendant matched descendant('redis.GET', kind='SERVER') under 'root'; closest: "
        "kind: expected SERVER, got CLIENT"
    )
    # descendant(count=0) is "nowhere below"; absent() only looks one level down.
    assert match(span("root", children=[absent("redis.GET", kind="SERVER")]), r) is None
    m = match(span("root", children=[descendant("redis.GET", count=0)]), r)
    assert m is not None and m.reason.startswith("expected no span matching descendant(")


def test_top_level() -> None:
    t = Trace()
    a = t.add("a")
    t.add("b", start_ms=1)
    t.add("deep", a)
    roots = t.roots()
    assert match_forest([span("a"), span("b")], roots) is None
    assert match_forest([span("b"), span("a")], roots, any_order=True) is None
    assert match_forest([span("b"), span("a")], roots) is not None
    assert match_forest([span("a")], roots, exact=True) is not None
    assert match_forest([descendant("deep")], roots) is None
    assert match_forest([absent("deep")], roots) is None  # a grandchild, not a root
    assert span("a", children=["deep"]) == roots
    assert span("a") != roots[1]


# -- the whole match agrees with a brute-force definition ----------------------------------

names = st.lists(st.sampled_from("abc"), max_size=6)


@settings(deadline=None)
@given(children=names, expected=names)
def test_ordered_match_is_subsequence(children: list[str], expected: list[str]) -> None:
    [p] = children_names(*children)
    it = iter(children)
    is_subsequence = all(name in it for name in expected)
    assert (match(span("p", children=expected), p) is None) is is_subsequence


@settings(deadline=None)
@given(children=names, expected=names)
def test_unordered_match_is_multiset_inclusion(children: list[str], expected: list[str]) -> None:
    [p] = children_names(*children)
    included = not (Counter(expected) - Counter(children))
    assert (match(span("p", any_order=True, children=expected), p) is None) is included
    exact = Counter(expected) == Counter(children)
    assert (match(span("p", any_order=True, exact=True, children=expected), p) is None) is exact


# -- specs ---------------------------------------------------------------------------------


def test_labels_read_like_the_call() -> None:
    assert repr(span("x")) == "span('x')"
    assert repr(span(re.compile("^x"), attributes={"k": ANY}, status="error", kind="client")) == (
        "span(re.compile('^x'), attributes={k=ANY}, status='ERROR', kind='CLIENT')"
    )
    assert repr(span("x", children=["y"], any_order=True, exact=True)) == (
        "span('x', any_order=True, exact=True, children=[...])"
    )
    assert repr(descendant("x", count=2)) == "descendant('x', count=2)"
    assert repr(absent("x", status="OK")) == "absent('x', status='OK')"
    assert repr(span("x", duration_ms=pytest.approx(5))) == "span('x', duration_ms=5 ± 5.0e-06)"
    assert repr(span("x", events=["e", event("f", {"a": 1})])) == (
        "span('x', events=[event('e'), event('f', attributes={a=1})])"
    )


# -- rendering -----------------------------------------------------------------------------


def test_render_tree_limits_and_truncates() -> None:
    t = Trace()
    root = t.add("root", attributes={f"k{i}": i for i in range(8)})
    t.add("child", root, attributes={"long": "x" * 60})
    for i in range(4):
        t.add(f"leaf{i}", start_ms=i + 1)
    roots = t.roots()
    assert render_tree(roots, limit=3) == [
        "   root [UNSET] 1ms {k0=0, k1=1, k2=2, k3=3, k4=4, k5=5, +2 more}",
        "     child [UNSET] 1ms {long='" + "x" * 36 + "...}",  # 40 characters at most
        "   leaf0 [UNSET] 1ms",
        "... 3 more spans (-vv shows them all)",
    ]
    assert render_tree([]) == ["(no spans captured)"]
    marked = render_tree(roots, [roots[1], roots[2]], color=True)
    assert marked[2:4] == [
        "\x1b[31;1m>> leaf0 [UNSET] 1ms\x1b[0m",
        "\x1b[31;1m>> leaf1 [UNSET] 1ms\x1b[0m",
    ]


def test_render_mismatch() -> None:
    [p] = children_names("a", "b")
    spec = span("p", children=["b", span("a", kind="CLIENT")])
    m = match_forest([spec], [p])
    assert m is not None
    assert render_mismatch(m, [spec], [p]) == "\n".join(
        [
            "span tree mismatch at p > a: no child matched span('a', kind='CLIENT') under 'p'; "
            "closest: kind: expected CLIENT, got INTERNAL",
            "",
            "expected:",
            "   span('p')",
            "     span('b')",
            ">>   span('a', kind='CLIENT')",
            "",
            "captured (1 root, 3 spans):",
            "   p [UNSET] 10ms",
            ">>   a [UNSET] 1ms",
            "     b [UNSET] 1ms",
        ]
    )


@pytest.mark.parametrize(
    ("markup", "no_color", "expected"),
    [(True, None, True), (True, "1", False), (False, None, False), (True, "", True)],
)
def test_use_color(
    monkeypatch: pytest.MonkeyPatch, markup: bool, no_color: str | None, expected: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert use_color(markup) is expected
