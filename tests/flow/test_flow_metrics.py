"""The seed's metrics: names, bucket boundaries, values cross-checked against spans and state."""

from __future__ import annotations

import re

import pytest

from pytest_sniper_otel import Telemetry
from pytest_sniper_otel.catalog import (
    API_ENDPOINTS,
    API_ERROR_TYPES,
    METRICS,
    ORDER_OUTCOMES,
    ORDER_SIDES,
)
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import SniperBot
from pytest_sniper_otel.flow.ledger import Outcome

from .flowkit import one_listing

# open-ended label sets (exception class names, drop reasons): absent until something fails
ERROR_ONLY = {"cache_errors_total", "telemetry_dropped_total"}


@pytest.mark.sniper_otel_bot(seed=7)
def test_a_ten_minute_run_records_every_catalogue_metric_with_its_boundaries(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(600)
    recorded = set(telemetry.metric_names())
    # in steady state nothing fails: the counters with known label sets are there, at 0
    # (so a first error is an increase), the open-ended error counters are not
    assert recorded == set(METRICS) - ERROR_ONLY
    api_errors = telemetry.metric("api_errors_total")
    assert len(api_errors.series) == len(API_ENDPOINTS) * len(API_ERROR_TYPES) == 30
    assert api_errors.value == 0
    orders = telemetry.metric("orders_total")
    assert sorted((s["outcome"], s["side"]) for s in orders.series) == sorted(
        (o, side) for o in ORDER_OUTCOMES for side in ORDER_SIDES)
    assert telemetry.metric("orders_total", {"outcome": "failed"}).value == 0
    for name in ("pattern_positive_calls_judged_total", "pattern_false_positives_total"):
        assert telemetry.metric(name).series == [{"model_name": "pattern_discovery_v2"}], name
    for name, spec in METRICS.items():
        if spec.kind == "histogram" and spec.boundaries is not None:
            assert telemetry.metric(name).boundaries == spec.boundaries, name
    for name in recorded:
        view = telemetry.metric(name)
        assert view.kind == spec_kind(name), name
        for attrs in view.series:
            assert set(attrs) <= set(METRICS[name].attributes), (name, attrs)


def test_the_known_label_values_are_the_ones_the_bot_uses() -> None:
    assert tuple(o.value for o in Outcome) == ORDER_OUTCOMES
    assert METRICS["orders_total"].zero_series()[0] == {"outcome": "filled", "side": "BUY"}
    # open-ended attributes: nothing to start at zero
    assert METRICS["cache_errors_total"].zero_series() == []


def spec_kind(name: str) -> str:
    return METRICS[name].kind


@pytest.mark.sniper_otel_bot(seed=1, config=one_listing())
def test_metric_values_agree_with_spans_ledger_and_state(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(300)
    assert telemetry.metric("orders_total", {"outcome": "filled", "side": "BUY"}).value == 1
    assert telemetry.metric("orders_total", {"outcome": "filled", "side": "SELL"}).value == 1

    flows = telemetry.find_spans("trading-execution-flow")
    latency = telemetry.metric("execution_latency_ms", {"symbol": "SNIPEUSDT"})
    assert latency.count == len(flows) == 2
    assert latency.sum == pytest.approx(sum(f.duration_ms for f in flows), rel=1e-6)
    assert latency.bucket_counts[-1] == 0  # all within 5 s

    api = telemetry.find_spans("mexc-api-request")
    api_latency = telemetry.metric("api_request_latency_ms")
    assert api_latency.count == len(api)
    assert api_latency.sum == pytest.approx(sum(s.duration_ms for s in api), rel=1e-6)

    gets = telemetry.find_spans("redis.get")
    hits = telemetry.metric("cache_hits_total").value
    misses = telemetry.metric("cache_misses_total").value
    assert hits + misses == len(gets)
    assert hits == sum(s.attributes["redis.hit"] == "true" for s in gets) == sniper_bot.cache.hits
    assert telemetry.metric("cache_hit_rate").value == pytest.approx(100 * hits / len(gets))

    inferences = telemetry.find_spans("pattern_analysis")
    assert telemetry.metric("model_inference_latency_ms").count == len(inferences)
    ready = telemetry.find_spans("pattern-detection-flow",
                                 attributes={"pattern.type": "ready_state"})
    confidence = telemetry.metric("pattern_confidence_score",
                                  {"symbol": "SNIPEUSDT", "pattern_type": "ready_state"})
    assert confidence.max == pytest.approx(max(s.attributes["pattern.confidence"] for s in ready))

    # the listing was called "will open" before its launch and opened: judged, not false
    model = {"model_name": "pattern_discovery_v2"}
    assert telemetry.metric("pattern_positive_calls_judged_total", model).value == 1
    assert telemetry.metric("pattern_false_positives_total", model).value == 0

    assert telemetry.metric("portfolio_pnl_usd").value == pytest.approx(sniper_bot.pnl)
    assert sniper_bot.pnl > 0  # the listing only went up
    assert telemetry.metric("trading_success_rate").value == 100.0
    assert telemetry.metric("websocket_connections_active").value == 1.0
    assert telemetry.metric("circuit_breaker_open").value == 0.0
    assert telemetry.metric("model_version_info", {"model_version": "2.1.0"}).value == 1.0
    assert len(telemetry.metric("agent_health_score").series) == 4


@pytest.mark.sniper_otel_bot(seed=1, config=one_listing())
def test_gauges_read_live_state_once_per_bot(
    sniper_bot: SniperBot, telemetry: Telemetry, clock: SimClock
) -> None:
    sniper_bot.run_for(120)  # holding the position bought at +100 s
    first = telemetry.metric("portfolio_pnl_usd").value
    sniper_bot.run_for(15)
    second = telemetry.metric("portfolio_pnl_usd").value
    assert second != first  # read when collected, not captured once
    assert second == pytest.approx(sniper_bot.pnl)

    other = SniperBot.create(seed=2, clock=clock, config=one_listing(bot_id="other"))
    try:
        series = telemetry.metric("portfolio_pnl_usd").series
        assert sorted(s["bot_id"] for s in series) == ["other", "sniper-1"]
        # the model version is the same for both bots: one series, not one per bot
        assert len(telemetry.metric("model_version_info").series) == 1
    finally:
        other.close()
    telemetry.clear()  # a gauge series, once seen, stays in this test's accumulated view
    assert [s["bot_id"] for s in telemetry.metric("portfolio_pnl_usd").series] == ["sniper-1"]


@pytest.mark.sniper_otel_bot(seed=11)
def test_metric_attributes_stay_low_cardinality(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(600)
    listings = len(sniper_bot.exchange.listings())
    bounds = {
        "cache_hits_total": 5, "cache_misses_total": 5, "cache_invalidations_total": 10,
        "cache_operation_latency_ms": 8, "api_request_latency_ms": 10,
        "orders_total": 8, "api_errors_total": 30, "detected_patterns_by_type": 9,
        "model_confidence_distribution": 9,
        "pattern_detections_total": 6 * listings, "execution_latency_ms": 2 * listings,
        "agent_health_score": 4, "agent_memory_usage_mb": 4,
    }
    for metric, max_series in bounds.items():
        telemetry.assert_cardinality(metric, max_series=max_series)
    # no raw key, order id or namespace ever becomes a metric attribute
    raw = re.compile(r"sniper-\d+-\d{5}|sniper:[0-9a-f]{12}|:[A-Z]{4}USDT")
    for point in telemetry.metrics_snapshot():
        for value in point.attributes.values():
            assert not raw.search(str(value)), (point.name, point.attributes)
