"""assert_span_tree, ``==`` with span(...), find_spans and assert_no_span through pytester.

In-process runs (see conftest.py): these tests exercise behaviour within one session.
"""

from __future__ import annotations

import pytest

from .pytester_helpers import assert_failures, run_inprocess

PASSING = """
import re
import threading

import pytest
from opentelemetry import trace

from app import tracer
from pytest_sniper_otel import ANY, absent, descendant, event, span


def bot(clock=None):
    with tracer.start_as_current_span(
        "flow", attributes={"symbol": "BTCUSDT", "qty": 0.1, "venue": "mexc"}
    ) as flow:
        with tracer.start_as_current_span("detect", kind=trace.SpanKind.INTERNAL):
            with tracer.start_as_current_span("redis.GET", kind=trace.SpanKind.CLIENT):
                pass
        with tracer.start_as_current_span("risk") as risk:
            risk.add_event("limit-checked", {"limit": 5, "used": 2})
        for attempt in range(3):
            with tracer.start_as_current_span("place-order", attributes={"attempt": attempt}) as s:
                if clock is not None:
                    clock.tick(2)
                if attempt < 2:
                    s.set_status(trace.StatusCode.ERROR, "HTTP 503")
        flow.set_status(trace.StatusCode.OK)


def test_attributes_subset_with_matchers(telemetry):
    bot()
    telemetry.assert_span_tree(
        span("flow", attributes={"symbol": "BTCUSDT"})
    )
    telemetry.assert_span_tree(
        span(
            "flow",
            attributes={
                "symbol": re.compile("^BTC"),
                "qty": pytest.approx(0.1),
                "venue": lambda v: v in {"mexc", "binance"},
            },
            status="OK",
            kind="INTERNAL",
        )
    )
    telemetry.assert_span_tree(span("flow", attributes={"venue": ANY}))
    telemetry.assert_span_tree(span(re.compile("^fl"), status="OK"))
    telemetry.assert_span_tree(span(lambda name: name.startswith("fl")))


def test_children_are_an_ordered_subsequence(telemetry):
    bot()
    # risk sits between detect and place-order; unlisted children are allowed
    telemetry.assert_span_tree(span("flow", children=["detect", span("place-order")]))
    telemetry.assert_span_tree(
        span("flow", children=[span("place-order", attributes={"attempt": 0}),
                               span("place-order", attributes={"attempt": 2})])
    )


def test_any_order_and_exact(telemetry):
    bot()
    telemetry.assert_span_tree(span("flow", any_order=True, children=["risk", "detect"]))
    telemetry.assert_span_tree(
        span("flow", exact=True, children=["detect", "risk", "place-order", "place-order",
                                           "place-order"])
    )
    telemetry.assert_span_tree(
        span("flow", exact=True, any_order=True,
             children=[span("place-order", count=3), "risk", "detect"])
    )


def test_descendant_count_absent(telemetry):
    bot()
    telemetry.assert_span_tree(
        span("flow", children=[
            descendant("redis.GET", kind="CLIENT"),
            span("place-order", status="ERROR", count=2),
            span("place-order", status="UNSET", count=1),
            absent("circuit-breaker-open"),
            absent("redis.GET"),           # a grandchild, not a child
        ])
    )
    telemetry.assert_span_tree(descendant("redis.GET"))   # at top level: anywhere
    telemetry.assert_span_tree(descendant("place-order", count=3))


def test_events_and_status_description(telemetry):
    bot()
    telemetry.assert_span_tree(
        span("flow", children=[
            span("risk", events=["limit-checked", event("limit-checked", {"used": 2})]),
            span("place-order", status="ERROR", status_description=re.compile("503")),
        ])
    )


def test_duration_follows_the_clock(telemetry, clock):
    bot(clock)
    telemetry.assert_span_tree(
        span("flow", duration_ms=6000, children=[
            span("detect", duration_ms=0),
            span("place-order", duration_ms=2000, count=3),
        ])
    )
    telemetry.assert_span_tree(span("flow", duration_ms=pytest.approx(6000)))


def test_top_level_list_in_start_order(telemetry):
    for name in ("a", "b", "c"):
        tracer.start_span(name).end()
    telemetry.assert_span_tree([span("a"), span("c")])
    telemetry.assert_span_tree([span("c"), span("a")], any_order=True)
    telemetry.assert_span_tree([span("a"), span("b"), span("c")], exact=True)
    telemetry.assert_span_tree(span("b"))                   # one spec: any root


def test_equality_with_roots_and_nodes(telemetry):
    bot()
    assert telemetry.roots == span("flow", children=["detect", "risk"])
    assert telemetry.roots[0] == span("flow")
    assert telemetry.roots[0].children[0] == span("detect", children=["redis.GET"])
    assert telemetry.roots[0] != span("detect")


def test_find_spans_and_assert_no_span(telemetry):
    bot()
    failed = telemetry.find_spans("place-order", status="ERROR")
    assert [n.attributes["attempt"] for n in failed] == [0, 1]
    assert [n.path() for n in telemetry.find_spans("redis.GET")] == ["flow > detect > redis.GET"]
    assert telemetry.find_spans("nope") == []
    telemetry.assert_no_span("circuit-breaker-open")
    telemetry.assert_no_span("place-order", attributes={"attempt": 3})


def test_spans_from_a_thread(telemetry):
    def worker():
        with tracer.start_as_current_span("in-thread"):
            pass

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    telemetry.assert_span_tree(span("in-thread"))
    assert [s.name for s in telemetry.spans] == ["in-thread"]
"""


