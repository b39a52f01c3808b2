"""Partial fills: the exchange fills only part of most orders.

With the partial-fill rate at 90% for six minutes, positions are smaller than intended and
the ledger records ``partially_filled`` outcomes. Nothing may be lost: every intent has one
outcome, ``orders_total`` agrees with the ledger, and the ledger's fills and USDT balance
reconcile with the exchange's to the cent.
"""

from pytest_sniper_otel.chaos import Scenario, fault


def _partial_fills_recorded(run):
    partial = run.bot.ledger.by_outcome().get("partially_filled", 0)
    assert partial > 0, f"no partially filled outcome recorded: {run.bot.ledger.by_outcome()}"


SCENARIO = Scenario(
    name="partial_fills",
    title="90% of orders only partially fill for six minutes",
    faults=[fault("market.partial_fills", start="1m", duration="6m", rate=0.9)],
    verify=_partial_fills_recorded,
)


def test_partial_fills(chaos):
    chaos.run(SCENARIO)
