"""The four agents: pattern discovery, risk assessment, execution, safety monitoring.

They share one :class:`Desk` (clock, config, client, cache, ledger, positions, telemetry)
and report their health from a rolling window of recent operations.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from opentelemetry import trace

from ..clock import Clock
from .cache import RedisCache, WarmupStrategy
from .client import (
    ApiError,
    CalendarEntry,
    ExchangeClient,
    ExchangeUnavailable,
    MalformedResponse,
    OrderState,
)
from .config import BotConfig
from .exchange import QUOTE, PriceFeed
from .ledger import Ledger, OrderIntent, Outcome
from .model import PatternMatch, PatternModel
from .telemetry import (
    AttrValue,
    LogContext,
    StructuredLogger,
    TradingMetricsCollector,
    TradingOperationTracer,
    mark_error,
)

EXCHANGE_ERRORS = (ExchangeUnavailable, ApiError, MalformedResponse)
DUST_USD = 0.01  # a remainder worth less than this is not a position


@dataclass
class Position:
    symbol: str
    qty: float
    cost: float
    opened_at: float
    last_price: float

    @property
    def entry_price(self) -> float:
        return self.cost / self.qty if self.qty else 0.0


@dataclass
class Halt:
    """Trading halted by the circuit breaker from ``at`` until ``resumed_at`` (None: still
    halted); ``reopens`` counts failed half-open trials in between."""

    at: float
    reason: str
    resumed_at: float | None = None
    reopens: int = 0


@dataclass
class Desk:
    """What the agents share."""

    bot_id: str
    clock: Clock
    config: BotConfig
    client: ExchangeClient
    cache: RedisCache
    model: PatternModel
    feed: PriceFeed
    ledger: Ledger
    tracer: TradingOperationTracer
    metrics: TradingMetricsCollector
    logger: StructuredLogger
    positions: dict[str, Position] = field(default_factory=dict)
    realized_pnl: float = 0.0
    quote_balance: float = 0.0  # the bot's own view: initial - bought + sold


class Agent:
    agent_type = "agent"

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.agent_id = f"{desk.bot_id}/{self.agent_type}"
        self._recent: deque[tuple[float, bool]] = deque(maxlen=20)

    def context(self, operation: str, **kw: Any) -> LogContext:
        return LogContext(type(self).__name__, operation, agent_id=self.agent_id, **kw)

    def note(self, ok: bool) -> None:
        self._recent.append((self.desk.clock.time(), ok))

    @property
    def health_score(self) -> float:
        """Share of the last 20 operations within ``health_window`` that went well (1.0 when
        there are none). The window lets a rarely acting agent (execution) recover after a
        fault instead of reading 0 until its next order."""
        since = self.desk.clock.time() - self.desk.config.health_window
        recent = [ok for at, ok in self._recent if at >= since]
        return sum(recent) / len(recent) if recent else 1.0

    def state(self) -> Iterable[object]:
        return (self._recent,)

    def memory_mb(self) -> float:
        """Rough footprint of the agent's own state (shallow sizes of what it holds)."""
        total = sys.getsizeof(self)
        for item in self.state():
            total += sys.getsizeof(item)
            if isinstance(item, dict | list | set | deque):
                total += sum(sys.getsizeof(x) for x in item)
        return total / (1024 * 1024)


# -- pattern discovery -----------------------------------------------------------------------
@dataclass(frozen=True)
class DiscoveryResult:
    confidence: float
    pattern_type: str
    symbols_analyzed: int
    candidates: tuple[PatternMatch, ...] = ()
    error_description: str = ""


