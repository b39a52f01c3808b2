from __future__ import annotations

import pytest

from pytest_sniper_otel import Telemetry
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import SniperBot


@pytest.mark.sniper_otel_bot(seed=3)
def test_fixture_runs_the_bot_on_the_test_clock(
    sniper_bot: SniperBot, telemetry: Telemetry, clock: SimClock
) -> None:
    start = clock.time()
    sniper_bot.run_for(120)
    assert clock.time() - start == pytest.approx(120, abs=1)
    assert telemetry.find_spans("workflow-execution")
    assert sniper_bot.seed == 3
