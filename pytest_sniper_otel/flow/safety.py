"""Safety monitoring: mark-to-market, drawdown, consecutive failures, the circuit breaker.

The breaker opens on a drawdown beyond ``max_drawdown`` or on ``max_consecutive_failures``
entry orders in a row that did not fill; while open, risk assessment refuses new entries
(exits still run). After ``breaker_cooldown`` it goes half-open: the next entry decides
whether it closes or opens again. Every opening from closed is a :class:`Halt` with its
reason; re-opening from half-open prolongs that halt (``reopens``), so each halt ends with
exactly one resume or is the one still open.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from opentelemetry import trace

from .agents import EXCHANGE_ERRORS, Agent, Desk, Halt, Position
from .exchange import FeedDisconnected
from .ledger import OrderIntent, Outcome

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class SafetyMonitor(Agent):
    agent_type = "safety-monitor"
    UNHEALTHY = 0.5  # health score below which an agent is reported

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk)
        self.breaker = CLOSED
        self.halts: list[Halt] = []
        self.consecutive_failures = 0
        self.peak_equity = desk.quote_balance
        self.equity = desk.quote_balance
        self._opened_at = -math.inf
        self._reconnect_at = -math.inf
        self._reconnect_failures = 0
        self.unhealthy: set[str] = set()

    def state(self) -> Iterable[object]:
        return (self._recent, self.halts)

    # -- what other agents ask and tell ---------------------------------------------------
    def allows_entry(self) -> tuple[bool, str]:
        if self.breaker == OPEN:
            return False, "circuit_breaker_open"
        return True, "ok"

    def record_outcome(self, intent: OrderIntent) -> None:
        if intent.side != "BUY":
            return
        filled = intent.outcome in (Outcome.FILLED, Outcome.PARTIALLY_FILLED)
        self.consecutive_failures = 0 if filled else self.consecutive_failures + 1
        if self.breaker == HALF_OPEN:
            if filled:
                self._close()
            else:
                self._open("entry failed while half-open")
        elif self.consecutive_failures >= self.desk.config.max_consecutive_failures:
            self._open(f"{self.consecutive_failures} consecutive entry failures")

    @property
    def drawdown(self) -> float:
        return max(0.0, 1.0 - self.equity / self.peak_equity) if self.peak_equity > 0 else 0.0

    @property
    def halted(self) -> bool:
        return self.breaker == OPEN

    # -- the periodic check --------------------------------------------------------------
    def check(self, agents: Sequence[Agent] = ()) -> list[Position]:
        """Mark positions, update drawdown and the breaker, look at the agents' health;
        returns positions to exit."""
        desk, cfg = self.desk, self.desk.config
        attrs = {"trading.operation": "safety_monitoring", "trading.phase": "monitoring"}
        with desk.tracer.span("safety-check", attrs) as span:
            with desk.tracer.span("mark-to-market") as mspan:
                self._ensure_feed()
                exits = [p for p in list(desk.positions.values()) if self._should_exit(p)]
                unrealized = sum(p.qty * p.last_price for p in desk.positions.values())
                self.equity = desk.quote_balance + unrealized
                self.peak_equity = max(self.peak_equity, self.equity)
                mspan.set_attributes({"portfolio.equity_usd": self.equity,
                                      "portfolio.open_positions": len(desk.positions),
                                      "feed.connected": desk.feed.connected})
            with desk.tracer.span("circuit-breaker") as bspan:
                if self.breaker != OPEN and self.drawdown >= cfg.max_drawdown:
                    self._open(f"drawdown {self.drawdown:.1%} >= {cfg.max_drawdown:.0%}")
                elif (self.breaker == OPEN
                      and desk.clock.time() - self._opened_at >= cfg.breaker_cooldown):
                    self.breaker = HALF_OPEN
                    desk.logger.info("circuit breaker half-open", self.context("circuitBreaker"))
                bspan.set_attribute("safety.circuit_breaker", self.breaker)
            span.set_attributes({
                "safety.drawdown": self.drawdown,
                "safety.consecutive_failures": self.consecutive_failures,
                "safety.circuit_breaker": self.breaker, "safety.halted": self.halted,
                "safety.exits": len(exits), "safety.pending_orders": len(desk.ledger.pending()),
                "safety.min_agent_health": min((a.health_score for a in agents), default=1.0),
            })
            self._watch_health(agents)
            self.note(True)
            return exits

    def _watch_health(self, agents: Sequence[Agent]) -> None:
        """Log when an agent turns unhealthy (and when it recovers), not at every check."""
        for agent in agents:
            unhealthy = agent.health_score < self.UNHEALTHY
            if unhealthy != (agent.agent_id in self.unhealthy):
                if unhealthy:
                    self.unhealthy.add(agent.agent_id)
                    self.desk.logger.warning(
                        "agent unhealthy", self.context("agentHealth"),
                        agent=agent.agent_id, health_score=agent.health_score)
                else:
                    self.unhealthy.discard(agent.agent_id)
                    self.desk.logger.info("agent healthy again", self.context("agentHealth"),
                                          agent=agent.agent_id, health_score=agent.health_score)

    def _should_exit(self, position: Position) -> bool:
        cfg, desk = self.desk.config, self.desk
        price = self._price(position.symbol)
        if price is not None:
            position.last_price = price
        change = position.last_price / position.entry_price - 1.0 if position.entry_price else 0.0
        held = desk.clock.time() - position.opened_at
        return change >= cfg.take_profit or change <= -cfg.stop_loss or held >= cfg.max_hold

    def _price(self, symbol: str) -> float | None:
        desk = self.desk
        if desk.feed.connected:
            try:
                return desk.feed.price(symbol)
            except FeedDisconnected as exc:
                desk.logger.warning("price feed disconnected", self.context("markToMarket"),
                                    feed=desk.feed.name, reason=str(exc))
                self._reconnect_at = desk.clock.time()
        # REST fallback, cached briefly so several positions do not hammer the API
        key = f"ticker:{symbol}"
        cached = desk.cache.get(key)
        if cached.hit:
            return float(cached.value)
        try:
            price = desk.client.get_ticker(symbol)
        except EXCHANGE_ERRORS:
            return None
        desk.cache.set(key, price, desk.config.ticker_ttl)
        return price

    def _ensure_feed(self) -> None:
        desk = self.desk
        now = desk.clock.time()
        if desk.feed.connected or now < self._reconnect_at:
            return
        with desk.tracer.span("websocket-reconnect", {"feed.name": desk.feed.name}) as span:
            try:
                desk.feed.connect()
            except FeedDisconnected as exc:
                self._reconnect_failures += 1
                delay = min(30.0, 2.0 ** self._reconnect_failures)
                self._reconnect_at = now + delay
                span.set_attributes({"feed.reconnected": False, "feed.retry_in_s": delay})
                desk.logger.warning("price feed reconnect failed", self.context("reconnectFeed"),
                                    feed=desk.feed.name, retry_in_s=delay, reason=str(exc))
                self.note(False)
                return
            self._reconnect_failures = 0
            span.set_attribute("feed.reconnected", True)
            desk.logger.info("price feed reconnected", self.context("reconnectFeed"),
                             feed=desk.feed.name)

    # -- breaker transitions ----------------------------------------------------------------
    def _open(self, reason: str) -> None:
        desk = self.desk
        now = desk.clock.time()
        # a failed trial while half-open prolongs the halt it belongs to: every halt ends
        # with exactly one resume, or is the one still open
        reopening = self.breaker == HALF_OPEN and bool(self.halts) \
            and self.halts[-1].resumed_at is None
        self.breaker = OPEN
        self._opened_at = now
        if reopening:
            self.halts[-1].reopens += 1
            trace.get_current_span().add_event("circuit_breaker.reopened",
                                               {"safety.reason": reason})
        else:
            self.halts.append(Halt(now, reason))
            trace.get_current_span().add_event("circuit_breaker.opened",
                                               {"safety.reason": reason})
        desk.logger.warning(f"trading halted: {reason}", self.context("circuitBreaker"),
                            reason=reason, drawdown=self.drawdown,
                            consecutive_failures=self.consecutive_failures)

    def _close(self) -> None:
        desk = self.desk
        self.breaker = CLOSED
        self.consecutive_failures = 0
        if self.halts and self.halts[-1].resumed_at is None:
            self.halts[-1].resumed_at = desk.clock.time()
        trace.get_current_span().add_event("circuit_breaker.closed")
        desk.logger.info("trading resumed", self.context("circuitBreaker"))