class PatternDiscoveryAgent(Agent):
    """Calendar fetch -> symbol analysis -> confidence scoring."""

    agent_type = "pattern-discovery"

    def __init__(self, desk: Desk) -> None:
        super().__init__(desk)
        self.seen_states: dict[str, tuple[int, int, int]] = {}
        self.duplicates_dropped = 0
        self.stale_dropped = 0
        # the last analysed listings, with their newest calendar entry
        self.upcoming: dict[str, CalendarEntry] = {}

    def state(self) -> Iterable[object]:
        return (self._recent, self.seen_states)

    def discover(self, exclude: set[str]) -> DiscoveryResult:
        return self.desk.tracer.trace_pattern_detection_flow(lambda: self._discover(exclude))

    def _discover(self, exclude: set[str]) -> DiscoveryResult:
        desk = self.desk
        with desk.tracer.span("fetch-calendar-data", {"data.source": "mexc_calendar_api"}) as span:
            try:
                entries, as_of = self._fetch_calendar(span)
            except EXCHANGE_ERRORS as exc:
                mark_error(span, exc)
                desk.logger.error("calendar fetch failed", exc, self.context("fetchCalendar"))
                self.note(False)
                return DiscoveryResult(0.0, "none", 0, error_description=f"calendar: {exc}")
        # ground truth only from a snapshot taken after the launch: a cached one from just
        # before it says "not open" of a listing that opened since
        for entry in entries:
            if entry.launch_time <= as_of:
                desk.model.observe_outcome(entry.symbol, entry.trading_open)
        now = desk.clock.time()
        upcoming = [e for e in entries if e.launch_time + desk.config.max_lateness > now
                    and e.symbol not in exclude]
        self.upcoming = {e.symbol: e for e in upcoming}
        with desk.tracer.span("analyze-patterns", {"ml.model": "pattern_discovery_v2"}) as span:
            matches = self._analyze(upcoming)
            candidates = tuple(
                m for m in matches if m.pattern_type == "ready_state"
                and m.confidence >= desk.config.confidence_threshold
            )
            span.set_attributes({"pattern.candidates": len(candidates),
                                 "pattern.symbols_analyzed": len(matches)})
        for m in matches:
            if m.pattern_type != "monitoring":
                desk.metrics.record_pattern_detection(m.symbol, m.confidence, m.pattern_type)
        for m in candidates:
            desk.logger.info("ready-state pattern detected", self.context("analyzePatterns",
                             symbol=m.symbol), confidence=m.confidence, pattern_type=m.pattern_type)
        self.note(True)
        best = max(matches, key=lambda m: m.confidence, default=None)
        return DiscoveryResult(best.confidence if best else 0.0,
                               best.pattern_type if best else "none", len(matches), candidates)

    def _fetch_calendar(self, span: trace.Span) -> tuple[list[CalendarEntry], float]:
        """The calendar's entries, and the time they were asked for (earlier if cached)."""
        desk = self.desk
        cached = desk.cache.get("calendar:latest")
        if cached.hit:
            entries = [_entry_from(e) for e in cached.value["entries"]]
            as_of = float(cached.value["as_of"])
            span.set_attribute("calendar.cache_hit", True)
        else:
            desk.logger.info("Fetching calendar data from MEXC API",
                             self.context("fetchCalendar", symbol="calendar"))
            as_of = desk.clock.time()
            fetched = desk.client.get_calendar()
            entries, dropped_dup, dropped_stale = self._sanitize(fetched)
            desk.cache.set("calendar:latest", _calendar_value(as_of, entries),
                           desk.config.calendar_ttl)
            self._warm_listings(entries)
            span.set_attributes({"calendar.cache_hit": False,
                                 "calendar.duplicates_dropped": dropped_dup,
                                 "calendar.stale_dropped": dropped_stale})
        span.set_attribute("calendar.entries", len(entries))
        return entries, as_of

    def _warm_listings(self, entries: list[CalendarEntry]) -> None:
        desk = self.desk
        now = desk.clock.time()
        upcoming = {f"listing:{e.symbol}": asdict(e) for e in entries if e.launch_time > now}
        desk.cache.execute_warmup_strategy(
            WarmupStrategy("listing:*", lambda: upcoming, desk.config.listing_ttl)
        )

    def refresh_calendar(self) -> dict[str, Any]:
        """A fresh ``calendar:latest`` value, fetched and sanitized as on a miss (the
        upcoming listings are warmed too): what the cache warmer loads."""
        as_of = self.desk.clock.time()
        entries, _, _ = self._sanitize(self.desk.client.get_calendar())
        self._warm_listings(entries)
        for entry in entries:  # a re-score then uses the newest state, not a stale one
            if entry.symbol in self.upcoming:
                self.upcoming[entry.symbol] = entry
        return {"calendar:latest": _calendar_value(as_of, entries)}

    def analysis_keys(self) -> list[str]:
        """``analysis:*`` keys of the last analysed listings that are still upcoming."""
        desk = self.desk
        now = desk.clock.time()
        return [f"analysis:{symbol}" for symbol, entry in self.upcoming.items()
                if entry.launch_time + desk.config.max_lateness > now]

    def rescore(self, keys: Iterable[str]) -> dict[str, Any]:
        """Fresh ``analysis:*`` values for ``keys``, scored on the listings' newest known
        calendar state: what the cache warmer loads."""
        entries = [self.upcoming[key.partition(":")[2]] for key in keys]
        matches = self.desk.model.analyze(entries, "cache_warming") if entries else []
        return {f"analysis:{m.symbol}": _analysis_value(e, m)
                for e, m in zip(entries, matches, strict=True)}

    def _sanitize(self, entries: list[CalendarEntry]) -> tuple[list[CalendarEntry], int, int]:
        """Drop duplicated entries, and stale ones whose state went backwards."""
        unique: dict[str, CalendarEntry] = {}
        duplicates = stale = 0
        for entry in entries:
            if entry.symbol in unique:
                duplicates += 1
                continue
            previous = self.seen_states.get(entry.symbol)
            if previous is not None and entry.ready_state < previous:
                stale += 1  # an older snapshot than one we already saw
                continue
            unique[entry.symbol] = entry
            self.seen_states[entry.symbol] = entry.ready_state
        if duplicates or stale:
            self.desk.logger.warning("calendar entries dropped", self.context("fetchCalendar"),
                                     duplicates=duplicates, stale=stale)
        self.duplicates_dropped += duplicates
        self.stale_dropped += stale
        return list(unique.values()), duplicates, stale

    def _analyze(self, entries: list[CalendarEntry]) -> list[PatternMatch]:
        desk = self.desk
        matches: dict[str, PatternMatch] = {}
        to_score: list[CalendarEntry] = []
        for entry in entries:
            key = f"analysis:{entry.symbol}"
            cached = desk.cache.get(key)
            if cached.hit and tuple(cached.value["state"]) == entry.ready_state:
                matches[entry.symbol] = PatternMatch(**cached.value["match"])
                continue
            if cached.hit:
                desk.cache.delete(key, reason="state_change")
            to_score.append(entry)
        if to_score:
            for match in desk.model.analyze(to_score, "calendar_scan"):
                matches[match.symbol] = match
                entry = next(e for e in to_score if e.symbol == match.symbol)
                desk.cache.set(f"analysis:{match.symbol}", _analysis_value(entry, match),
                               desk.config.analysis_ttl)
        return [matches[e.symbol] for e in entries]

    def listing(self, symbol: str) -> CalendarEntry | None:
        """A listing's calendar entry: from the warmed cache (``listing:*``), else a fresh
        calendar."""
        cached = self.desk.cache.get(f"listing:{symbol}")
        if cached.hit:
            return _entry_from(cached.value)
        try:
            return next((e for e in self.desk.client.get_calendar() if e.symbol == symbol), None)
        except EXCHANGE_ERRORS:
            return None


