"""Hypothesis draws fault schedules; the invariants must hold under every one of them.

A failure shrinks to a minimal schedule; its message ends with the call that reproduces it,
``run_scenario(random_scenario([fault(...), ...]), seed=N)``.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_sniper_otel.chaos import FaultSpec, fault, run_scenario
from pytest_sniper_otel.chaos.strategies import fault_schedules, random_scenario


@pytest.mark.slow
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=fault_schedules(max_faults=4), seed=st.integers(0, 10_000))
# every order-status poll timing out made each safety run overrun its period, and the bot
# ran the missed runs back to back: the clock ran away and the run never returned
@example(schedule=[fault("exchange.timeout", start=120, duration=135, endpoints=("order.status",),
                         server_acted=True, after=5.0)], seed=2374)
def test_invariants_hold_under_random_schedules(schedule: list[FaultSpec], seed: int) -> None:
    run = run_scenario(random_scenario(schedule), seed=seed)
    # on failure the message ends with the call that reproduces the shrunk example
    run.raise_for_failures()


@pytest.mark.slow
def test_a_failing_schedule_shrinks_to_the_fault_that_breaks_it() -> None:
    from hypothesis import find

    # A made-up invariant that a Redis outage breaks: no cache error at all. Telemetry
    # faults never change what the bot does, so the outage alone is the minimal schedule.
    def breaks(schedule: list[FaultSpec]) -> bool:
        scenario = random_scenario(schedule, duration=60.0, warmup=30.0, recovery=0.0)
        errors: int = run_scenario(scenario, seed=1).summary["cache"]["errors"]
        return errors > 0

    names = ("redis.outage", "telemetry.exporter_raises", "telemetry.queue_overflow")
    minimal = find(
        fault_schedules(max_faults=3, duration=60.0, names=names),
        breaks,
        settings=settings(max_examples=40, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck)),
    )
    assert [f.name for f in minimal] == ["redis.outage"]
    assert repr(minimal[0]).startswith("fault('redis.outage', start=0, duration=")
