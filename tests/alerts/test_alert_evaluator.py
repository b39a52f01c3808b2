"""The evaluator: each expression type's value, state transitions, and assertion helpers."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from pytest_sniper_otel.alerts import AlertEvaluator, AlertState, load_rules, rule
from pytest_sniper_otel.alerts.evaluator import bucket_quantile, extrapolated_rate
from pytest_sniper_otel.errors import SpecError
from pytest_sniper_otel.metrics import MetricsSnapshot

from .alertkit import T0, counter, gauge, histogram, snap

F, P, OFF, R = AlertState.FIRING, AlertState.PENDING, AlertState.INACTIVE, AlertState.RESOLVED


def evaluator(expr: str, for_: str = "0s", interval: float = 15.0) -> AlertEvaluator:
    """An evaluator that evaluates at every scrape, to show each evaluation's semantics."""
    rules = load_rules([rule("A", expr, for_=for_)])
    return AlertEvaluator(rules, interval=interval, evaluation_interval=interval)


def values(ev: AlertEvaluator) -> list[float | None]:
    return [e.values["A"] for e in ev.timeline()]


def states(ev: AlertEvaluator) -> list[AlertState]:
    return [e.states["A"] for e in ev.timeline()]


def drawdowns(*levels: float) -> list[MetricsSnapshot]:
    return [snap(15 * i, gauge("portfolio_drawdown_ratio", v)) for i, v in enumerate(levels)]


# state machine -------------------------------------------------------------------------
def test_pending_then_firing_after_for_then_resolved() -> None:
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1", for_="30s")
    ev.observe_all(drawdowns(0.0, 0.2, 0.2, 0.2, 0.05, 0.05))
    assert states(ev) == [OFF, P, P, F, R, R]
    assert [(t.time - T0, t.before, t.after, t.value) for t in ev.history] == [
        (15.0, OFF, P, 0.2),
        (45.0, P, F, 0.2),
        (60.0, F, R, 0.05),
    ]
    ep = ev.episodes[0]
    assert (ep.pending_at - T0, ep.fired_at - T0 if ep.fired_at else None) == (15.0, 45.0)
    assert ep.resolved_at == T0 + 60


def test_condition_that_clears_before_for_never_fires() -> None:
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1", for_="1m")
    ev.observe_all(drawdowns(0.2, 0.2, 0.2, 0.0, 0.2))
    assert states(ev) == [P, P, P, OFF, P]
    assert ev.fired() == []
    ev.assert_never_fired("A")


def test_zero_for_fires_at_once_and_refires_after_resolving() -> None:
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1")
    ev.observe_all(drawdowns(0.2, 0.0, 0.3))
    assert states(ev) == [F, R, F]
    assert [(t.before, t.after) for t in ev.history] == [(OFF, F), (F, R), (R, F)]
    assert len(ev.episodes) == 2


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("max(agent_health_score) < 0.5", 0.9),
        ("min(agent_health_score) < 0.5", 0.3),
        ("sum(agent_health_score) < 0.5", 1.2),
        ("avg(agent_health_score) < 0.5", 0.6),
        ('max(agent_health_score{agent_id="b"}) < 0.5', 0.3),
        ('max(agent_health_score{agent_id!="b"}) < 0.5', 0.9),
        ('max(agent_health_score{agent_id=~"a|b"}) < 0.5', 0.9),
        ('max(agent_health_score{agent_id!~"a.*"}) < 0.5', 0.3),
    ],
)
def test_threshold_aggregates_and_matchers(expr: str, expected: float) -> None:
    ev = evaluator(expr)
    ev.observe(
        snap(
            0,
            gauge("agent_health_score", 0.9, agent_id="a"),
            gauge("agent_health_score", 0.3, agent_id="b"),
        )
    )
    assert values(ev) == [pytest.approx(expected)]


def test_no_matching_series_means_no_value_and_no_alert() -> None:
    ev = evaluator("sum(websocket_connections_active) < 1")
    ev.observe(snap(0, gauge("agent_health_score", 0.9)))
    assert values(ev) == [None] and states(ev) == [OFF]


def test_a_series_missing_from_a_scrape_is_stale_at_once() -> None:
    ev = evaluator("max(circuit_breaker_open) > 0")
    ev.observe(snap(0, gauge("circuit_breaker_open", 1)))
    ev.observe(snap(15, gauge("agent_health_score", 1)))
    ev.observe(snap(30, gauge("circuit_breaker_open", 1)))
    assert values(ev) == [1.0, None, 1.0]