def test_passing_specs(app: pytest.Pytester) -> None:
    app.makepyfile(test_specs=PASSING)
    result = run_inprocess(app)
    result.assert_outcomes(passed=10)


BOT = """
from opentelemetry import trace

from app import tracer
from pytest_sniper_otel import absent, descendant, event, span


def bot(clock):
    with tracer.start_as_current_span("flow", attributes={"symbol": "BTCUSDT"}):
        with tracer.start_as_current_span("detect"):
            with tracer.start_as_current_span("redis.GET", kind=trace.SpanKind.CLIENT):
                pass
        with tracer.start_as_current_span("risk") as risk:
            risk.add_event("limit-checked", {"used": 2})
        for attempt in range(3):
            with tracer.start_as_current_span("place-order", attributes={"attempt": attempt}) as s:
                clock.tick(2)
                if attempt < 2:
                    s.set_status(trace.StatusCode.ERROR, "HTTP 503")
"""

CAPTURED = """\
captured (1 root, 7 spans):
   flow [UNSET] 6000ms {symbol='BTCUSDT'}
     detect [UNSET] 0ms
       redis.GET [UNSET] 0ms
     risk [UNSET] 0ms
     place-order [ERROR(HTTP 503)] 2000ms {attempt=0}
     place-order [ERROR(HTTP 503)] 2000ms {attempt=1}
     place-order [UNSET] 2000ms {attempt=2}"""


def captured(*marked: str) -> str:
    """The bot's captured tree with the lines starting with ``marked`` names marked."""
    lines = CAPTURED.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if any(line.strip().startswith(m) for m in marked):
            lines[i] = ">>" + line[2:]
    return "\n".join(lines)


