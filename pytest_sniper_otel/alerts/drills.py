"""Fault drills for the default rules, on a synthetic metric model of the reference bot.

:class:`SyntheticBot` emits the catalogue's metrics the way the OTel SDK does (a counter or
histogram series appears on its first recording, observable gauges report on every
collection) under :class:`Conditions` that a drill changes for a while: healthy, then a
fault, then rolled back. A drill proves its rule fires after the fault starts, resolves after
rollback, and that no rule outside its expected set fires. The recordings double as
promtool unit tests of every shipped rule.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..catalog import METRICS, MetricSpec
from ..metrics import MetricAccumulator, MetricsSnapshot, SeriesPoint
from .evaluator import AlertEvaluator
from .rules import RuleSet

# the SDK's default explicit buckets, for histograms the catalogue gives none
SDK_DEFAULT_BOUNDARIES = (
    0.0,
    5.0,
    10.0,
    25.0,
    50.0,
    75.0,
    100.0,
    250.0,
    500.0,
    750.0,
    1000.0,
    2500.0,
    5000.0,
    7500.0,
    10000.0,
)
# how a step's observations spread around its typical value
_SPREAD = (0.6, 0.8, 0.9, 1.0, 1.0, 1.1, 1.2, 1.5)
START_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z, the SimClock's default start


@dataclass(frozen=True)
class Conditions:
    """What happens in each evaluation interval: counts per step and gauge levels."""

    api_requests: int = 20
    api_error_fraction: float = 0.0
    api_timeout_fraction: float = 0.0
    api_rate_limited: int = 0
    api_latency_ms: float = 80.0
    executions: int = 4
    execution_latency_ms: float = 150.0
    cache_lookups: int = 30
    cache_hit_fraction: float = 0.8
    cache_error_fraction: float = 0.0
    agent_health: tuple[float, ...] = (0.95, 0.9, 0.92)
    inferences: int = 3
    high_confidence_detections: int = 1
    model_confidence: float = 0.85
    # "will open" calls judged after their launch (the real bot: about 0.5 a minute) and
    # the share of them that was wrong; fractions carry over to the next step
    positive_calls_judged: float = 0.125
    false_positive_rate: float = 0.1
    websocket_connections: int = 2
    drawdown: float = 0.02
    breaker_open: bool = False
    dropped_per_step: int = 0


HEALTHY = Conditions()


class SyntheticBot:
    """Produces one cumulative :class:`MetricsSnapshot` per step under given conditions."""

    def __init__(
        self,
        *,
        interval: float = 15.0,
        start_ns: int = START_NS,
        catalog: Mapping[str, MetricSpec] = METRICS,
    ) -> None:
        self.interval_ns = round(interval * 1e9)
        self.now_ns = start_ns
        self.catalog = catalog
        self._acc = MetricAccumulator()
        self._step = 0
        self._judged_carry = 0.0
        self._false_carry = 0.0
        self._judged = 0
        self._false = 0
        # as the bot does: the counters whose label sets are all known start at 0
        for spec in catalog.values():
            for attributes in spec.zero_series() if spec.kind == "counter" else ():
                self._acc.add(SeriesPoint(spec.name, "counter", attributes, spec.unit, value=0.0))

    def _spec(self, name: str) -> MetricSpec:
        return self.catalog[name]

    def _count(self, name: str, n: float, **attributes: Any) -> None:
        if n > 0:
            spec = self._spec(name)
            self._acc.add(SeriesPoint(name, "counter", attributes, spec.unit, value=float(n)))

    def _gauge(self, name: str, value: float, **attributes: Any) -> None:
        spec = self._spec(name)
        self._acc.add(SeriesPoint(name, "gauge", attributes, spec.unit, value=float(value)))

    def _observe(self, name: str, typical: float, n: int, **attributes: Any) -> None:
        if n <= 0:
            return
        spec = self._spec(name)
        bounds = spec.boundaries or SDK_DEFAULT_BOUNDARIES
        counts = [0] * (len(bounds) + 1)
        values = [typical * _SPREAD[(self._step + i) % len(_SPREAD)] for i in range(n)]
        for v in values:  # OTel buckets are (previous bound, bound]
            counts[bisect.bisect_left(bounds, v)] += 1
        self._acc.add(
            SeriesPoint(
                name,
                "histogram",
                attributes,
                spec.unit,
                count=n,
                sum=sum(values),
                min=min(values),
                max=max(values),
                bucket_counts=tuple(counts),
                boundaries=tuple(float(b) for b in bounds),
            )
        )

    def step(self, c: Conditions) -> MetricsSnapshot:
        """Let one interval pass under ``c`` and return the snapshot at its end."""
        self.now_ns += self.interval_ns
        self._step += 1
        # floor: a step never fails a larger share of its requests than the fraction says
        errors = math.floor(c.api_requests * c.api_error_fraction)
        timeouts = math.floor(c.api_requests * c.api_timeout_fraction)
        api = "api_request_latency_ms"
        common = {"endpoint": "/api/v3/order", "method": "POST"}
        self._observe(
            api,
            c.api_latency_ms,
            c.api_requests - errors - timeouts,
            outcome="success",
            status_code=200,
            **common,
        )
        self._observe(
            api, c.api_latency_ms, errors, outcome="server_error", status_code=503, **common
        )
        self._observe(api, 10_000.0, timeouts, outcome="timeout", status_code=0, **common)
        self._count("api_errors_total", errors, endpoint="order.place", error_type="server_error")
        self._count("api_errors_total", timeouts, endpoint="order.place", error_type="timeout")
        self._observe(
            api, 5.0, c.api_rate_limited, outcome="rate_limited", status_code=429, **common
        )
        self._observe(
            "execution_latency_ms",
            c.execution_latency_ms,
            c.executions,
            symbol="NEWUSDT",
            execution_result="filled",
        )
        failed = math.floor(c.cache_lookups * c.cache_error_fraction)
        served = c.cache_lookups - failed
        hits = round(served * c.cache_hit_fraction)
        self._count("cache_hits_total", hits, key_pattern="pattern:*")
        self._count("cache_misses_total", served - hits, key_pattern="pattern:*")
        cache = "cache_operation_latency_ms"
        self._observe(cache, 2.0, served, operation="get", result="success")
        self._observe(cache, 50.0, failed, operation="get", result="error")
        self._gauge("cache_hit_rate", 100.0 * hits / served if served else 0.0)
        for i, health in enumerate(c.agent_health):
            self._gauge("agent_health_score", health, agent_id=f"agent-{i}", agent_type="pattern")
        self._observe(
            "model_confidence_distribution",
            c.model_confidence,
            c.inferences,
            pattern_type="ready_state",
            risk_level="medium",
        )
        self._count(
            "pattern_detections_total",
            c.high_confidence_detections,
            symbol="NEWUSDT",
            pattern_type="ready_state",
            confidence_tier="high",
        )
        self._judged_carry += c.positive_calls_judged
        judged = math.floor(self._judged_carry + 1e-9)
        self._judged_carry -= judged
        self._false_carry += judged * c.false_positive_rate
        false = math.floor(self._false_carry + 1e-9)
        self._false_carry -= false
        self._judged += judged
        self._false += false
        model = {"model_name": "pattern_discovery_v2"}
        self._count("pattern_positive_calls_judged_total", judged, **model)
        self._count("pattern_false_positives_total", false, **model)
        self._gauge(
            "pattern_false_positive_rate",
            self._false / self._judged if self._judged else 0.0,
            **model,
            threshold="0.7",
        )
        self._gauge("websocket_connections_active", c.websocket_connections, feed="market")
        self._gauge("portfolio_drawdown_ratio", c.drawdown)
        self._gauge("circuit_breaker_open", 1.0 if c.breaker_open else 0.0)
        self._count(
            "telemetry_dropped_total", c.dropped_per_step, signal="spans", reason="export_failed"
        )
        return self._acc.snapshot(self.now_ns)


@dataclass(frozen=True)
class Drill:
    """Healthy for ``warmup``, ``fault`` for ``duration``, then healthy again for ``cooldown``."""

    name: str
    fault: Mapping[str, Any]
    expected: tuple[str, ...]
    duration: float = 900.0
    warmup: float = 1200.0
    cooldown: float = 1200.0
    fire_within: float = 600.0
    resolve_within: float = 900.0


@dataclass
class DrillResult:
    drill: Drill
    evaluator: AlertEvaluator
    fault_start: float
    rollback: float
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    delays: dict[str, float | None] = field(default_factory=dict)
    resolve_delays: dict[str, float | None] = field(default_factory=dict)

    @property
    def unexpected(self) -> list[str]:
        return [n for n in self.fired if n not in self.drill.expected]

    @property
    def ok(self) -> bool:
        return not self.unexpected and all(
            self.delays.get(n) is not None
            and (self.delays[n] or 0) <= self.drill.fire_within
            and self.resolve_delays.get(n) is not None
            and (self.resolve_delays[n] or 0) <= self.drill.resolve_within
            for n in self.drill.expected
        )


DRILLS: tuple[Drill, ...] = (
    Drill(
        "execution latency spike", {"execution_latency_ms": 3000.0}, ("ExecutionLatencyP99High",)
    ),
    Drill("exchange API errors", {"api_error_fraction": 0.3}, ("ExchangeApiErrorRatioHigh",)),
    Drill("exchange API timeouts", {"api_timeout_fraction": 0.2}, ("ExchangeApiErrorRatioHigh",)),
    Drill("exchange rate limiting", {"api_rate_limited": 5}, ("ExchangeRateLimited",)),
    Drill("cache hit rate drop", {"cache_hit_fraction": 0.3}, ("CacheHitRateLow",)),
    Drill("redis outage", {"cache_error_fraction": 1.0}, ("RedisUnavailable",)),
    Drill("agent degraded", {"agent_health": (0.95, 0.3, 0.92)}, ("AgentHealthLow",)),
    Drill(
        "model confidence drift",
        {"model_confidence": 0.5},
        ("ModelConfidenceDrift",),
        duration=1800.0,
        fire_within=1500.0,
    ),
    Drill(
        "false positives",
        {"false_positive_rate": 0.9},
        ("PatternFalsePositiveRateHigh",),
        duration=1800.0,
        fire_within=1500.0,
    ),
    Drill("websocket down", {"websocket_connections": 0}, ("WebsocketConnectionsDown",)),
    Drill("drawdown", {"drawdown": 0.18}, ("PortfolioDrawdownHigh",)),
    Drill("circuit breaker", {"breaker_open": True}, ("CircuitBreakerOpen",)),
    Drill("telemetry dropped", {"dropped_per_step": 7}, ("TelemetryDropped",)),
)


def run_timeline(
    phases: Sequence[tuple[Conditions, float]],
    rules: RuleSet | None = None,
    *,
    interval: float = 15.0,
) -> AlertEvaluator:
    """Run the synthetic bot through ``(conditions, seconds)`` phases under an evaluator."""
    evaluator = AlertEvaluator(rules, interval=interval)
    bot = SyntheticBot(interval=interval)
    evaluator.observe(bot.step(phases[0][0]))
    for conditions, seconds in phases:
        for _ in range(round(seconds / interval)):
            evaluator.observe(bot.step(conditions))
    return evaluator


def run_drill(
    drill: Drill,
    rules: RuleSet | None = None,
    *,
    interval: float = 15.0,
    healthy: Conditions = HEALTHY,
) -> DrillResult:
    faulty = replace(healthy, **dict(drill.fault))
    evaluator = run_timeline(
        [(healthy, drill.warmup), (faulty, drill.duration), (healthy, drill.cooldown)],
        rules,
        interval=interval,
    )
    # faulty behaviour starts right after the last warm-up snapshot
    fault_start = evaluator.start + drill.warmup
    rollback = fault_start + drill.duration
    result = DrillResult(drill, evaluator, fault_start, rollback, fired=evaluator.fired())
    for name in drill.expected:
        result.delays[name] = evaluator.detection_delay(name, fault_start)
        resolved = [
            e.resolved_at
            for e in evaluator.episodes
            if e.rule == name and e.resolved_at is not None and e.resolved_at >= rollback
        ]
        result.resolve_delays[name] = min(resolved) - rollback if resolved else None
        if resolved:
            result.resolved.append(name)
    return result


def format_results(results: Sequence[DrillResult]) -> str:
    """A table: drill, alerts expected, fired, resolved, detection and resolution delays."""
    rows = [("drill", "expected", "fired", "resolved", "detect", "resolve", "ok")]
    for r in results:

        def delays(d: Mapping[str, float | None]) -> str:
            return ",".join("-" if v is None else f"{v:g}s" for v in d.values())

        rows.append(
            (
                r.drill.name,
                ",".join(r.drill.expected),
                ",".join(r.fired) or "-",
                ",".join(r.resolved) or "-",
                delays(r.delays),
                delays(r.resolve_delays),
                "yes" if r.ok else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
