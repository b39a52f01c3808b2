"""Nothing lost: one outcome per intent, ledger and exchange reconcile, runs are deterministic."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_sniper_otel import Telemetry
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import Outcome, SniperBot
from pytest_sniper_otel.flow.ledger import LedgerError


def shape(node: Any) -> tuple[Any, ...]:
    return (node.name, tuple(shape(c) for c in node.children))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_ten_minute_run_reconciles_and_every_intent_has_one_outcome(
    seed: int, telemetry: Telemetry, clock: SimClock
) -> None:
    bot = SniperBot.create(seed=seed, clock=clock)
    try:
        bot.run_for(600)
        bot.settle()
        assert len(bot.ledger) > 0
        assert bot.ledger.pending() == []
        assert bot.reconcile() == []
        outcome_spans = [s for s in telemetry.find_spans("trading-execution-flow")
                         if "order.outcome" in s.attributes]
        by_order = {s.attributes["order.client_order_id"]: s for s in outcome_spans}
        assert len(by_order) == len(outcome_spans) == len(bot.ledger)
        for intent in bot.ledger:
            assert by_order[intent.client_order_id].attributes["order.outcome"] == intent.outcome
        assert sum(bot.ledger.by_outcome().values()) == len(bot.ledger)
        assert bot.summary()["workflow_errors"] == 0
    finally:
        bot.close()


def test_same_seed_same_ledger_and_span_tree_shapes(telemetry: Telemetry, clock: SimClock) -> None:
    runs = []
    for _ in range(2):
        telemetry.clear()
        bot = SniperBot.create(seed=5, clock=clock)
        bot.run_for(600)
        bot.close()
        runs.append((bot.ledger.digest(), [shape(r) for r in telemetry.roots], bot.summary()))
    (ledger_a, shapes_a, summary_a), (ledger_b, shapes_b, summary_b) = runs
    assert ledger_a and ledger_a == ledger_b
    assert shapes_a == shapes_b
    assert summary_a["pnl_usd"] == summary_b["pnl_usd"]

    telemetry.clear()
    other = SniperBot.create(seed=6, clock=clock)
    other.run_for(600)
    other.close()
    assert other.ledger.digest() != ledger_a


@pytest.mark.sniper_otel_bot(seed=4)
def test_reconcile_reports_what_does_not_match(sniper_bot: SniperBot) -> None:
    sniper_bot.run_for(600)
    sniper_bot.settle()
    assert sniper_bot.reconcile() == []
    filled = next(i for i in sniper_bot.ledger if i.outcome == Outcome.FILLED)
    filled.filled_qty *= 2
    problems = sniper_bot.reconcile()
    assert any(p.startswith(f"{filled.client_order_id}: ledger filled") for p in problems)
    filled.filled_qty /= 2

    # an order the bot never intended, placed behind its back
    symbol = filled.symbol
    sniper_bot.client.place_order(symbol, "BUY", "rogue-0001", quote_qty=10.0)
    sniper_bot.clock.tick(1.0)
    problems = sniper_bot.reconcile()
    assert "rogue-0001: the exchange has an order the ledger never intended" in problems
    assert any(p.startswith("USDT balance") for p in problems)


@pytest.mark.sniper_otel_bot(seed=4)
def test_an_intent_cannot_end_twice(sniper_bot: SniperBot) -> None:
    sniper_bot.run_for(300)
    intent = next(iter(sniper_bot.ledger))
    with pytest.raises(LedgerError, match="already ended"):
        sniper_bot.ledger.resolve(intent.client_order_id, Outcome.FAILED, at=0.0)