FAILING = {
    "test_attribute_value": (
        'span("flow", attributes={"symbol": "ETHUSDT"})',
        "span tree mismatch at flow: no root span matched span('flow', attributes="
        "{symbol='ETHUSDT'}) among captured spans; closest: attribute 'symbol': expected "
        "'ETHUSDT', got 'BTCUSDT'\n\nexpected:\n>> span('flow', attributes={symbol='ETHUSDT'})\n\n"
        + captured("flow"),
    ),
    "test_attribute_missing": (
        'span("flow", children=[span("risk", attributes={"limit": 5})])',
        "span tree mismatch at flow > risk: no child matched span('risk', attributes={limit=5}) "
        "under 'flow'; closest: attribute 'limit' missing (has {})\n\n"
        "expected:\n   span('flow')\n>>   span('risk', attributes={limit=5})\n\n"
        + captured("risk"),
    ),
    "test_children_out_of_order": (
        'span("flow", children=["risk", "detect"])',
        "span tree mismatch at flow > detect: span('detect') matched only before the previous "
        "expected sibling (children are matched in start order; use any_order=True)\n\n"
        "expected:\n   span('flow')\n     span('risk')\n>>   span('detect')\n\n"
        + captured("detect"),
    ),
    "test_exact_children": (
        'span("flow", exact=True, children=["detect", "risk"])',
        "span tree mismatch at flow > place-order: unexpected child span(s) 'place-order', "
        "'place-order', 'place-order' (exact=True)\n\n"
        "expected:\n   span('flow', exact=True)\n     span('detect')\n     span('risk')\n\n"
        + captured("place-order"),
    ),
    "test_count": (
        'span("flow", children=[span("place-order", status="ERROR", count=3)])',
        "span tree mismatch at flow > place-order: expected exactly 3 spans matching "
        "span('place-order', status='ERROR', count=3) under 'flow', found 2\n\n"
        "expected:\n   span('flow')\n>>   span('place-order', status='ERROR', count=3)\n\n"
        + captured("place-order [ERROR"),
    ),
    "test_absent": (
        'span("flow", children=[absent("risk")])',
        "span tree mismatch at flow > risk: expected no span matching absent('risk') under "
        "'flow', found 1\n\nexpected:\n   span('flow')\n>>   absent('risk')\n\n" + captured("risk"),
    ),
    "test_descendant_missing": (
        'span("flow", children=[descendant("redis.SET")])',
        "span tree mismatch at flow: no descendant matched descendant('redis.SET') under 'flow' "
        "(candidates: 'detect', 'place-order', 'redis.GET', 'risk')\n\n"
        "expected:\n   span('flow')\n>>   descendant('redis.SET')\n\n" + captured("flow"),
    ),
    "test_descendant_kind": (
        'descendant("redis.GET", kind="SERVER")',
        "span tree mismatch at flow > detect > redis.GET: no descendant matched "
        "descendant('redis.GET', kind='SERVER') among captured spans; closest: kind: expected "
        "SERVER, got CLIENT\n\nexpected:\n>> descendant('redis.GET', kind='SERVER')\n\n"
        + captured("redis.GET"),
    ),
    "test_event_attributes": (
        'span("flow", children=[span("risk", events=[event("limit-checked", {"used": 3})])])',
        "span tree mismatch at flow > risk: no child matched span('risk', events=[event("
        "'limit-checked', attributes={used=3})]) under 'flow'; closest: missing event("
        "'limit-checked', attributes={used=3}) (events: limit-checked)\n\n"
        "expected:\n   span('flow')\n>>   span('risk', events=[event('limit-checked', "
        "attributes={used=3})])\n\n" + captured("risk"),
    ),
    "test_duration": (
        'span("flow", children=[span("place-order", duration_ms=1000)])',
        "span tree mismatch at flow > place-order: no child matched span('place-order', "
        "duration_ms=1000) under 'flow'; closest: duration: expected 1000 ms, got 2000.0 ms\n\n"
        "expected:\n   span('flow')\n>>   span('place-order', duration_ms=1000)\n\n"
        + captured("place-order [ERROR(HTTP 503)] 2000ms {attempt=0}"),
    ),
    "test_status": (
        'span("flow", status="OK")',
        "span tree mismatch at flow: no root span matched span('flow', status='OK') among "
        "captured spans; closest: status: expected OK, got UNSET\n\n"
        "expected:\n>> span('flow', status='OK')\n\n" + captured("flow"),
    ),
    "test_grandchild": (
        'span("flow", children=[span("detect", children=[span("redis.GET", kind="SERVER")])])',
        "span tree mismatch at flow > detect > redis.GET: no child matched span('redis.GET', "
        "kind='SERVER') under 'detect'; closest: kind: expected SERVER, got CLIENT\n\n"
        "expected:\n   span('flow')\n     span('detect')\n>>     span('redis.GET', "
        "kind='SERVER')\n\n" + captured("redis.GET"),
    ),
    "test_no_such_root": (
        'span("flows")',
        "span tree mismatch at top level: no root span matched span('flows') among captured "
        "spans (candidates: 'flow')\n\nexpected:\n>> span('flows')\n\n" + captured(),
    ),
    "test_overlapping_specs": (
        'span("flow", any_order=True, children=["risk", span("risk", events=["limit-checked"])])',
        "span tree mismatch at flow > risk: span('risk', events=[event('limit-checked')]) "
        "matches 1 span but it is already matched by other expected siblings; each expected "
        "span needs a captured span of its own\n\n"
        "expected:\n   span('flow', any_order=True)\n     span('risk')\n"
        ">>   span('risk', events=[event('limit-checked')])\n\n" + captured("risk"),
    ),
}


