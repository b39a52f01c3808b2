"""The circuit breaker's record and the orchestrator's failure log.

Each halt ends with exactly one resume, or is the one still open (a failed half-open trial
prolongs its halt); a workflow's "workflow failed" ERROR log lies inside its span.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_sniper_otel.chaos import FaultSpec, run_scenario
from pytest_sniper_otel.chaos.strategies import fault_schedules, random_scenario
from pytest_sniper_otel.flow import ApiResponse, BotConfig, MarketConditions, SniperBot
from pytest_sniper_otel.flow.bot import Workflow

from .flowkit import install, listings


def assert_halts_consistent(bot: SniperBot) -> None:
    halts = bot.halts
    assert all(h.resumed_at is not None for h in halts[:-1]), halts
    if halts:
        assert (halts[-1].resumed_at is None) == (bot.safety.breaker != "closed"), (
            halts, bot.safety.breaker)
    else:
        assert bot.safety.breaker == "closed"
    for h in halts:
        assert h.resumed_at is None or h.resumed_at > h.at


def test_a_failed_half_open_trial_prolongs_the_halt(telemetry: Any, clock: Any) -> None:
    # entries every 40 s; every order is refused for the first 6 minutes
    config = BotConfig(listings=listings(*range(60, 900, 40)), breaker_cooldown=60.0,
                       conditions=MarketConditions(partial_fill_rate=0.0, reject_rate=0.0))
    bot = SniperBot.create(seed=1, clock=clock, config=config)
    try:
        faults = install(bot)
        faults.always("order.place", faults.respond(503, b"busy"))
        bot.run_for(420)
        assert bot.safety.breaker != "closed"
        faults.always("order.place", None)
        bot.run_for(480)
        assert len(bot.halts) == 1
        halt = bot.halts[0]
        assert halt.reopens >= 1 and halt.resumed_at is not None
        assert bot.summary()["halts"][0]["reopens"] == halt.reopens
        events = [e.name for s in telemetry.spans for e in s.events
                  if e.name.startswith("circuit_breaker.")]
        assert events.count("circuit_breaker.opened") == 1
        assert events.count("circuit_breaker.reopened") == halt.reopens
        assert events.count("circuit_breaker.closed") == 1
        assert_halts_consistent(bot)
    finally:
        bot.close()


BREAKER_FAULTS = ("exchange.http_error", "exchange.timeout", "exchange.malformed",
                  "exchange.rate_limit")


@pytest.mark.slow
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(schedule=fault_schedules(max_faults=3, names=BREAKER_FAULTS), seed=st.integers(0, 500))
def test_every_halt_resumes_once_or_is_still_open_under_random_schedules(
    schedule: list[FaultSpec], seed: int
) -> None:
    # order placement is where the breaker's failures come from: aim every fault at it
    aimed = [dataclasses.replace(f, params={**f.params, "endpoints": ("order.place",)})
             for f in schedule]
    scenario = dataclasses.replace(random_scenario(aimed), checks=("circuit_breaker",))
    run = run_scenario(scenario, seed=seed)
    run.raise_for_failures()
    assert_halts_consistent(run.bot)


@pytest.mark.sniper_otel_bot(seed=2)
def test_the_workflow_failed_log_is_inside_the_workflow_span(
    sniper_bot: SniperBot, telemetry: Any
) -> None:
    def broken() -> None:
        raise ZeroDivisionError("a bug in a workflow")

    sniper_bot.orchestrator.execute_workflow(Workflow("broken", ("nothing",), broken))
    [record] = [r for r in telemetry.logs if r.body == "workflow failed"]
    [node] = telemetry.find_spans("workflow-execution", attributes={"workflow.name": "broken"})
    span = node.span
    assert record.severity_text == "ERROR"
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    assert span.status.status_code.name == "ERROR"
    assert [e.name for e in span.events] == ["exception"]
    assert sniper_bot.orchestrator.errors == 1
    sniper_bot.run_for(60)  # the bot goes on
    assert sniper_bot.orchestrator.errors == 1


def test_an_always_refusing_exchange_halts_once(telemetry: Any, clock: Any) -> None:
    config = BotConfig(listings=listings(*range(60, 1200, 40)))
    bot = SniperBot.create(seed=4, clock=clock, config=config)
    try:
        faults = install(bot)
        faults.always("order.place", lambda r: ApiResponse(503, b"busy"))
        bot.run_for(1200)
        assert len(bot.halts) == 1 and bot.halts[0].reopens >= 3
        assert bot.safety.breaker != "closed"
        assert_halts_consistent(bot)
    finally:
        bot.close()
