"""The instrumented reference bot: a MEXC-like new-listing sniper on simulated time.

Quick start::

    from pytest_sniper_otel.clock import SimClock
    from pytest_sniper_otel.flow import SniperBot

    with SimClock() as clock:
        bot = SniperBot.create(seed=7, clock=clock)   # private fakeredis
        bot.run_for(600)                               # ten simulated minutes
        bot.settle()                                   # resolve orders still in doubt
        assert bot.reconcile() == []
        print(bot.summary())
        bot.close()

In a test, the ``sniper_bot`` fixture gives the same bot wired to the test's ``telemetry``
and ``clock`` (``@pytest.mark.sniper_otel_bot(seed=..., config=..., redis=...)``).

Public API
----------
``SniperBot.create(*, seed, clock, redis=None, config=None)``; ``bot.run_for(seconds)``,
``bot.settle(max_seconds=60.0)``, ``bot.reconcile() -> list[str]``, ``bot.summary() -> dict``,
``bot.close()``; ``bot.ledger`` (:class:`Ledger` of :class:`OrderIntent`, each ending in one
:class:`Outcome`: filled, partially_filled, rejected, failed), ``bot.halts`` (why trading
stopped), ``bot.exchange`` (the simulator: ``orders``, ``fills``, ``balances``), ``bot.positions``,
``bot.pnl``. :class:`BotConfig` holds every knob.

Each discrete event is a workflow run: ``pattern-discovery`` every 30 s, ``safety-monitoring``
every 5 s, a ``snipe`` at a detected listing's launch, a ``position-exit`` when safety says
so. The bot advances the clock itself: exchange latency, Redis round trips, model
inference, backoff and status polling all ``tick`` the clock inside their spans.

Seams for chaos
---------------
* **Exchange transport** -- ``bot.client.transport``: a callable
  ``(ApiRequest) -> ApiResponse``; the default is ``bot.transport``
  (:class:`SimulatedTransport`: latency on the clock, then ``bot.exchange.handle``). Wrap it::

      inner = bot.client.transport
      bot.client.transport = lambda req: ApiResponse(503, b"{}") if ... else inner(req)

  - 5xx: return ``ApiResponse(503, b"...")`` -> retried with backoff (``bot.client.retry``,
    a :class:`RetryPolicy`: ``max_attempts``, ``base_backoff``, ``max_backoff``, ``timeout``).
  - 429: ``ApiResponse(429, b"{}", {"Retry-After": "2"})`` -> waits exactly that (capped).
  - timeouts: raise :class:`TransportTimeout`, or ``clock.tick(s)`` before/after calling
    ``inner`` so the call outlasts ``retry.timeout`` (2 s): the answer is discarded, as a
    real client would. Calling ``inner`` first models "the exchange acted, the reply was
    lost": the idempotent client order id makes the retry safe (no double fill).
  - latency spikes: ``clock.tick(extra)`` around ``inner``, or ``bot.transport.latency``
    (:class:`LatencyModel`: ``base`` per endpoint, ``jitter``, ``multiplier``).
  - malformed payloads: return a body that is not JSON or breaks the schema -> error span
    (``mexc-api-request``, ``error.type=malformed``) + ERROR log + ``api_errors_total``
    {error_type=malformed}; the call is retried; nothing crashes.
  - stale/duplicated calendar entries: rewrite the ``calendar`` response's ``data`` list
    (``req.endpoint == "calendar"``) -> dropped and counted on the ``fetch-calendar-data``
    span (``calendar.duplicates_dropped``, ``calendar.stale_dropped``).
  - partial fills and rejections: ``bot.exchange.conditions`` (:class:`MarketConditions`:
    ``partial_fill_rate``, ``reject_rate``, ``fill_delay``, ``slippage``).
  ``ApiRequest.endpoint`` is one of ``calendar``, ``ticker``, ``order.place``,
  ``order.status``, ``account``.
* **Websocket feed** -- ``bot.feed`` (:class:`PriceFeed`): ``bot.feed.disconnect(reason,
  down_for=seconds)`` drops it and refuses reconnects for that long; or replace
  ``bot.feed.source`` (``symbol -> price | None``) with one raising :class:`FeedDisconnected`.
  Safety falls back to REST tickers and reconnects with backoff (``websocket-reconnect``).
* **Redis** -- ``bot.cache.client`` is the redis-py client (fakeredis by default). Faults act
  at client or connection level (sync fakeredis ignores ``server.connected = False``): e.g.
  replace ``bot.cache.client`` with a client whose ``execute_command``/``pipeline`` raise
  ``redis.ConnectionError``, or pass such a client to ``create(redis=...)``. Errors are
  counted (``cache_errors_total``, ``cache_operation_latency_ms{result=error}``) and the bot
  falls through to the exchange. Redis latency: ``clock.tick`` inside the client wrapper.
  A hung server (timeouts for a second of real time) opens ``bot.cache.breaker``
  (:class:`CacheBreaker`): the cache skips Redis, a trial per cool-down of the bot's clock.
* **Model** -- ``bot.model.knobs`` (:class:`ModelKnobs`): ``confidence_drift`` (added to
  every score), ``inference_slowdown`` (latency multiplier), ``false_positive_burst``
  (probability a non-ready listing is scored ready).
* **Clock** -- everything reads the clock passed to ``create`` (``bot.clock``); ``jump`` and
  ``tick`` on it are seen by the exchange, the cache expiry and the breaker alike.

Spans (also as data: ``catalog.SPANS``; tracer names: ``mexc-trading-operations``,
``mexc-exchange-client``, ``mexc-redis-operations``, ``mexc-pattern-detection``; redis
command spans from opentelemetry-instrumentation-redis)
-------------------------------------------------------------------------------------------
``workflow-execution`` (root): ``workflow.id``, ``workflow.name`` (pattern-discovery,
  safety-monitoring, snipe, position-exit, order-recovery, and cache-warming with
  ``BotConfig(cache_warming=CacheWarming())``), ``workflow.steps``.
``pattern-detection-flow``: ``trading.operation=pattern_detection``,
  ``trading.phase=discovery``, ``pattern.confidence``, ``pattern.type``,
  ``pattern.symbols_analyzed``; children:
  ``fetch-calendar-data``: ``data.source=mexc_calendar_api``, ``calendar.entries``,
  ``calendar.cache_hit``, ``calendar.duplicates_dropped``, ``calendar.stale_dropped``;
  ``analyze-patterns``: ``ml.model=pattern_discovery_v2``, ``pattern.candidates``,
  ``pattern.symbols_analyzed``; its child ``pattern_analysis`` (the seed's ML span):
  ``ml.model_name``, ``ml.model_type``, ``ml.framework``, ``analysis.type``,
  ``analysis.symbols_count``, ``analysis.confidence_threshold``, ``ml.inference_time_ms``,
  ``ml.patterns_detected``, ``ml.avg_confidence``, ``ml.high_confidence_patterns``.
``risk-assessment``: ``trading.symbol``, ``trading.operation=risk_assessment``,
  ``trading.phase=risk_assessment``, ``pattern.confidence``, ``risk.approved``,
  ``risk.reason`` (approved, portfolio_unavailable, circuit_breaker_open,
  confidence_below_threshold, listing_not_on_calendar, position_already_open,
  max_open_positions, max_exposure, insufficient_free_balance),
  ``risk.position_size_usd``; children ``portfolio-check``
  (``portfolio.free_usd``, ``portfolio.exposure_usd``, ``portfolio.open_positions``),
  ``threshold-validation`` (confirms the listing from the warmed ``listing:*`` cache),
  ``position-limit-check``.
``trading-execution-flow``: ``trading.symbol``, ``trading.operation`` (execution, or
  order_recovery), ``trading.phase=live_trading``, ``execution.id``,
  ``order.client_order_id``, ``order.side``, ``order.outcome`` (once known; else
  ``order.pending=true``), ``order.filled_qty``, ``order.filled_quote_usd``,
  ``order.reason``; children ``place-order`` (``order.status``), ``poll-order-status``
  (``order.polls``, ``order.status``), ``track-position`` (``position.qty``,
  ``position.cost_usd``, ``position.realized_pnl_usd``).
``safety-check``: ``trading.operation=safety_monitoring``, ``trading.phase=monitoring``,
  ``safety.drawdown``, ``safety.consecutive_failures``, ``safety.circuit_breaker``,
  ``safety.halted``, ``safety.exits``, ``safety.pending_orders``,
  ``safety.min_agent_health``; children
  ``mark-to-market`` (``portfolio.equity_usd``, ``portfolio.open_positions``,
  ``feed.connected``), ``websocket-reconnect`` (when disconnected), ``circuit-breaker``
  (events ``circuit_breaker.opened`` with ``safety.reason``, ``circuit_breaker.closed``).
``mexc-api-request`` (CLIENT, one per attempt): ``http.request.method``, ``url.path``,
  ``mexc.endpoint``, ``mexc.attempt``, ``http.response.status_code``, ``error.type``.
``redis.get`` / ``redis.set`` / ``redis.del`` / ``redis.warmup_strategy``:
  ``redis.operation``, ``redis.key``, ``cache.type=redis``, ``cache.key_pattern``,
  ``redis.hit`` ("true"/"false", get only), ``redis.latency_ms``,
  ``cache.warmup.keys_warmed``; children: the instrumentation's ``GET``, ``SET``, ``DEL``
  and pipeline spans.

Metrics: every entry of :mod:`.catalog` (see :mod:`.telemetry`). Logs: stdlib loggers under
``sniper.*`` with ``component``, ``operation``, ``symbol``, ``agent_id``, ``execution_id``.
"""