# rate and increase -------------------------------------------------------------------
def counters(*vs: float, name: str = "cache_hits_total") -> list[MetricsSnapshot]:
    return [snap(15 * i, counter(name, v)) for i, v in enumerate(vs)]


def test_rate_needs_two_samples_then_is_the_per_second_slope() -> None:
    ev = evaluator("rate(cache_hits_total[1m]) > 1")
    ev.observe_all(counters(0, 10, 20, 30, 40))
    # at 60s the window [0, 60] holds all five samples: 40 over 60 s, no extrapolation
    assert values(ev)[0] is None
    assert values(ev)[-1] == pytest.approx(40 / 60)


def test_rate_extrapolates_like_prometheus() -> None:
    ev = evaluator("increase(cache_hits_total[2m]) > 1")
    ev.observe_all(counters(100, 110, 120, 130, 140))
    # samples cover [0, 60] of the window [-60, 60]; the gap at the start is wider than
    # 1.1 average steps, so Prometheus extrapolates half a step: 40 * 67.5 / 60
    assert values(ev)[-1] == pytest.approx(45.0)
    ev = evaluator("increase(cache_hits_total[2m]) > 1")
    ev.observe_all(counters(0, 10, 20, 30, 40))
    # starting from zero, the counter can't be extrapolated below zero
    assert values(ev)[-1] == pytest.approx(40.0)


def test_counter_reset_is_not_a_negative_rate() -> None:
    ev = evaluator("increase(cache_hits_total[1m]) > 1")
    ev.observe_all(counters(50, 60, 5, 15, 25))
    # 60 -> 5 is a reset: the increase is (25 - 50) + 60 = 35
    assert values(ev)[-1] == pytest.approx(35.0)


def test_histogram_rate_counts_observations_and_sums_series() -> None:
    ev = evaluator('rate(api_request_latency_ms{outcome="error"}[1m]) > 1')
    bounds = (10, 100)
    for i in range(5):
        ev.observe(
            snap(
                15 * i,
                histogram(
                    "api_request_latency_ms", bounds, (i, 0, 0), "ms", outcome="error", endpoint="a"
                ),
                histogram(
                    "api_request_latency_ms",
                    bounds,
                    (0, 2 * i, 0),
                    "ms",
                    outcome="error",
                    endpoint="b",
                ),
                histogram(
                    "api_request_latency_ms",
                    bounds,
                    (0, 0, 9 * i),
                    "ms",
                    outcome="ok",
                    endpoint="a",
                ),
            )
        )
    assert values(ev)[-1] == pytest.approx(3 * 4 / 60)


def test_ratio_of_rates_and_division_by_zero() -> None:
    ev = evaluator(
        "rate(cache_misses_total[1m])"
        " / (rate(cache_hits_total[1m]) + rate(cache_misses_total[1m])) > 0.5"
    )
    for i in range(5):
        ev.observe(
            snap(15 * i, counter("cache_hits_total", 3 * i), counter("cache_misses_total", i))
        )
    assert values(ev)[-1] == pytest.approx(0.25)
    # nothing happened in the window: 0 / 0 is NaN, which is not > 0.5
    for i in range(5, 10):
        ev.observe(snap(15 * i, counter("cache_hits_total", 12), counter("cache_misses_total", 4)))
    assert math.isnan(values(ev)[-1] or 0.0)
    assert ev.states["A"] is OFF


def test_a_ratio_with_a_missing_side_has_no_value() -> None:
    ev = evaluator(
        'rate(api_request_latency_ms{outcome="error"}[1m]) / rate(api_request_latency_ms[1m]) > 0'
    )
    for i in range(5):
        ev.observe(
            snap(15 * i, histogram("api_request_latency_ms", (10,), (i, 0), "ms", outcome="ok"))
        )
    assert values(ev) == [None] * 5


def test_a_series_appearing_mid_run_starts_at_its_first_sample() -> None:
    ev = evaluator("increase(telemetry_dropped_total[5m]) > 0")
    ev.observe(snap(0, gauge("agent_health_score", 1)))
    ev.observe(snap(15, gauge("agent_health_score", 1), counter("telemetry_dropped_total", 7)))
    ev.observe(snap(30, gauge("agent_health_score", 1), counter("telemetry_dropped_total", 7)))
    # as in Prometheus, the 7 dropped before the series' first scrape are in no increase
    assert values(ev) == [None, None, 0.0]
    ev.observe(snap(45, gauge("agent_health_score", 1), counter("telemetry_dropped_total", 9)))
    assert ev.states["A"] is F


