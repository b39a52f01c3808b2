"""The order ledger: every intent ends in exactly one outcome, and reconciles with the exchange."""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from .exchange import QUOTE, ExchangeSimulator


class Outcome(enum.StrEnum):
    FILLED = "filled"
    PARTIALLY_FILLED = "partially_filled"
    REJECTED = "rejected"
    FAILED = "failed"


@dataclass
class OrderIntent:
    client_order_id: str
    symbol: str
    side: str
    created_at: float
    execution_id: str
    quote_qty: float = 0.0  # BUY: USDT to spend
    base_qty: float = 0.0  # SELL: asset to sell
    outcome: Outcome | None = None
    filled_qty: float = 0.0
    filled_quote: float = 0.0
    reason: str = ""
    resolved_at: float | None = None

    @property
    def pending(self) -> bool:
        return self.outcome is None


class LedgerError(RuntimeError):
    """An intent resolved twice, or an unknown intent."""


class Ledger:
    def __init__(self) -> None:
        self._intents: dict[str, OrderIntent] = {}

    def open(self, intent: OrderIntent) -> OrderIntent:
        if intent.client_order_id in self._intents:
            raise LedgerError(f"duplicate client order id {intent.client_order_id}")
        self._intents[intent.client_order_id] = intent
        return intent

    def resolve(
        self, client_order_id: str, outcome: Outcome, *, at: float, filled_qty: float = 0.0,
        filled_quote: float = 0.0, reason: str = "",
    ) -> OrderIntent:
        intent = self._intents.get(client_order_id)
        if intent is None:
            raise LedgerError(f"unknown client order id {client_order_id}")
        if intent.outcome is not None:
            raise LedgerError(f"{client_order_id} already ended as {intent.outcome}")
        intent.outcome = outcome
        intent.filled_qty, intent.filled_quote = filled_qty, filled_quote
        intent.reason, intent.resolved_at = reason, at
        return intent

    def __iter__(self) -> Iterator[OrderIntent]:
        return iter(self._intents.values())

    def __len__(self) -> int:
        return len(self._intents)

    def get(self, client_order_id: str) -> OrderIntent | None:
        return self._intents.get(client_order_id)

    def pending(self) -> list[OrderIntent]:
        return [i for i in self._intents.values() if i.pending]

    def by_outcome(self) -> dict[str, int]:
        counts = Counter(str(i.outcome) if i.outcome else "pending" for i in self)
        return dict(sorted(counts.items()))

    def digest(self) -> list[tuple[str, str, str, str | None, float, float]]:
        """A comparable summary (determinism checks)."""
        return [(i.client_order_id, i.symbol, i.side, i.outcome and str(i.outcome),
                 round(i.filled_qty, 9), round(i.filled_quote, 6)) for i in self]


def _close(a: float, b: float) -> bool:
    # infinity is within any relative tolerance of itself and of everything else
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def impossible_values(intent: OrderIntent) -> list[str]:
    """What no real order can hold: non-finite or negative amounts, more than was asked."""
    fields = {"quote_qty": intent.quote_qty, "base_qty": intent.base_qty,
              "filled_qty": intent.filled_qty, "filled_quote": intent.filled_quote}
    problems = [f"{name} is {value!r}" for name, value in fields.items()
                if not math.isfinite(value) or value < 0]
    if problems:
        return problems
    if intent.side == "BUY" and intent.filled_quote > intent.quote_qty * (1 + 1e-9) + 1e-8:
        problems.append(f"spent {intent.filled_quote:g} of an order for {intent.quote_qty:g}")
    if intent.side == "SELL" and intent.filled_qty > intent.base_qty * (1 + 1e-9) + 1e-8:
        problems.append(f"sold {intent.filled_qty:g} of an order for {intent.base_qty:g}")
    return problems


def reconcile(ledger: Ledger, exchange: ExchangeSimulator) -> list[str]:
    """Discrepancies between the ledger and the exchange's own orders, fills and balances."""
    exchange.settle()
    problems: list[str] = []
    fills: dict[str, tuple[float, float]] = {}
    for fill in exchange.fills:
        qty, quote = fills.get(fill.client_order_id, (0.0, 0.0))
        fills[fill.client_order_id] = (qty + fill.qty, quote + fill.quote)
    for intent in ledger:
        coid = intent.client_order_id
        qty, quote = fills.pop(coid, (0.0, 0.0))
        problems += [f"{coid}: impossible ledger value: {p}" for p in impossible_values(intent)]
        if intent.pending:
            if coid in exchange.orders and exchange.orders[coid].status == "NEW":
                continue  # in flight on both sides
            problems.append(f"{coid}: still pending in the ledger")
            continue
        if intent.outcome in (Outcome.REJECTED, Outcome.FAILED) and coid in exchange.orders:
            problems.append(f"{coid}: ledger says {intent.outcome} but the exchange has the order "
                            f"({exchange.orders[coid].status})")
        if not (_close(qty, intent.filled_qty) and _close(quote, intent.filled_quote)):
            problems.append(f"{coid}: ledger filled {intent.filled_qty:g} for "
                            f"{intent.filled_quote:g} {QUOTE}, exchange filled {qty:g} for "
                            f"{quote:g}")
        expected = {Outcome.FILLED: "FILLED", Outcome.PARTIALLY_FILLED: "PARTIALLY_CANCELED"}
        order = exchange.orders.get(coid)
        if intent.outcome in expected and (
            order is None or order.status != expected[intent.outcome]
        ):
            problems.append(f"{coid}: ledger says {intent.outcome}, exchange status "
                            f"{order.status if order else 'missing'}")
    for coid in sorted(set(exchange.orders) - {i.client_order_id for i in ledger}):
        problems.append(f"{coid}: the exchange has an order the ledger never intended")
    for coid in sorted(fills):
        problems.append(f"{coid}: fills on the exchange with no ledger intent")
    # balances: what the ledger bought and sold, against what the exchange holds
    implied: dict[str, float] = {QUOTE: exchange.initial_balance}
    for intent in ledger:
        sign = 1.0 if intent.side == "BUY" else -1.0
        asset = intent.symbol.removesuffix(QUOTE)
        implied[QUOTE] = implied[QUOTE] - sign * intent.filled_quote
        implied[asset] = implied.get(asset, 0.0) + sign * intent.filled_qty
    for asset in sorted(set(implied) | set(exchange.balances)):
        free, locked = exchange.balances.get(asset, (0.0, 0.0))
        if not math.isfinite(free) or not math.isfinite(locked) or min(free, locked) < -1e-8:
            problems.append(f"{asset} balance: the exchange holds an impossible "
                            f"{free!r} free, {locked!r} locked")
        elif not _close(implied.get(asset, 0.0), free + locked):
            problems.append(f"{asset} balance: ledger implies {implied.get(asset, 0.0):.8f}, "
                            f"exchange holds {free + locked:.8f}")
    return problems