def _analysis_value(entry: CalendarEntry, match: PatternMatch) -> dict[str, Any]:
    return {"state": list(entry.ready_state), "match": asdict(match)}


def _calendar_value(as_of: float, entries: list[CalendarEntry]) -> dict[str, Any]:
    """The cached calendar, with the time it was asked for: what it says of a launch is
    ground truth only if the launch came before that time."""
    return {"as_of": as_of, "entries": [asdict(e) for e in entries]}


def _entry_from(data: dict[str, Any]) -> CalendarEntry:
    return CalendarEntry(data["vcoin_id"], data["symbol"], data["launch_time"],
                         (data["ready_state"][0], data["ready_state"][1], data["ready_state"][2]),
                         data["trading_open"])


# -- risk ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RiskDecision:
    approved: bool
    reason: str
    size_usd: float = 0.0


class RiskAgent(Agent):
    """Portfolio check -> threshold validation -> position limits."""

    agent_type = "risk-assessment"

    def __init__(
        self, desk: Desk, breaker_allows: Callable[[], tuple[bool, str]],
        confirm_listing: Callable[[str], CalendarEntry | None],
    ) -> None:
        super().__init__(desk)
        self.breaker_allows = breaker_allows
        self.confirm_listing = confirm_listing

    def assess(self, match: PatternMatch) -> RiskDecision:
        desk, cfg = self.desk, self.desk.config
        attrs: dict[str, AttrValue] = {
            "trading.symbol": match.symbol, "trading.operation": "risk_assessment",
            "trading.phase": "risk_assessment", "pattern.confidence": match.confidence,
        }
        with desk.tracer.span("risk-assessment", attrs) as span:
            decision = self._assess(match, cfg)
            span.set_attributes({"risk.approved": decision.approved, "risk.reason": decision.reason,
                                 "risk.position_size_usd": decision.size_usd})
            self.note(decision.reason != "portfolio_unavailable")
            level = desk.logger.info if decision.approved else desk.logger.warning
            level(f"risk assessment: {decision.reason}",
                  self.context("assessRisk", symbol=match.symbol),
                  approved=decision.approved, size_usd=decision.size_usd)
            return decision

    def _assess(self, match: PatternMatch, cfg: BotConfig) -> RiskDecision:
        desk = self.desk
        with desk.tracer.span("portfolio-check") as span:
            free = self._free_quote()
            exposure = sum(p.qty * p.last_price for p in desk.positions.values())
            span.set_attributes({"portfolio.free_usd": free if free is not None else -1.0,
                                 "portfolio.exposure_usd": exposure,
                                 "portfolio.open_positions": len(desk.positions)})
            if free is None:
                mark_error(span, "account unavailable")
                return RiskDecision(False, "portfolio_unavailable")
        equity = free + exposure
        size = min(cfg.max_position_usd, cfg.max_position_fraction * equity)
        size = round(size * (0.5 + 0.5 * match.confidence), 2)
        with desk.tracer.span("threshold-validation") as span:
            allowed, why = self.breaker_allows()
            span.set_attributes({"risk.confidence_threshold": cfg.confidence_threshold,
                                 "risk.breaker_allows": allowed})
            if not allowed:
                return RiskDecision(False, why)
            if match.confidence < cfg.confidence_threshold:
                return RiskDecision(False, "confidence_below_threshold")
            # the listing must still be on the calendar (warmed cache, else the API)
            if self.confirm_listing(match.symbol) is None:
                return RiskDecision(False, "listing_not_on_calendar")
        with desk.tracer.span("position-limit-check") as span:
            span.set_attributes({"risk.max_open_positions": cfg.max_open_positions,
                                 "risk.max_exposure_usd": cfg.max_exposure_fraction * equity})
            if match.symbol in desk.positions:
                return RiskDecision(False, "position_already_open")
            if len(desk.positions) >= cfg.max_open_positions:
                return RiskDecision(False, "max_open_positions")
            if exposure + size > cfg.max_exposure_fraction * equity:
                return RiskDecision(False, "max_exposure")
            if size > free or size <= 0:
                return RiskDecision(False, "insufficient_free_balance")
        return RiskDecision(True, "approved", size)

    def _free_quote(self) -> float | None:
        cache = self.desk.cache
        cached = cache.get("account:balances")
        if cached.hit:
            return float(cached.value)
        try:
            free = self.fetch_free_quote()
        except EXCHANGE_ERRORS:
            return None
        cache.set("account:balances", free, self.desk.config.account_ttl)
        return free

    def fetch_free_quote(self) -> float:
        """The account's free quote balance, from the exchange."""
        balances = self.desk.client.get_account()
        return balances[QUOTE].free if QUOTE in balances else 0.0