def test_extrapolated_rate_and_bucket_quantile_helpers() -> None:
    assert extrapolated_rate([(0, 1.0)], -60_000, 0, is_rate=True) is None
    assert extrapolated_rate([(0, 0.0), (60_000, 30.0)], 0, 60_000, is_rate=True) == 0.5
    assert bucket_quantile(0.5, [(10.0, 2.0), (20.0, 4.0), (math.inf, 4.0)]) == 10.0
    assert bucket_quantile(0.75, [(10.0, 2.0), (20.0, 4.0), (math.inf, 4.0)]) == 15.0
    assert bucket_quantile(0.99, [(10.0, 0.0), (20.0, 0.0), (math.inf, 5.0)]) == 20.0
    assert math.isnan(bucket_quantile(0.5, [(10.0, 0.0), (math.inf, 0.0)]))
    # non-monotonic input (rates extrapolated differently) is repaired as Prometheus does
    # (20, 2) counts as (20, 3), so the rank 3.5 lies half-way into (20, 30]; unrepaired: 27.5
    assert bucket_quantile(0.875, [(10.0, 3.0), (20.0, 2.0), (30.0, 4.0), (math.inf, 4.0)]) == 25.0


def test_quantile_over_a_window() -> None:
    ev = evaluator("quantile(0.9, execution_latency_ms[1m]) > 100")
    bounds = (10, 50, 100, 500)
    for i in range(5):  # per step: 8 fast (<=10 ms), 2 in (100, 500]
        ev.observe(
            snap(15 * i, histogram("execution_latency_ms", bounds, (8 * i, 0, 0, 2 * i, 0), "ms"))
        )
    # rank 0.9 * 10/step lands at the top of (100, 500]... 9th of 10 -> 100 + 400 * (9-8)/2
    assert values(ev)[-1] == pytest.approx(300.0)
    assert ev.states["A"] is F


def test_absent_fires_until_the_metric_appears() -> None:
    ev = evaluator('absent(agent_health_score{agent_type="risk"})')
    ev.observe(snap(0, gauge("agent_health_score", 1, agent_type="pattern")))
    ev.observe(snap(15, gauge("agent_health_score", 1, agent_type="risk")))
    assert states(ev) == [F, R]


def test_evaluations_follow_prometheus_schedule_not_the_scrapes() -> None:
    rules = load_rules([rule("A", "max(portfolio_drawdown_ratio) > 0.1")])
    ev = AlertEvaluator(rules)  # Prometheus' default: every minute, on whole minutes
    ev.observe_all(drawdowns(0.0, 0.0, 0.2, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0))
    assert [e.time - T0 for e in ev.timeline()] == [0.0, 60.0, 120.0]
    assert states(ev) == [OFF, F, R]
    # a phase of 50 s: the first evaluation is the one due before the first scrape
    ev = AlertEvaluator(rules, evaluation_phase=50)
    ev.observe_all(drawdowns(0.0, 0.0, 0.2, 0.2, 0.2, 0.0, 0.0, 0.0, 0.0))
    assert [e.time - T0 for e in ev.timeline()] == [-10.0, 50.0, 110.0]
    assert states(ev) == [OFF, F, R]
    assert values(ev) == [None, 0.2, 0.0]
    with pytest.raises(SpecError, match=r"evaluation_phase must be within \[0, evaluation_in"):
        AlertEvaluator(rules, evaluation_phase=60)


def test_a_scrape_older_than_the_lookback_is_not_seen() -> None:
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1")
    # no scrape between 0 and 330 s (the scraper was down): the sample counts for 5 minutes
    ev.observe_all([snap(0, gauge("portfolio_drawdown_ratio", 0.2)), snap(330)])
    assert values(ev) == [0.2] * 21 + [None, None]


