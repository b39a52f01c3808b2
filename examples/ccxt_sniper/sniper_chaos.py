"""What the chaos harness needs to run the sniper: its alert rules and a ``system``.

:class:`SniperSystem` is the sniper, the served exchange and a fakeredis on one simulated
clock, for ``Scenario(system=SniperSystem)``: the scenario runner calls ``run_for`` in
steps and faults the targets it names.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.async_support as ccxt
import fakeredis
from ccxt_sniper import SNIPED, Sniper, client_order_id

from pytest_sniper_otel.alerts.rules import RuleSet, rule
from pytest_sniper_otel.catalog import MetricSpec
from pytest_sniper_otel.chaos import SystemContext
from pytest_sniper_otel.flow.server import ExchangeServer

METRICS = {
    spec.name: spec for spec in (
        MetricSpec("sniper_polls_total", "counter", "market polls"),
        MetricSpec("sniper_snipes_total", "counter", "new listings bought"),
        MetricSpec("sniper_errors_total", "counter", "failed polls", attributes=("error_type",)),
    )
}

RULES = RuleSet([
    # backoff caps at 60 s, so a sustained outage still fails a poll a minute
    rule("SniperExchangeFailing", "rate(sniper_errors_total[5m]) > 0.005", for_="1m",
         severity="critical",
         annotations={"summary": "the sniper's polls keep failing: exchange unreachable"}),
], catalog=METRICS)


class SniperSystem:
    def __init__(self, context: SystemContext) -> None:
        self.server = ExchangeServer.create(seed=context.seed, clock=context.clock).start()
        self.loop = asyncio.new_event_loop()
        self.cache = fakeredis.FakeAsyncRedis()
        self.exchange = ccxt.mexc(self.server.ccxt_config())
        self.sniper = Sniper(self.exchange, self.cache)

    def targets(self) -> dict[str, Any]:
        return dict(self.server.chaos_targets())

    def run_for(self, seconds: float) -> None:
        self.loop.run_until_complete(self.sniper.run(seconds))

    def reconcile(self) -> list[str]:
        """Each symbol the sniper remembers has exactly one order on the exchange, and
        the exchange has no order the sniper does not remember."""
        members = self.loop.run_until_complete(self.cache.smembers(SNIPED))
        # redis-py types members as bytes | str: bytes here (no decode_responses)
        remembered = {m.decode() if isinstance(m, bytes) else m for m in members}
        orders = self.server.exchange.orders
        problems = [f"{symbol}: no order on the exchange" for symbol in sorted(remembered)
                    if client_order_id(symbol) not in orders]
        known = {client_order_id(s) for s in remembered}
        problems += [f"{coid}: an order the sniper does not remember"
                     for coid in sorted(set(orders) - known)
                     if orders[coid].status != "NEW"]
        return problems

    def summary(self) -> dict[str, Any]:
        return {"polls": self.sniper.polls, "failed_polls": self.sniper.failures,
                "orders": len(self.server.exchange.orders),
                "requests": len(self.server.calls)}

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.exchange.close())
            self.loop.run_until_complete(self.cache.aclose())
        finally:
            self.loop.close()
            self.server.close()
