"""The default alert rules for the reference bot's metrics (see ``flow/catalog.py``).

Thresholds are starting points a team tunes; each rule has a fault drill in
:mod:`.drills` that proves it fires, resolves, and that a healthy run leaves it silent.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..flow.catalog import MetricSpec
from .rules import AlertRule, RuleSet, rule

_API_ALL = "api_request_latency_ms"
_CACHE_ALL = "cache_operation_latency_ms"

DEFAULT_RULES: tuple[AlertRule, ...] = (
    rule(
        "ExecutionLatencyP99High",
        "quantile(0.99, execution_latency_ms[5m]) > 2000",
        for_="2m",
        severity="critical",
        annotations={"summary": "p99 detection-to-execution latency above 2 s for 2 minutes"},
    ),
    rule(
        "ExchangeApiErrorRatioHigh",
        f'rate({_API_ALL}{{outcome=~"error|timeout"}}[5m]) / rate({_API_ALL}[5m]) > 0.05',
        for_="2m",
        severity="critical",
        annotations={"summary": "more than 5% of MEXC API requests fail or time out"},
    ),
    rule(
        "ExchangeRateLimited",
        f'rate({_API_ALL}{{outcome="rate_limited"}}[2m]) > 0.05',
        for_="1m",
        severity="warning",
        annotations={"summary": "MEXC is rate limiting us (more than 3 rejections a minute)"},
    ),
    rule(
        "CacheHitRateLow",
        "rate(cache_hits_total[10m])"
        " / (rate(cache_hits_total[10m]) + rate(cache_misses_total[10m]))"
        " < 0.5",
        for_="5m",
        severity="warning",
        annotations={"summary": "cache hit rate below 50% over 10 minutes"},
    ),
    rule(
        "RedisUnavailable",
        f'rate({_CACHE_ALL}{{result="error"}}[1m]) / rate({_CACHE_ALL}[1m]) > 0.5',
        for_="1m",
        severity="critical",
        annotations={"summary": "most Redis operations fail: Redis is down or unreachable"},
    ),
    rule(
        "AgentHealthLow",
        "min(agent_health_score) < 0.5",
        for_="2m",
        severity="warning",
        annotations={"summary": "an agent's health score is below 0.5"},
    ),
    rule(
        "ModelConfidenceDrift",
        "quantile(0.5, model_confidence_distribution[15m]) < 0.5",
        for_="10m",
        severity="warning",
        annotations={"summary": "median model confidence below 0.5 over 15 minutes"},
    ),
    rule(
        "PatternFalsePositiveRateHigh",
        "max(pattern_false_positive_rate) > 0.3",
        for_="10m",
        severity="warning",
        annotations={"summary": "pattern false-positive rate above 30%"},
    ),
    rule(
        "WebsocketConnectionsDown",
        "sum(websocket_connections_active) < 1",
        for_="1m",
        severity="critical",
        annotations={"summary": "no active market-data websocket connection"},
    ),
    rule(
        "PortfolioDrawdownHigh",
        "max(portfolio_drawdown_ratio) > 0.1",
        for_="1m",
        severity="critical",
        annotations={"summary": "portfolio more than 10% below its peak equity"},
    ),
    rule(
        "CircuitBreakerOpen",
        "max(circuit_breaker_open) > 0",
        severity="critical",
        annotations={"summary": "the safety circuit breaker halted trading"},
    ),
    rule(
        "TelemetryDropped",
        "increase(telemetry_dropped_total[5m]) > 0",
        for_="1m",
        severity="warning",
        annotations={"summary": "telemetry is being dropped by a failing export path"},
    ),
)


def default_rules(catalog: Mapping[str, MetricSpec] | None = None) -> RuleSet:
    """The default rules, validated against ``catalog`` (the reference bot's by default)."""
    return RuleSet(DEFAULT_RULES, catalog=catalog)
