"""The sniper bot: wiring, the multi-agent orchestrator and its discrete-event loop."""

from __future__ import annotations

import contextlib
import copy
import functools
import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis as redis_lib

from ..clock import Clock, SimClock
from ..interrupts import raise_if_interrupted
from .agents import (
    EXCHANGE_ERRORS,
    Agent,
    Desk,
    ExecutionAgent,
    Halt,
    PatternDiscoveryAgent,
    Position,
    RiskAgent,
)
from .cache import RedisCache
from .client import ExchangeClient
from .config import BotConfig, default_credentials
from .exchange import ExchangeSimulator, PriceFeed, SimulatedTransport
from .ledger import Ledger, reconcile
from .model import MODEL_NAME, MODEL_VERSION, PatternMatch, PatternModel
from .safety import SafetyMonitor
from .telemetry import (
    Attrs,
    LogContext,
    StructuredLogger,
    TradingMetricsCollector,
    TradingOperationTracer,
    instruments,
    register_source,
    unregister_source,
)
from .warming import CacheWarmer, WarmTarget


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    workflow: Workflow = field(compare=False)
    every: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Workflow:
    name: str
    steps: tuple[str, ...]
    run: Callable[[], object]


class MultiAgentOrchestrator:
    """Runs workflows at simulated times, each traced as a ``workflow-execution`` root."""

    def __init__(self, clock: Clock, tracer: TradingOperationTracer, logger: StructuredLogger,
                 bot_id: str) -> None:
        self.clock = clock
        self.tracer = tracer
        self.logger = logger
        self.bot_id = bot_id
        self._queue: list[_Event] = []
        self._seq = itertools.count()
        self._runs = itertools.count(1)
        self.executed = 0
        self.errors = 0

    def schedule(self, at: float, workflow: Workflow, *, every: float | None = None) -> None:
        heapq.heappush(self._queue, _Event(at, next(self._seq), workflow, every))

    def execute_workflow(self, workflow: Workflow) -> None:
        workflow_id = f"{workflow.name}-{next(self._runs):05d}"

        def run() -> object:
            try:
                return workflow.run()
            except Exception as exc:
                # logged here, inside the workflow span, so the record carries its ids
                self.errors += 1
                self.logger.error("workflow failed", exc, LogContext(
                    "MultiAgentOrchestrator", workflow.name,
                    agent_id=f"{self.bot_id}/orchestrator"), workflow_id=workflow_id)
                raise

        # a bug in one workflow must not stop the bot (logged above, inside its span)
        with contextlib.suppress(Exception):
            self.tracer.trace_workflow_execution(workflow_id, workflow.name, workflow.steps, run)
        self.executed += 1

    def _next_run(self, at: float, every: float) -> float:
        """The next slot of a periodic workflow after one that ran at ``at``. A run that
        overran its period skips the slots it missed, as a real loop that sleeps between
        runs would: running them back to back (each as slow, say every order-status poll
        timing out) would put the clock ever further ahead of the schedule."""
        due = at + every
        now = self.clock.time()
        if due < now:
            due += every * math.ceil((now - due) / every)
        return due

    def run_until(self, end: float) -> None:
        while self._queue and self._queue[0].at <= end:
            # an interrupt dropped inside a finaliser or weakref callback surfaces here
            raise_if_interrupted()
            event = heapq.heappop(self._queue)
            now = self.clock.time()
            if event.at > now:
                self.clock.tick(event.at - now)
            self.execute_workflow(event.workflow)
            if event.every is not None:
                self.schedule(self._next_run(event.at, event.every), event.workflow,
                              every=event.every)
        now = self.clock.time()
        if now < end:
            self.clock.tick(end - now)


