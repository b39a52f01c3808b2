"""Expected span trees of each phase, on a hand-made calendar with one listing.

The listing launches at +100 s with its ready signal from +10 s. Discovery runs at 0, 30,
60... (the calendar is cached for 45 s), so the +60 s run is the first to see the ready
state and schedules the snipe for +100 s; the price climbs steadily, so safety exits on
take-profit a little later.
"""

from __future__ import annotations

import pytest

from pytest_sniper_otel import ANY, Telemetry, span
from pytest_sniper_otel.catalog import SPANS
from pytest_sniper_otel.flow import SniperBot

from .flowkit import Faults, install, one_listing


def above(limit: float):  # type: ignore[no-untyped-def]
    def check(value: float) -> bool:
        return value > limit

    check.__name__ = f"above_{limit}"
    return check


pytestmark = pytest.mark.sniper_otel_bot(seed=1, config=one_listing())


def test_discovery_tree_fetches_the_calendar_warms_the_cache_and_scores(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(61)
    telemetry.assert_span_tree(span(
        "workflow-execution",
        attributes={"workflow.name": "pattern-discovery", "workflow.id": ANY},
        children=[span(
            "pattern-detection-flow", status="OK",
            attributes={"trading.operation": "pattern_detection", "trading.phase": "discovery",
                        "pattern.type": "ready_state", "pattern.confidence": above(0.7),
                        "pattern.symbols_analyzed": 1},
            children=[
                span("fetch-calendar-data",
                     attributes={"data.source": "mexc_calendar_api", "calendar.cache_hit": False,
                                 "calendar.entries": 1},
                     children=[
                         span("redis.get", attributes={"redis.key": "calendar:latest",
                                                       "redis.hit": "false", "cache.type": "redis"},
                              children=["GET", "DEL"]),
                         span("mexc-api-request", kind="CLIENT",
                              attributes={"mexc.endpoint": "calendar",
                                          "url.path": "/api/v3/calendar",
                                          "http.response.status_code": 200}),
                         span("redis.set", children=["SET"]),
                         span("redis.warmup_strategy",
                              attributes={"redis.key": "listing:*", "cache.warmup.keys_warmed": 1}),
                     ], exact=True),
                span("analyze-patterns",
                     attributes={"ml.model": "pattern_discovery_v2", "pattern.candidates": 1},
                     children=[
                         span("redis.get", attributes={"redis.key": "analysis:SNIPEUSDT",
                                                       "redis.hit": "true"}),
                         span("redis.del", attributes={"redis.key": "analysis:SNIPEUSDT"}),
                         span("pattern_analysis", attributes={
                             "ml.model_name": "pattern_discovery_v2",
                             "analysis.symbols_count": 1, "ml.patterns_detected": 1,
                             "ml.high_confidence_patterns": 1}),
                         "redis.set",
                     ], exact=True),
            ], exact=True)],
    ))
    # the +30 s run was served from the cache: no API call under its fetch span
    telemetry.assert_span_tree(span(
        "workflow-execution", attributes={"workflow.id": "pattern-discovery-00008"},
        children=[span("pattern-detection-flow", children=[
            span("fetch-calendar-data", attributes={"calendar.cache_hit": True},
                 children=[span("redis.get", attributes={"redis.hit": "true"})], exact=True),
            "analyze-patterns",
        ])],
    ))


def test_snipe_tree_assesses_risk_then_places_polls_and_tracks(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(101)
    telemetry.assert_span_tree(span(
        "workflow-execution", attributes={"workflow.name": "snipe"},
        children=[
            span("risk-assessment",
                 attributes={"trading.symbol": "SNIPEUSDT", "trading.operation": "risk_assessment",
                             "risk.approved": True, "risk.reason": "approved",
                             "risk.position_size_usd": above(0)},
                 children=[
                     "portfolio-check",
                     # the listing is confirmed from the cache the discovery warmed
                     span("threshold-validation", children=[span("redis.get", attributes={
                         "redis.key": "listing:SNIPEUSDT", "redis.hit": "true"})], exact=True),
                     "position-limit-check",
                 ], exact=True),
            span("trading-execution-flow", status="OK",
                 attributes={"trading.symbol": "SNIPEUSDT", "trading.operation": "execution",
                             "trading.phase": "live_trading", "order.side": "BUY",
                             "order.outcome": "filled", "order.client_order_id": "sniper-1-00001",
                             "execution.id": "exec-00001"},
                 children=[
                     span("place-order", attributes={"order.status": "NEW"}, children=[
                         span("mexc-api-request", kind="CLIENT",
                              attributes={"mexc.endpoint": "order.place", "mexc.attempt": 1,
                                          "http.request.method": "POST"})], exact=True),
                     span("poll-order-status", attributes={"order.status": "FILLED"},
                          children=[span("mexc-api-request",
                                         attributes={"mexc.endpoint": "order.status"})]),
                     span("track-position", attributes={"position.qty": above(0)}),
                     span("redis.del", attributes={"redis.key": "account:balances"}),
                 ], exact=True),
        ], exact=True,
    ))
    snipes = telemetry.find_spans("workflow-execution", attributes={"workflow.name": "snipe"})
    assert len(snipes) == 1


def test_safety_and_exit_trees(sniper_bot: SniperBot, telemetry: Telemetry) -> None:
    sniper_bot.run_for(300)
    telemetry.assert_span_tree(span(
        "workflow-execution", attributes={"workflow.name": "safety-monitoring"},
        children=[span("safety-check",
                       attributes={"trading.operation": "safety_monitoring",
                                   "trading.phase": "monitoring",
                                   "safety.circuit_breaker": "closed",
                                   "safety.halted": False, "safety.drawdown": ANY},
                       children=["mark-to-market", "circuit-breaker"], exact=True)],
        exact=True,
    ))
    telemetry.assert_span_tree(span(
        "workflow-execution", attributes={"workflow.name": "position-exit"},
        children=[span("trading-execution-flow", status="OK",
                       attributes={"order.side": "SELL", "order.outcome": "filled"},
                       children=["place-order", "poll-order-status", "track-position", "redis.del"],
                       exact=True)],
    ))
    telemetry.assert_no_span("risk-assessment", attributes={"risk.approved": False})


def test_spans_last_simulated_time(sniper_bot: SniperBot, telemetry: Telemetry) -> None:
    # (wall time per simulated minute is measured by the chaos benchmark, not asserted here)
    sniper_bot.run_for(600)
    flows = telemetry.find_spans("trading-execution-flow")
    api = telemetry.find_spans("mexc-api-request")
    assert flows and api
    # every exchange call ticked the clock inside its span: simulated milliseconds
    assert all(5 < n.duration_ms < 2_000 for n in api)
    for flow in flows:
        inner = sum(c.duration_ms for c in flow.children)
        assert flow.duration_ms == pytest.approx(inner, abs=1e-3)


def test_every_root_is_a_workflow_and_every_span_ended(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(300)
    # a child whose parent never ended would surface as a root of another name
    assert {root.name for root in telemetry.roots} == {"workflow-execution"}
    assert all(s.end_time is not None for s in telemetry.spans)


@pytest.mark.sniper_otel_bot(seed=0)
def test_every_span_is_in_the_catalogue_with_declared_attributes(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    faults = install(sniper_bot)
    faults.next("calendar", Faults.respond(200, b"[]"), Faults.respond(503, b""))
    sniper_bot.feed.disconnect("test", down_for=3)
    sniper_bot.run_for(600)
    names = set()
    for node in (n for root in telemetry.roots for n in root.walk()):
        scope = node.span.instrumentation_scope
        if scope is not None and scope.name == "opentelemetry.instrumentation.redis":
            continue  # the instrumentation's command spans
        names.add(node.name)
        spec = SPANS.get(node.name)
        assert spec is not None, f"span {node.name!r} is not in the catalogue"
        assert scope is not None and scope.name == spec.tracer, node.name
        undeclared = set(node.attributes) - set(spec.attributes)
        assert not undeclared, (node.name, undeclared)
    # the run opened every span of the catalogue, including error attributes
    assert names == set(SPANS), sorted(set(SPANS) ^ names)
    assert telemetry.find_spans("mexc-api-request", attributes={"error.type": "malformed"})
