"""End to end: the reference bot in steady state, scraped on simulated time, fires nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_sniper_otel.alerts import AlertEvaluator, Recording, default_rules, export, run_promtool
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import SniperBot
from pytest_sniper_otel.telemetry import Telemetry


@pytest.mark.parametrize("seed", [0, 3, 8])
def test_the_bot_in_steady_state_fires_no_alert(
    seed: int, telemetry: Telemetry, clock: SimClock
) -> None:
    bot = SniperBot.create(seed=seed, clock=clock)
    try:
        ev = AlertEvaluator(default_rules(), interval=15.0, source=telemetry.metrics_snapshot)
        ev.run(3600, bot.run_for)
    finally:
        bot.close()
    assert len(ev.timeline()) == 241
    # the rules saw real data, not an empty scrape
    last = ev.timeline()[-1].values
    assert last["CacheHitRateLow"] is not None and last["AgentHealthLow"] is not None
    ev.assert_never_fired()


def test_promtool_agrees_with_the_evaluator_on_a_recorded_bot_run(
    telemetry: Telemetry, clock: SimClock, promtool: str, tmp_path: Path
) -> None:
    # seed 20 runs out of quote balance after ~50 minutes: its execution agent's health
    # falls to 0 and AgentHealthLow fires, so real data exercises a firing alert too
    bot = SniperBot.create(seed=20, clock=clock)
    try:
        ev = AlertEvaluator(default_rules(), interval=15.0, source=telemetry.metrics_snapshot)
        ev.run(3600, bot.run_for)
    finally:
        bot.close()
    result = run_promtool(promtool, export(tmp_path, ev.rules, [Recording.of(ev, "bot seed 20")]))
    assert result.ok, result.output
