"""The default alert rules for the reference bot's metrics (see ``catalog.py``).

Thresholds are starting points a team tunes; each rule has a fault drill in
:mod:`.drills` that proves it fires, resolves, and that a healthy run leaves it silent.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..catalog import MetricSpec
from .rules import AlertRule, RuleSet, rule

_API_ALL = "api_request_latency_ms"
_CACHE_ALL = "cache_operation_latency_ms"
_FAILURES = '"server_error|timeout|transport_error|malformed"'

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
        # the exchange failing us; not rate_limited (its own rule) nor client_error (the
        # exchange refusing an order, e.g. its risk control: business as usual). Errors are
        # counted in api_errors_total, whose series the bot starts at 0: on a quiet bot the
        # first error of a kind is then an increase (a histogram series can't start at 0)
        f"rate(api_errors_total{{error_type=~{_FAILURES}}}[5m]) / rate({_API_ALL}[5m]) > 0.05",
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
        "rate(cache_hits_total[5m])"
        " / (rate(cache_hits_total[5m]) + rate(cache_misses_total[5m]))"
        " < 0.6",
        for_="2m",
        severity="warning",
        annotations={"summary": "cache hit rate below 60% over 5 minutes"},
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
        # health is the share of an agent's last 20 operations that went well, so one early
        # failure reads 0.0: a sustained low score is what matters
        "min(agent_health_score) < 0.5",
        for_="5m",
        severity="warning",
        annotations={"summary": "an agent's health score is below 0.5"},
    ),
    rule(
        "ModelConfidenceDrift",
        # ready-state calls only: most listings score low, so the overall median says little
        'quantile(0.5, model_confidence_distribution{pattern_type="ready_state"}[15m]) < 0.7',
        for_="5m",
        severity="warning",
        annotations={"summary": "median confidence of ready-state calls below 0.7 (15 minutes)"},
    ),
    rule(
        "PatternFalsePositiveRateHigh",
        # over the last 15 minutes, not the gauge's last 50 judged listings (most of an
        # hour). The bot judges 0.3-0.55 "will open" calls a minute, 5-8 in a window: at
        # least 5 of them, so it takes every one of 5 (6 of 7...) calls wrong, never one
        "rate(pattern_false_positives_total[15m])"
        " / rate(pattern_positive_calls_judged_total[15m]) > 0.85"
        " and increase(pattern_positive_calls_judged_total[15m]) >= 5",
        for_="5m",
        severity="warning",
        annotations={"summary": "over 85% of the pattern calls judged in 15 minutes were wrong"},
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
        # the bot halts trading at 15% (BotConfig.max_drawdown); most healthy runs stay under
        # 12.7%, but a market of flopping listings can take a healthy bot past it (seed 2615)
        "max(portfolio_drawdown_ratio) > 0.135",
        for_="1m",
        severity="critical",
        annotations={"summary": "portfolio 13.5% below its peak equity, close to the 15% halt"},
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
