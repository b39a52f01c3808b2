"""The reference bot's telemetry contract: every metric it emits and every span it names.

Names, descriptions and bucket boundaries of the seed's metrics are taken from the seed
proposal as written; the few metrics the seed does not name (marked ``extension``) exist
so that alerts have something real to watch (circuit breaker, drawdown, dropped telemetry).
Instruments are created from this table, and alert rules are validated against it.

Lab code, kept outside ``flow/`` and importing nothing of the bot: loading the alert rules
or their parser must not load the bot, redis and the Redis instrumentation.
"""

from __future__ import annotations

from dataclasses import dataclass

from .metrics import MetricKind


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: MetricKind
    description: str
    unit: str = ""
    boundaries: tuple[float, ...] | None = None
    attributes: tuple[str, ...] = ()
    observable: bool = False
    extension: bool = False
    # every value each attribute can take, for counters whose label sets are all known:
    # they start at 0, so the first error is an increase rate() can see
    known_values: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def zero_series(self) -> list[dict[str, str]]:
        """Every known attribute set (the product of ``known_values``); none if not all known."""
        if not self.known_values or {k for k, _ in self.known_values} != set(self.attributes):
            return []
        sets: list[dict[str, str]] = [{}]
        for key, values in self.known_values:
            sets = [{**attrs, key: value} for attrs in sets for value in values]
        return sets


ORDER_OUTCOMES = ("filled", "partially_filled", "rejected", "failed")
ORDER_SIDES = ("BUY", "SELL")
API_ENDPOINTS = ("calendar", "ticker", "order.place", "order.status", "account")
API_ERROR_TYPES = ("server_error", "timeout", "transport_error", "malformed", "rate_limited",
                   "client_error")
PATTERN_MODEL = "pattern_discovery_v2"
MODEL_NAMES = (PATTERN_MODEL,)  # every model the bot can run