# -- execution -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExecutionResult:
    intent: OrderIntent

    @property
    def ok(self) -> bool:
        return self.intent.outcome in (Outcome.FILLED, Outcome.PARTIALLY_FILLED)

    @property
    def error_description(self) -> str:
        i = self.intent
        return f"{i.outcome or 'pending'}: {i.reason}" if not self.ok else ""

    def span_attributes(self) -> dict[str, AttrValue]:
        i = self.intent
        attrs: dict[str, AttrValue] = {
            "order.client_order_id": i.client_order_id, "order.side": i.side,
            "order.filled_qty": i.filled_qty, "order.filled_quote_usd": i.filled_quote,
        }
        if i.outcome is None:
            attrs["order.pending"] = True
        else:
            attrs["order.outcome"] = str(i.outcome)
        if i.reason:
            attrs["order.reason"] = i.reason
        return attrs


_OUTCOME_OF_STATUS = {"FILLED": Outcome.FILLED, "PARTIALLY_CANCELED": Outcome.PARTIALLY_FILLED,
                      "CANCELED": Outcome.FAILED}


class ExecutionAgent(Agent):
    """Order placement -> status polling -> position tracking; ids make retries idempotent."""

    agent_type = "execution"

    def __init__(self, desk: Desk, on_outcome: Callable[[OrderIntent], None]) -> None:
        super().__init__(desk)
        self.on_outcome = on_outcome
        self._seq = 0

    def execute(
        self, symbol: str, side: str, *, quote_qty: float = 0.0, base_qty: float = 0.0
    ) -> ExecutionResult:
        desk = self.desk
        self._seq += 1
        coid = f"{desk.bot_id}-{self._seq:05d}"
        intent = desk.ledger.open(OrderIntent(
            client_order_id=coid, symbol=symbol, side=side, created_at=desk.clock.time(),
            execution_id=f"exec-{self._seq:05d}", quote_qty=quote_qty, base_qty=base_qty,
        ))
        attrs = {"execution.id": intent.execution_id, "order.client_order_id": coid,
                 "order.side": side}
        return desk.tracer.trace_execution_flow(symbol, lambda: self._execute(intent),
                                                attributes=attrs)

    def recover(self, intent: OrderIntent) -> ExecutionResult:
        """Settle an intent whose outcome was unknown (the exchange was unreachable)."""
        attrs = {"trading.operation": "order_recovery", "execution.id": intent.execution_id,
                 "order.client_order_id": intent.client_order_id, "order.side": intent.side}

        def run() -> ExecutionResult:
            self._poll_and_resolve(intent, placed=None, started=time.monotonic())
            return ExecutionResult(intent)

        return self.desk.tracer.trace_execution_flow(intent.symbol, run, attributes=attrs)

    def give_up(self, intent: OrderIntent, reason: str) -> ExecutionResult:
        """End an intent whose outcome could not be learned as ``failed``."""
        attrs = {"trading.operation": "order_recovery", "execution.id": intent.execution_id,
                 "order.client_order_id": intent.client_order_id, "order.side": intent.side}

        def run() -> ExecutionResult:
            self._resolve(intent, Outcome.FAILED, None, time.monotonic(), reason=reason)
            return ExecutionResult(intent)

        return self.desk.tracer.trace_execution_flow(intent.symbol, run, attributes=attrs)

    def _execute(self, intent: OrderIntent) -> ExecutionResult:
        desk = self.desk
        started = time.monotonic()
        placed: OrderState | None = None
        with desk.tracer.span("place-order", {"order.client_order_id": intent.client_order_id,
                                              "order.side": intent.side}) as span:
            try:
                placed = desk.client.place_order(
                    intent.symbol, intent.side, intent.client_order_id,
                    quote_qty=intent.quote_qty, base_qty=intent.base_qty,
                )
                span.set_attribute("order.status", placed.status)
            except ApiError as exc:
                mark_error(span, exc)
                self._resolve(intent, Outcome.REJECTED, None, started,
                              reason=f"{exc.code} {exc.msg}")
                return ExecutionResult(intent)
            except (ExchangeUnavailable, MalformedResponse) as exc:
                # Unknown: the exchange may have the order. Ask before deciding.
                mark_error(span, exc)
        self._poll_and_resolve(intent, placed, started)
        return ExecutionResult(intent)

    def _poll_and_resolve(self, intent: OrderIntent, placed: OrderState | None,
                          started: float) -> None:
        desk, cfg = self.desk, self.desk.config
        state = placed
        with desk.tracer.span("poll-order-status",
                              {"order.client_order_id": intent.client_order_id}) as span:
            polls = 0
            try:
                while (state is None or not state.final) and polls < cfg.max_status_polls:
                    desk.clock.tick(cfg.status_poll_interval)
                    polls += 1
                    seen = desk.client.get_order(
                        intent.symbol, intent.client_order_id, side=intent.side,
                        quote_qty=intent.quote_qty, base_qty=intent.base_qty)
                    if seen is None and placed is None:
                        break  # the exchange never saw it
                    state = seen or state
            except EXCHANGE_ERRORS as exc:
                mark_error(span, exc)
                span.set_attribute("order.polls", polls)
                self._leave_pending(intent, f"status unknown: {exc}")
                return
            span.set_attributes({"order.polls": polls,
                                 "order.status": state.status if state else "UNKNOWN"})
        if state is None:
            self._resolve(intent, Outcome.FAILED, None, started,
                          reason="the order never reached the exchange")
        elif not state.final:
            self._leave_pending(intent, "order still open after polling")
        else:
            self._resolve(intent, _OUTCOME_OF_STATUS[state.status], state, started,
                          reason="" if state.status != "CANCELED" else "canceled without a fill")

    def _leave_pending(self, intent: OrderIntent, why: str) -> None:
        self.note(False)
        self.desk.logger.warning("order outcome unknown, will recover", self.context(
            "executeOrder", symbol=intent.symbol, execution_id=intent.execution_id),
            client_order_id=intent.client_order_id, reason=why)

    def _resolve(self, intent: OrderIntent, outcome: Outcome, state: OrderState | None,
                 started: float, *, reason: str = "") -> None:
        desk = self.desk
        desk.ledger.resolve(
            intent.client_order_id, outcome, at=desk.clock.time(),
            filled_qty=state.executed_qty if state else 0.0,
            filled_quote=state.quote_qty if state else 0.0, reason=reason,
        )
        if state is not None and state.executed_qty > 0:
            self._track_position(intent, state)
            # A fill moved money: the cached free balance is stale, and risk would approve
            # orders the account can no longer pay for.
            desk.cache.delete("account:balances", reason="balance_changed")
        success = outcome in (Outcome.FILLED, Outcome.PARTIALLY_FILLED)
        self.note(success)
        desk.metrics.record_execution_latency(intent.symbol, (time.monotonic() - started) * 1000.0,
                                              success)
        desk.metrics.record_order_outcome(str(outcome), intent.side)
        level = desk.logger.info if success else desk.logger.warning
        level(f"order {outcome}", self.context("executeOrder", symbol=intent.symbol,
                                                execution_id=intent.execution_id),
              client_order_id=intent.client_order_id, outcome=str(outcome), side=intent.side,
              filled_qty=intent.filled_qty, filled_quote=intent.filled_quote, reason=reason)
        self.on_outcome(intent)

    def _track_position(self, intent: OrderIntent, state: OrderState) -> None:
        desk = self.desk
        with desk.tracer.span("track-position", {"trading.symbol": intent.symbol}) as span:
            now = desk.clock.time()
            if intent.side == "BUY":
                desk.quote_balance -= state.quote_qty
                pos = desk.positions.get(intent.symbol)
                if pos is None:
                    pos = desk.positions[intent.symbol] = Position(
                        intent.symbol, 0.0, 0.0, now, state.avg_price)
                pos.qty += state.executed_qty
                pos.cost += state.quote_qty
            else:
                desk.quote_balance += state.quote_qty
                pos = desk.positions[intent.symbol]
                share = min(1.0, state.executed_qty / pos.qty) if pos.qty else 1.0
                cost = pos.cost * share
                desk.realized_pnl += state.quote_qty - cost
                pos.qty -= state.executed_qty
                pos.cost -= cost
                if pos.qty * pos.last_price < DUST_USD:
                    del desk.positions[intent.symbol]  # dust left on the exchange
            pos.last_price = state.avg_price or pos.last_price
            span.set_attributes({"position.qty": max(pos.qty, 0.0), "position.cost_usd": pos.cost,
                                 "position.realized_pnl_usd": desk.realized_pnl})
