"""End to end: the reference bot in steady state, scraped on simulated time, fires nothing."""

from __future__ import annotations

import pytest

from pytest_sniper_otel.alerts import AlertEvaluator, default_rules
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