_SPECS = (
    # TradingMetricsCollector
    MetricSpec("pattern_detections_total", "counter", "Total number of pattern detections",
               attributes=("symbol", "pattern_type", "confidence_tier")),
    MetricSpec("pattern_confidence_score", "histogram", "Distribution of pattern confidence scores",
               boundaries=(0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99),
               attributes=("symbol", "pattern_type")),
    MetricSpec("execution_latency_ms", "histogram",
               "Time from pattern detection to order execution",
               unit="ms", boundaries=(10, 50, 100, 500, 1000, 2000, 5000),
               attributes=("symbol", "execution_result")),
    MetricSpec("agent_health_score", "gauge", "Current health score of trading agents",
               attributes=("bot_id", "agent_id", "agent_type"), observable=True),
    MetricSpec("agent_memory_usage_mb", "gauge", "Memory usage per agent in MB", unit="MB",
               attributes=("bot_id", "agent_id"), observable=True),
    MetricSpec("api_request_latency_ms", "histogram", "MEXC API request latency distribution",
               unit="ms", attributes=("endpoint", "method", "outcome", "status_code")),
    MetricSpec("websocket_connections_active", "gauge", "Number of active WebSocket connections",
               attributes=("bot_id", "feed"), observable=True),
    MetricSpec("portfolio_pnl_usd", "gauge", "Current portfolio profit/loss in USD", unit="USD",
               attributes=("bot_id", "currency", "account_type"), observable=True),
    MetricSpec("trading_success_rate", "gauge", "Trading success rate percentage", unit="%",
               attributes=("bot_id",), observable=True),
    # RedisCacheObservability
    MetricSpec("cache_hits_total", "counter", "Total cache hits", attributes=("key_pattern",)),
    MetricSpec("cache_misses_total", "counter", "Total cache misses", attributes=("key_pattern",)),
    MetricSpec("cache_hit_rate", "gauge", "Cache hit rate percentage", unit="%",
               attributes=("bot_id",), observable=True),
    MetricSpec("cache_operation_latency_ms", "histogram", "Cache operation latency distribution",
               unit="ms", boundaries=(1, 5, 10, 25, 50, 100, 200),
               attributes=("operation", "result")),
    MetricSpec("cache_memory_usage_mb", "gauge", "Redis memory usage in MB", unit="MB",
               attributes=("bot_id",), observable=True),
    MetricSpec("cache_invalidations_total", "counter", "Total cache invalidations by reason",
               attributes=("reason", "key_pattern")),
    # MLModelObservability
    MetricSpec("model_inference_latency_ms", "histogram", "Time taken for model inference",
               unit="ms", boundaries=(10, 50, 100, 250, 500, 1000, 2000),
               attributes=("model_name", "analysis_type")),
    MetricSpec("model_confidence_distribution", "histogram",
               "Distribution of model confidence scores",
               boundaries=(0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
               attributes=("pattern_type", "risk_level")),
    MetricSpec("model_accuracy_score", "gauge", "Rolling accuracy score of pattern detection model",
               attributes=("bot_id", "model_name", "time_window"), observable=True),
    MetricSpec("detected_patterns_by_type", "counter", "Count of detected patterns by type",
               attributes=("pattern_type", "confidence_tier")),
    MetricSpec("pattern_false_positive_rate", "gauge", "False positive rate for pattern detection",
               attributes=("bot_id", "model_name", "threshold"), observable=True),
    MetricSpec("model_version_info", "gauge", "Current model version information",
               attributes=("model_name", "model_version"), observable=True),
    # extensions: what the alert rules need and the seed leaves implicit
    MetricSpec("orders_total", "counter", "Order intents by final ledger outcome",
               attributes=("outcome", "side"), extension=True,
               known_values=(("outcome", ORDER_OUTCOMES), ("side", ORDER_SIDES))),
    MetricSpec("circuit_breaker_open", "gauge", "1 while the safety circuit breaker halts trading",
               attributes=("bot_id",), observable=True, extension=True),
    MetricSpec("portfolio_drawdown_ratio", "gauge", "Drawdown from peak equity, 0..1",
               attributes=("bot_id",), observable=True, extension=True),
    MetricSpec("telemetry_dropped_total", "counter",
               "Telemetry items dropped by a failing export path",
               attributes=("signal", "reason"), extension=True),
    MetricSpec("api_errors_total", "counter",
               "Exchange API attempts that failed, by kind (timeout, malformed, 5xx, 429...)",
               attributes=("endpoint", "error_type"), extension=True,
               known_values=(("endpoint", API_ENDPOINTS), ("error_type", API_ERROR_TYPES))),
    MetricSpec("cache_errors_total", "counter",
               "Cache operations that failed (the bot falls through to the exchange)",
               attributes=("operation", "error_type"), extension=True),
    # the false-positive rate over a window, as a ratio of the rates of these two: the
    # seed's gauge is over every call judged so far, too slow to move on a degraded model
    MetricSpec("pattern_positive_calls_judged_total", "counter",
               "Pre-launch 'will open' calls whose launch has passed and been judged",
               attributes=("model_name",), extension=True,
               known_values=(("model_name", MODEL_NAMES),)),
    MetricSpec("pattern_false_positives_total", "counter",
               "Judged 'will open' calls whose listing did not open",
               attributes=("model_name",), extension=True,
               known_values=(("model_name", MODEL_NAMES),)),
)

METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in _SPECS}


@dataclass(frozen=True)
class SpanSpec:
    """A span the bot opens, with every attribute key it may carry."""

    name: str
    tracer: str
    attributes: tuple[str, ...]


_TRADING = ("trading.symbol", "trading.operation", "trading.phase")
_ORDER = ("execution.id", "order.client_order_id", "order.side", "order.outcome",
          "order.pending", "order.filled_qty", "order.filled_quote_usd", "order.reason")
_REDIS = ("redis.operation", "redis.key", "cache.type", "cache.key_pattern", "redis.hit",
          "redis.latency_ms")

