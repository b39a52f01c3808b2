"""Hypothesis strategies for random fault schedules against the bot.

``fault_schedules()`` draws a list of :class:`~.faults.FaultSpec` (which faults, their
parameters, start, duration, probability); ``random_scenarios()`` wraps one in a
:class:`~.scenario.Scenario` whose checks are the invariants that must hold under *any*
schedule (nothing lost, spans ended, logs correlated, error spans carry the exception,
retries are error siblings, telemetry accounted, trading not blocked). Alert expectations
and the steady-state hypothesis are left out: they depend on which faults were drawn.

A failing example shrinks towards fewer, shorter, earlier faults and is printed as code
(``fault('redis.outage', start=60.0, duration=15.0)``) with the bot seed, so
``run_scenario(Scenario(..., faults=[...]), seed=N)`` reproduces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from .faults import FaultSpec, Schedule
from .scenario import CHECKS, Scenario

# Invariants that must hold whatever the schedule: every check but those that depend on
# which faults were drawn.
# (with breaker="any", the circuit breaker check is the halt record's consistency only)
SCHEDULE_DEPENDENT = ("steady_state", "alerts")
INVARIANTS = tuple(c for c in CHECKS if c not in SCHEDULE_DEPENDENT)

_ENDPOINTS = st.sampled_from(
    [(), ("calendar",), ("order.place",), ("order.status",), ("ticker", "account")]
)

# fault name -> strategy of its parameters
RECIPES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "exchange.http_error": st.fixed_dictionaries(
        {"status": st.sampled_from([500, 502, 503, 504]), "endpoints": _ENDPOINTS}),
    "exchange.rate_limit": st.fixed_dictionaries(
        {"retry_after": st.sampled_from([0.5, 1.0, 3.0, 10.0]), "endpoints": _ENDPOINTS}),
    "exchange.timeout": st.fixed_dictionaries(
        {"after": st.sampled_from([2.5, 5.0]), "server_acted": st.booleans(),
         "endpoints": _ENDPOINTS}),
    "exchange.latency": st.fixed_dictionaries(
        {"latency": st.sampled_from([0.2, 1.0, 3.0]), "jitter": st.sampled_from([0.0, 1.0]),
         "endpoints": _ENDPOINTS}),
    "exchange.malformed": st.fixed_dictionaries(
        {"mode": st.sampled_from(["truncated", "not_json", "wrong_schema", "wrong_order"]),
         "endpoints": _ENDPOINTS}),
    "exchange.stale_calendar": st.just({}),
    "exchange.duplicate_calendar": st.just({}),
    "market.partial_fills": st.fixed_dictionaries({"rate": st.sampled_from([0.5, 1.0])}),
    "market.dud_listings": st.just({}),
    "feed.disconnect": st.fixed_dictionaries({"down_for": st.sampled_from([5.0, 60.0])}),
    "redis.outage": st.just({}),
    "redis.latency": st.fixed_dictionaries({"latency": st.sampled_from([0.01, 0.2])}),
    "redis.eviction": st.fixed_dictionaries({"flush": st.booleans()}),
    "clock.jump": st.fixed_dictionaries({"seconds": st.sampled_from([-120.0, -30.0, 45.0,
                                                                     300.0])}),
    "clock.skew": st.fixed_dictionaries(
        {"component": st.sampled_from(["exchange", "model", "cache"]),
         "offset": st.sampled_from([-30.0, 5.0, 60.0])}),
    "model.confidence_drift": st.fixed_dictionaries(
        {"shift": st.sampled_from([-0.5, -0.2, 0.3])}),
    "model.inference_slowdown": st.fixed_dictionaries(
        {"factor": st.sampled_from([5.0, 50.0])}),
    "model.false_positive_burst": st.fixed_dictionaries(
        {"rate": st.sampled_from([0.3, 1.0])}),
    "telemetry.exporter_raises": st.fixed_dictionaries(
        {"signal": st.sampled_from(["traces", "all"])}),
    "telemetry.exporter_hangs": st.just({}),
    "telemetry.exporter_slow": st.fixed_dictionaries({"latency": st.sampled_from([5.0, 60.0])}),
    "telemetry.queue_overflow": st.fixed_dictionaries(
        {"max_queue": st.sampled_from([0, 8, 64])}),
}


@st.composite
def fault_specs(draw: Callable[..., Any], *, duration: float = 600.0,
                names: tuple[str, ...] | None = None) -> FaultSpec:
    """One fault from :data:`RECIPES` (or ``names``), scheduled inside ``duration``."""
    name = draw(st.sampled_from(sorted(names or RECIPES)))
    params = draw(RECIPES[name])
    start = float(draw(st.integers(0, int(duration // 15) - 1)) * 15)
    length = float(draw(st.integers(1, 20)) * 15)
    probability = draw(st.sampled_from([1.0, 0.5, 0.1]))
    # may_miss: a drawn window may see no traffic on the fault's path, or a probability of
    # 0.1 may never come up; these scenarios check invariants, not that faults struck
    return FaultSpec(name, params, Schedule(start, min(length, duration - start), probability,
                                            may_miss=True))


def fault_schedules(*, max_faults: int = 4, duration: float = 600.0,
                    names: tuple[str, ...] | None = None) -> st.SearchStrategy[list[FaultSpec]]:
    """Lists of up to ``max_faults`` faults; overlapping ones are allowed and expected."""
    return st.lists(fault_specs(duration=duration, names=names), min_size=1,
                    max_size=max_faults)


def random_scenario(
    faults: list[FaultSpec], *, duration: float = 600.0, warmup: float = 60.0,
    recovery: float = 120.0,
) -> Scenario:
    """A scenario for a drawn schedule: the invariants only, on ten simulated minutes."""
    return Scenario(
        name="random_schedule",
        title="a schedule drawn by Hypothesis",
        faults=faults,
        duration=duration,
        warmup=warmup,
        recovery=recovery,
        checks=INVARIANTS,
        breaker="any",
        baseline=False,
        tags={"origin": "hypothesis"},
    )