class SniperBot:
    """The instrumented reference bot. Build it with :meth:`create`."""

    def __init__(self, *, seed: int, clock: Clock, redis_client: redis_lib.Redis,
                 config: BotConfig) -> None:
        if isinstance(clock, SimClock) and not clock.running:
            raise RuntimeError("SniperBot needs a running SimClock (use `with SimClock():`)")
        # the process-wide instruments exist before any is used, and the outcome/error
        # counters start at 0 so that their first increase is visible to rate()
        instruments().start_known_series_at_zero()
        self.seed = seed
        self.clock = clock
        # A private copy: chaos turns knobs on this bot (conditions, model, latency, retry)
        # without reaching another bot built from the same config.
        self.config = config = copy.deepcopy(config)
        self.bot_id = config.bot_id or f"sniper-{seed}"
        credentials = config.credentials or default_credentials(seed)
        self.exchange = ExchangeSimulator(
            seed=seed, clock=clock, api_key=credentials.api_key,
            api_secret=credentials.api_secret, listings=config.listings,
            initial_balance=config.initial_balance, conditions=config.conditions,
        )
        self.transport = SimulatedTransport(self.exchange, clock, seed=seed, latency=config.latency)
        self.logger = StructuredLogger("bot")
        self.client = ExchangeClient(
            transport=self.transport, clock=clock, credentials=credentials, seed=seed,
            retry=config.retry, logger=StructuredLogger("exchange"),
            agent_id=f"{self.bot_id}/exchange-client",
        )
        self.cache = RedisCache(redis_client, clock=clock, seed=seed,
                                instrument_commands=config.instrument_redis,
                                logger=StructuredLogger("cache"))
        self.model = PatternModel(seed=seed, clock=clock, threshold=config.confidence_threshold,
                                  knobs=config.model)
        exchange = self.exchange
        self.feed = PriceFeed(lambda symbol: exchange.price_at(symbol, clock.time()), clock)
        self.feed.connect()
        self.ledger = Ledger()
        self.tracer = TradingOperationTracer()
        self.desk = Desk(
            bot_id=self.bot_id, clock=clock, config=config, client=self.client, cache=self.cache,
            model=self.model, feed=self.feed, ledger=self.ledger, tracer=self.tracer,
            metrics=TradingMetricsCollector(), logger=StructuredLogger("agents"),
            quote_balance=config.initial_balance,
        )
        self.safety = SafetyMonitor(self.desk)
        self.discovery = PatternDiscoveryAgent(self.desk)
        self.risk = RiskAgent(self.desk, self.safety.allows_entry, self.discovery.listing)
        self.execution = ExecutionAgent(self.desk, self.safety.record_outcome)
        self.orchestrator = MultiAgentOrchestrator(clock, self.tracer, self.logger, self.bot_id)
        self.scheduled: set[str] = set()  # symbols with a snipe scheduled or done
        self._exiting: set[str] = set()
        self._closed = False
        now = clock.time()
        self.orchestrator.schedule(now, Workflow(
            "pattern-discovery", ("pattern-detection-flow",), self._discovery_workflow),
            every=config.discovery_interval)
        self.orchestrator.schedule(now, Workflow(
            "safety-monitoring", ("safety-check",), self._safety_workflow),
            every=config.safety_interval)
        self.warmer: CacheWarmer | None = None
        if config.cache_warming is not None:
            self.warmer = CacheWarmer(self.cache, clock, config.cache_warming,
                                      self._warm_targets(), StructuredLogger("cache"))
            interval = config.cache_warming.interval
            self.orchestrator.schedule(now + interval, Workflow(
                "cache-warming", ("redis.warmup_strategy",), self.warmer.run), every=interval)
        register_source(self)

    def _warm_targets(self) -> list[WarmTarget]:
        """What the warmer may refresh, each loaded as the bot loads it on a miss. Not
        ``ticker:*``: read only while the feed is down, with a 1 s TTL."""
        cfg, discovery, risk = self.config, self.discovery, self.risk
        return [
            WarmTarget("calendar:*", cfg.calendar_ttl, lambda: ["calendar:latest"],
                       lambda keys: discovery.refresh_calendar(), exchange_calls=1,
                       errors=EXCHANGE_ERRORS),
            WarmTarget("analysis:*", cfg.analysis_ttl, discovery.analysis_keys,
                       discovery.rescore, exchange_calls=0),
            WarmTarget("account:*", cfg.account_ttl, lambda: ["account:balances"],
                       lambda keys: {"account:balances": risk.fetch_free_quote()},
                       exchange_calls=1, errors=EXCHANGE_ERRORS),
        ]

    @classmethod
    def create(
        cls, *, seed: int, clock: Clock, redis: redis_lib.Redis | None = None,
        config: BotConfig | None = None,
    ) -> SniperBot:
        """A bot on ``clock`` (a running SimClock, or a RealClock for load runs), with
        ``redis`` or a private fakeredis."""
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if redis is None:
            import fakeredis

            redis = fakeredis.FakeRedis()
        return cls(seed=seed, clock=clock, redis_client=redis, config=config or BotConfig())

    # -- running -------------------------------------------------------------------------
    def run_for(self, seconds: float) -> None:
        """Run the event loop for ``seconds`` of simulated time."""
        if seconds < 0:
            raise ValueError(f"run_for() takes a non-negative duration, got {seconds!r}")
        if self._closed:
            raise RuntimeError("the bot is closed")
        self.orchestrator.run_until(self.clock.time() + seconds)

    def settle(self, max_seconds: float = 60.0) -> None:
        """Resolve intents whose outcome is still unknown, giving the exchange up to
        ``max_seconds`` of simulated time; whatever stays unknown ends as ``failed``."""
        deadline = self.clock.time() + max_seconds
        while self.ledger.pending() and self.clock.time() < deadline:
            self.orchestrator.execute_workflow(Workflow(
                "order-recovery", ("trading-execution-flow",), self._recover_pending))
            if self.ledger.pending():
                self.clock.tick(min(self.config.safety_interval, deadline - self.clock.time()))
        for intent in self.ledger.pending():
            self.execution.give_up(intent, f"unresolved after {max_seconds:g}s of settling")

    def close(self) -> None:
        """Settle, stop reporting gauges and drop this bot's cache keys."""
        if self._closed:
            return
        self.settle()
        self._closed = True
        unregister_source(self)
        self.cache.close()

    # -- workflows ----------------------------------------------------------------------------
    def _discovery_workflow(self) -> None:
        result = self.discovery.discover(exclude=self.scheduled)
        now = self.clock.time()
        for match in result.candidates:
            self.scheduled.add(match.symbol)
            self.orchestrator.schedule(max(now, match.launch_time), Workflow(
                "snipe", ("risk-assessment", "trading-execution-flow"),
                functools.partial(self._snipe_workflow, match)))

    def _snipe_workflow(self, match: PatternMatch) -> None:
        if self.clock.time() > match.launch_time + self.config.max_lateness:
            self.desk.logger.warning("snipe skipped: launch missed", LogContext(
                "SniperBot", "snipe", symbol=match.symbol, agent_id=self.execution.agent_id))
            return
        decision = self.risk.assess(match)
        if decision.approved:
            self.execution.execute(match.symbol, "BUY", quote_qty=decision.size_usd)

    def _safety_workflow(self) -> None:
        self._recover_pending()
        for position in self.safety.check(self.agents):
            if position.symbol not in self._exiting:
                self._exiting.add(position.symbol)
                self.orchestrator.schedule(self.clock.time(), Workflow(
                    "position-exit", ("trading-execution-flow",),
                    functools.partial(self._exit_workflow, position.symbol)))

    def _exit_workflow(self, symbol: str) -> None:
        try:
            position = self.desk.positions.get(symbol)
            if position is not None and position.qty > 0:
                self.execution.execute(symbol, "SELL", base_qty=position.qty)
        finally:
            if not any(i.pending and i.symbol == symbol for i in self.ledger):
                self._exiting.discard(symbol)

    def _recover_pending(self) -> None:
        for intent in self.ledger.pending():
            self.execution.recover(intent)
            if not intent.pending and intent.side == "SELL":
                self._exiting.discard(intent.symbol)

    # -- results -----------------------------------------------------------------------------------
    @property
    def positions(self) -> dict[str, Position]:
        return self.desk.positions

    @property
    def halts(self) -> list[Halt]:
        return self.safety.halts

    @property
    def agents(self) -> tuple[Agent, ...]:
        return (self.discovery, self.risk, self.execution, self.safety)

    def reconcile(self) -> list[str]:
        return reconcile(self.ledger, self.exchange)

    @property
    def unrealized_pnl(self) -> float:
        return sum(p.qty * p.last_price - p.cost for p in self.desk.positions.values())

    @property
    def pnl(self) -> float:
        return self.desk.realized_pnl + self.unrealized_pnl

    def summary(self) -> dict[str, Any]:
        resolved = [i for i in self.ledger if not i.pending]
        filled = sum(i.outcome in ("filled", "partially_filled") for i in resolved)
        start = self.exchange.epoch
        summary = {
            "seed": self.seed,
            "bot_id": self.bot_id,
            "simulated_seconds": round(self.clock.time() - start, 3),
            "orders": self.ledger.by_outcome(),
            "intents": len(self.ledger),
            "pnl_usd": round(self.pnl, 2),
            "realized_pnl_usd": round(self.desk.realized_pnl, 2),
            "unrealized_pnl_usd": round(self.unrealized_pnl, 2),
            "open_positions": len(self.desk.positions),
            "success_rate_percent": round(100.0 * filled / len(resolved), 2) if resolved else 0.0,
            "workflows": self.orchestrator.executed,
            "workflow_errors": self.orchestrator.errors,
            # times in simulated seconds since the bot started
            "halts": [{"at": round(h.at - start, 3), "reason": h.reason,
                       "resumed_at": h.resumed_at and round(h.resumed_at - start, 3),
                       "reopens": h.reopens}
                      for h in self.halts],
            "circuit_breaker": self.safety.breaker,
            "cache": {"hits": self.cache.hits, "misses": self.cache.misses,
                      "errors": self.cache.errors},
            "cache_breaker": {"opens": self.cache.breaker.opens,
                              "bypassed": self.cache.breaker.bypassed},
            "api_failed_attempts": self.client.failures,
            "model": {"accuracy": round(self.model.accuracy, 4),
                      "false_positive_rate": round(self.model.false_positive_rate, 4),
                      "evaluated": self.model.evaluated},
            "feed_disconnects": self.feed.disconnects,
            "calendar_dropped": {"duplicates": self.discovery.duplicates_dropped,
                                 "stale": self.discovery.stale_dropped},
        }
        warmer = self.warmer
        if warmer is not None:  # only when on: a summary without warming is unchanged
            summary["cache_warming"] = {
                "warm_patterns": sorted(warmer.warm), "refreshes": warmer.refreshes,
                "keys_refreshed": warmer.keys_refreshed, "exchange_calls": warmer.exchange_calls,
                "over_budget": warmer.over_budget, "failures": warmer.failures}
        return summary

    # -- gauges (read by the once-registered callbacks) -------------------------------------------
    def gauge_values(self, metric: str) -> Iterable[tuple[float, Attrs]]:
        # A bot whose simulated clock has stopped belongs to a finished test that did not
        # close it; until the garbage collector frees it, it must not report into the next.
        if isinstance(self.clock, SimClock) and not self.clock.running:
            return ()
        reader = self._gauges.get(metric)
        return reader() if reader is not None else ()

    @functools.cached_property
    def _gauges(self) -> dict[str, Callable[[], Sequence[tuple[float, Attrs]]]]:
        # Built once: each reader reads the bot's state when called, so a scrape of the 13
        # gauges no longer rebuilds this table, nor scans the ledger, once per gauge.
        bot = {"bot_id": self.bot_id}
        return {
            "agent_health_score": lambda: [
                (a.health_score, {**bot, "agent_id": a.agent_id, "agent_type": a.agent_type})
                for a in self.agents],
            "agent_memory_usage_mb": lambda: [
                (a.memory_mb(), {**bot, "agent_id": a.agent_id}) for a in self.agents],
            "websocket_connections_active": lambda: [
                (1.0 if self.feed.connected else 0.0, {**bot, "feed": self.feed.name})],
            "portfolio_pnl_usd": lambda: [
                (self.pnl, {**bot, "currency": "USD", "account_type": "trading"})],
            "trading_success_rate": lambda: [(self._success_rate_percent(), bot)],
            "cache_hit_rate": lambda: [(self.cache.hit_rate_percent, bot)],
            "cache_memory_usage_mb": lambda: [(self.cache.memory_mb, bot)],
            "model_accuracy_score": lambda: [(self.model.accuracy, {
                **bot, "model_name": MODEL_NAME, "time_window": "last_50"})],
            "pattern_false_positive_rate": lambda: [(self.model.false_positive_rate, {
                **bot, "model_name": MODEL_NAME, "threshold": str(self.model.threshold)})],
            "model_version_info": lambda: [
                (1.0, {"model_name": MODEL_NAME, "model_version": MODEL_VERSION})],
            "circuit_breaker_open": lambda: [(1.0 if self.safety.halted else 0.0, bot)],
            "portfolio_drawdown_ratio": lambda: [(self.safety.drawdown, bot)],
        }

    def _success_rate_percent(self) -> float:
        resolved = [i for i in self.ledger if not i.pending]
        if not resolved:
            return 0.0
        filled = sum(i.outcome in ("filled", "partially_filled") for i in resolved)
        return 100.0 * filled / len(resolved)