_SPAN_SPECS = (
    SpanSpec("workflow-execution", "mexc-trading-operations",
             ("workflow.id", "workflow.name", "workflow.steps")),
    SpanSpec("pattern-detection-flow", "mexc-trading-operations",
             ("trading.operation", "trading.phase", "pattern.confidence", "pattern.type",
              "pattern.symbols_analyzed")),
    SpanSpec("fetch-calendar-data", "mexc-trading-operations",
             ("data.source", "calendar.entries", "calendar.cache_hit",
              "calendar.duplicates_dropped", "calendar.stale_dropped")),
    SpanSpec("analyze-patterns", "mexc-trading-operations",
             ("ml.model", "pattern.candidates", "pattern.symbols_analyzed")),
    SpanSpec("pattern_analysis", "mexc-pattern-detection",
             ("ml.model_name", "ml.model_type", "ml.framework", "analysis.type",
              "analysis.symbols_count", "analysis.confidence_threshold", "ml.inference_time_ms",
              "ml.patterns_detected", "ml.avg_confidence", "ml.high_confidence_patterns",
              "ml.error_type", "ml.error_message")),
    SpanSpec("risk-assessment", "mexc-trading-operations",
             (*_TRADING, "pattern.confidence", "risk.approved", "risk.reason",
              "risk.position_size_usd")),
    SpanSpec("portfolio-check", "mexc-trading-operations",
             ("portfolio.free_usd", "portfolio.exposure_usd", "portfolio.open_positions")),
    SpanSpec("threshold-validation", "mexc-trading-operations",
             ("risk.confidence_threshold", "risk.breaker_allows")),
    SpanSpec("position-limit-check", "mexc-trading-operations",
             ("risk.max_open_positions", "risk.max_exposure_usd")),
    SpanSpec("trading-execution-flow", "mexc-trading-operations", (*_TRADING, *_ORDER)),
    SpanSpec("place-order", "mexc-trading-operations",
             ("order.client_order_id", "order.side", "order.status")),
    SpanSpec("poll-order-status", "mexc-trading-operations",
             ("order.client_order_id", "order.polls", "order.status")),
    SpanSpec("track-position", "mexc-trading-operations",
             ("trading.symbol", "position.qty", "position.cost_usd", "position.realized_pnl_usd")),
    SpanSpec("safety-check", "mexc-trading-operations",
             ("trading.operation", "trading.phase", "safety.drawdown",
              "safety.consecutive_failures", "safety.circuit_breaker", "safety.halted",
              "safety.exits", "safety.pending_orders", "safety.min_agent_health")),
    SpanSpec("mark-to-market", "mexc-trading-operations",
             ("portfolio.equity_usd", "portfolio.open_positions", "feed.connected")),
    SpanSpec("circuit-breaker", "mexc-trading-operations", ("safety.circuit_breaker",)),
    SpanSpec("websocket-reconnect", "mexc-trading-operations",
             ("feed.name", "feed.reconnected", "feed.retry_in_s")),
    SpanSpec("mexc-api-request", "mexc-exchange-client",
             ("http.request.method", "url.path", "mexc.endpoint", "mexc.attempt",
              "http.response.status_code", "error.type")),
    SpanSpec("redis.get", "mexc-redis-operations", _REDIS),
    SpanSpec("redis.set", "mexc-redis-operations", _REDIS),
    SpanSpec("redis.del", "mexc-redis-operations", _REDIS),
    SpanSpec("redis.warmup_strategy", "mexc-redis-operations",
             (*_REDIS, "cache.warmup.keys_warmed")),
)

SPANS: dict[str, SpanSpec] = {spec.name: spec for spec in _SPAN_SPECS}
"""Spans of the bot's own tracers. Redis command spans (``GET``, ``SET``...) come from
opentelemetry-instrumentation-redis (tracer ``opentelemetry.instrumentation.redis``)."""