from .agents import Halt, Position
from .bot import MultiAgentOrchestrator, SniperBot, Workflow
from .cache import CacheBreaker, CacheBypassed, CacheLookup, RedisCache, WarmupStrategy
from .client import (
    ApiError,
    Credentials,
    ExchangeClient,
    ExchangeUnavailable,
    MalformedResponse,
    RetryPolicy,
)
from .config import BotConfig
from .exchange import (
    ApiRequest,
    ApiResponse,
    ExchangeSimulator,
    FeedDisconnected,
    LatencyModel,
    ListingSpec,
    MarketConditions,
    PriceFeed,
    SimulatedTransport,
    Transport,
    TransportError,
    TransportTimeout,
)
from .ledger import Ledger, OrderIntent, Outcome
from .model import ModelKnobs, PatternModel
from .warming import CacheWarmer, CacheWarming

__all__ = [
    "ApiError",
    "ApiRequest",
    "ApiResponse",
    "BotConfig",
    "CacheBreaker",
    "CacheBypassed",
    "CacheLookup",
    "CacheWarmer",
    "CacheWarming",
    "Credentials",
    "ExchangeClient",
    "ExchangeSimulator",
    "ExchangeUnavailable",
    "FeedDisconnected",
    "Halt",
    "LatencyModel",
    "Ledger",
    "ListingSpec",
    "MalformedResponse",
    "MarketConditions",
    "ModelKnobs",
    "MultiAgentOrchestrator",
    "OrderIntent",
    "Outcome",
    "PatternModel",
    "Position",
    "PriceFeed",
    "RedisCache",
    "RetryPolicy",
    "SimulatedTransport",
    "SniperBot",
    "Transport",
    "TransportError",
    "TransportTimeout",
    "WarmupStrategy",
    "Workflow",
]