def test_and_needs_every_clause_and_reports_the_first_value() -> None:
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1 and sum(cache_hits_total) >= 3")
    for i, (dd, hits) in enumerate([(0.2, 1), (0.2, 3), (0.05, 4), (0.3, 5)]):
        ev.observe(
            snap(15 * i, gauge("portfolio_drawdown_ratio", dd), counter("cache_hits_total", hits))
        )
    assert states(ev) == [OFF, F, R, F]
    assert values(ev) == [0.2, 0.2, 0.05, 0.3]
    # a clause with no value (no series) keeps the whole rule quiet
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1 and sum(cache_misses_total) >= 0")
    ev.observe(snap(0, gauge("portfolio_drawdown_ratio", 0.5)))
    assert states(ev) == [OFF]


# feeding ---------------------------------------------------------------------------------
def test_snapshots_must_move_forward() -> None:
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1")
    ev.observe(snap(15, gauge("portfolio_drawdown_ratio", 0)))
    with pytest.raises(
        SpecError,
        match=r"snapshots must move forward in time: got 1767225600\.000 after 1767225615\.000",
    ):
        ev.observe(snap(0, gauge("portfolio_drawdown_ratio", 0)))


def test_a_window_too_short_for_the_interval_is_an_error() -> None:
    with pytest.raises(SpecError) as info:
        evaluator("rate(cache_hits_total[20s]) > 1", interval=15)
    assert str(info.value) == (
        "rule 'A': window 20s holds fewer than two samples at a scrape interval of 15s, "
        "so it never has a value"
    )


def test_run_polls_the_source_every_interval() -> None:
    now = [0.0]
    level = [0.0]

    def source() -> MetricsSnapshot:
        return snap(now[0], gauge("portfolio_drawdown_ratio", level[0]))

    def advance(seconds: float) -> None:
        now[0] += seconds
        level[0] = 0.3 if 60 <= now[0] < 120 else 0.0

    rules = load_rules([rule("A", "max(portfolio_drawdown_ratio) > 0.1")])
    ev = AlertEvaluator(rules, interval=15, evaluation_interval=15, source=source)
    ev.run(180, advance)
    assert len(ev.timeline()) == 13
    assert ev.assert_fired("A", within=0, after=T0 + 60) == 0.0
    assert ev.assert_resolved("A", within=0, after=T0 + 120) == 0.0


# assertion helpers -----------------------------------------------------------------------
@pytest.fixture
def spike() -> AlertEvaluator:
    ev = evaluator("max(portfolio_drawdown_ratio) > 0.1", for_="30s")
    ev.observe_all(drawdowns(0, 0, 0.2, 0.2, 0.2, 0.2, 0, 0, 0))
    return ev


def test_helpers_pass_and_report_delays(spike: AlertEvaluator) -> None:
    start = dt.datetime.fromtimestamp(T0 + 20, dt.UTC)
    assert spike.assert_fired("A", within=60, after=T0 + 20) == 40.0
    assert spike.detection_delay("A", start) == 40.0
    assert spike.assert_resolved("A", within=30, after=T0 + 80) == 10.0
    spike.assert_never_fired("A", between=(T0, T0 + 59))
    assert spike.detection_delay("A", T0 + 61) is None


def test_fired_failure_lists_what_fired_when(spike: AlertEvaluator) -> None:
    with pytest.raises(AssertionError) as info:
        spike.assert_fired("A", within=20, after=T0 + 20)
    assert str(info.value) == (
        "alert 'A' did not fire within 20s of +20s: it fired only after 40s\n"
        "alert transitions:\n"
        "+30s A: inactive -> pending (value 0.2)\n"
        "+60s A: pending -> firing (value 0.2)\n"
        "+90s A: firing -> resolved (value 0)"
    )


def test_never_fired_and_resolved_failures(spike: AlertEvaluator) -> None:
    with pytest.raises(AssertionError, match=r"^expected no alert to fire; fired: A at \+60s\n"):
        spike.assert_never_fired()
    with pytest.raises(
        AssertionError,
        match=r"^alert 'A' did not resolve within 5s of \+80s: it resolved only after 10s",
    ):
        spike.assert_resolved("A", within=5, after=T0 + 80)
    quiet = evaluator("max(portfolio_drawdown_ratio) > 0.1")
    quiet.observe_all(drawdowns(0, 0))
    with pytest.raises(
        AssertionError,
        match=r"it never fired at all\nalert transitions:\nno alert left the inactive state$",
    ):
        quiet.assert_resolved("A", within=60, after=T0)
    with pytest.raises(SpecError, match=r"no alert rule 'B'; rules: A"):
        quiet.assert_fired("B", within=1, after=T0)
