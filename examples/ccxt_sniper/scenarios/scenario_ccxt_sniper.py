"""The exchange answers 503 for four minutes: the sniper backs off, its alert fires and
resolves, and it buys nothing twice. Run with
``sniper-otel chaos --path examples/ccxt_sniper/scenarios`` or as a test."""

import sys
from pathlib import Path

# The example is not installed: its modules live one directory up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sniper_chaos import RULES, SniperSystem

from pytest_sniper_otel.chaos import ChaosController, Scenario, expect_alert, fault

SCENARIO = Scenario(
    name="ccxt_sniper_exchange_down",
    title="the exchange answers 503 for four minutes: back off, alert, resolve",
    faults=[fault("exchange.http_error", start="1m", duration="4m", status=503)],
    alerts=[expect_alert("SniperExchangeFailing", within="4m", resolves_within="8m")],
    warmup=120.0, duration=360.0, recovery=600.0,
    baseline=False,
    system=SniperSystem,
    rules=RULES,
)


def test_ccxt_sniper_exchange_down(chaos: ChaosController) -> None:
    chaos.run(SCENARIO)