def test_failing_span_trees(app: pytest.Pytester) -> None:
    tests = [BOT]
    for name, (spec, _) in FAILING.items():
        tests.append(
            f"def {name}(telemetry, clock):\n    bot(clock)\n"
            f"    telemetry.assert_span_tree({spec})\n"
        )
    tests.append(
        "def test_nothing_captured(telemetry):\n"
        '    telemetry.assert_span_tree(span("flow"))\n'
        "def test_extra_root(telemetry, clock):\n"
        '    tracer.start_span("a").end()\n'
        '    tracer.start_span("b").end()\n'
        '    telemetry.assert_span_tree([span("a")], exact=True)\n'
        "def test_span_never_ended(telemetry, clock):\n"
        '    tracer.start_span("leaked")\n'
        '    with tracer.start_as_current_span("done"):\n'
        "        pass\n"
        '    assert telemetry.open_spans == ["leaked"]\n'
        '    telemetry.assert_span_tree(span("leaked"))\n'
        "def test_roots_out_of_order(telemetry, clock):\n"
        '    tracer.start_span("a").end()\n'
        "    clock.tick(1)\n"
        '    tracer.start_span("b").end()\n'
        '    telemetry.assert_span_tree([span("b"), span("a")])\n'
    )
    app.makepyfile(test_trees="\n\n".join(tests))
    result = run_inprocess(app, "--sniper-otel-show=never")
    result.assert_outcomes(failed=len(FAILING) + 4)
    assert_failures(result, {name: message for name, (_, message) in FAILING.items()})
    assert_failures(
        result,
        {
            "test_nothing_captured": """
                span tree mismatch at top level: no root span matched span('flow') among captured spans (candidates: none)

                expected:
                >> span('flow')

                captured (0 roots, 0 spans):
                (no spans captured)
            """,  # noqa: E501
            "test_extra_root": """
                span tree mismatch at b: unexpected root span(s) 'b' (exact=True)

                expected:
                   span('a')

                captured (2 roots, 2 spans):
                   a [UNSET] 0ms
                >> b [UNSET] 0ms
            """,
            "test_span_never_ended": """
                span tree mismatch at top level: no root span matched span('leaked') among captured spans (candidates: 'done')

                expected:
                >> span('leaked')

                captured (1 root, 1 span):
                   done [UNSET] 0ms

                not captured: 1 span started in this test never ended: 'leaked'
            """,  # noqa: E501
            "test_roots_out_of_order": """
                span tree mismatch at a: span('a') matched only before the previous expected sibling (children are matched in start order; use any_order=True)

                expected:
                   span('b')
                >> span('a')

                captured (2 roots, 2 spans):
                >> a [UNSET] 0ms
                   b [UNSET] 0ms
            """,  # noqa: E501
        },
    )
