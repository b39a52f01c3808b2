"""The bot's Redis cache with the seed's cache observability.

Command spans: we use opentelemetry-instrumentation-redis's
``RedisInstrumentor.instrument_client(client)`` (per client, not the global
``instrument()``, so we never patch a user's other clients). It wraps the client's
``execute_command``/``pipeline`` with CLIENT spans named after the command (``GET``,
``SET``...) whose ``db.statement`` is sanitized (``SET ? ?``). On top, every cache call is a
``redis.<operation>`` span as in the seed (``redis.operation``, ``redis.key``, ``cache.type``,
``redis.hit``, ``redis.latency_ms``; the raw key is fine on a span) and records the metrics
with a ``key_pattern`` attribute (``listing:*``), never the key.

Expiry follows the simulated clock: values are stored in an envelope with a simulated
expiry time, so fakeredis and a real server behave the same when ten simulated minutes
pass in two real seconds (the server-side TTL is only a clean-up bound). A cached falsy
value (``0``, ``""``) is a hit, not a miss as a truthiness test would count it: a miss is
the key's absence.

Every Redis error is counted (``cache_errors_total``, ``cache_operation_latency_ms`` with
``result="error"``), logged and swallowed: a get becomes a miss and the bot falls through
to the exchange. ``client`` is the fault seam: replace it, or its connection pool.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Span, Status, StatusCode

from ..clock import Clock
from .telemetry import (
    INSTRUMENTATION_VERSION,
    TRACER_REDIS,
    LogContext,
    RedisCacheObservability,
    StructuredLogger,
    mark_error,
)

CACHE_ERRORS = (redis.RedisError, OSError)
SERVER_TTL_CAP = 3600  # seconds; real-Redis hygiene only, expiry logic is simulated


@dataclass(frozen=True)
class CacheLookup:
    hit: bool
    value: Any = None


MISS = CacheLookup(False)


@dataclass(frozen=True)
class WarmupStrategy:
    """The seed's ``WarmupStrategy``: which keys (``pattern``) and how to load them."""

    pattern: str
    load: Callable[[], Mapping[str, Any]]
    ttl: float


@dataclass(frozen=True)
class WarmupMetrics:
    keys_warmed: int
    duration_ms: float
    ok: bool


class RedisCache:
    """A namespaced JSON cache over a redis-py client."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        clock: Clock,
        seed: int,
        latency: tuple[float, float] = (0.0002, 0.0015),
        namespace: str | None = None,
        instrument_commands: bool = True,
        logger: StructuredLogger | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.latency = latency
        # A fresh namespace per cache: runs sharing a real server never see each other.
        self.namespace = namespace or f"sniper:{uuid.uuid4().hex[:12]}"
        self.observability = RedisCacheObservability()
        self.tracer = trace.get_tracer(TRACER_REDIS, INSTRUMENTATION_VERSION)
        self.logger = logger or StructuredLogger("cache")
        self._rng = random.Random(f"{seed}:cache")
        self.hits = 0
        self.misses = 0
        self.errors = 0
        self._sizes: dict[str, int] = {}
        self._expiry: dict[str, float] = {}  # key -> simulated expiry of what we last wrote
        if instrument_commands and not getattr(client, "_is_instrumented_by_opentelemetry", False):
            RedisInstrumentor.instrument_client(client)

    # -- public operations -----------------------------------------------------------------
    def get(self, key: str) -> CacheLookup:
        with self._operation("get", key) as (span, result):
            raw = self.client.get(self._key(key))
            now = self.clock.time()
            lookup = MISS
            if raw is not None:
                envelope = _parse_envelope(raw)
                if envelope is None:
                    self._forget(key, "corrupt")
                elif envelope["exp"] is not None and envelope["exp"] <= now:
                    self._forget(key, "expired")
                else:
                    lookup = CacheLookup(True, envelope["v"])
            if lookup.hit:
                self.hits += 1
            else:
                self.misses += 1
            self.observability.record_lookup(key, lookup.hit)
            span.set_attribute("redis.hit", "true" if lookup.hit else "false")
            result.append(lookup)
        return result[0] if result else MISS

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        with self._operation("set", key) as (_, result):
            payload = self._envelope(value, ttl)
            self.client.set(self._key(key), payload, ex=SERVER_TTL_CAP)
            self._sizes[key] = len(payload)
            self._expiry[key] = self._expires(ttl)
            result.append(True)
        return bool(result)

    def delete(self, key: str, reason: str = "explicit") -> bool:
        with self._operation("del", key) as (_, result):
            self._forget(key, reason)
            result.append(True)
        return bool(result)

    def execute_warmup_strategy(self, strategy: WarmupStrategy) -> WarmupMetrics:
        """Preload ``strategy.load()`` in one pipeline, traced as ``redis.warmup_strategy``."""
        started = time.monotonic()
        warmed = 0
        with self._operation("warmup_strategy", strategy.pattern) as (span, result):
            entries = strategy.load()
            if entries:
                pipe = self.client.pipeline(transaction=False)
                for key, value in entries.items():
                    payload = self._envelope(value, strategy.ttl)
                    pipe.set(self._key(key), payload, ex=SERVER_TTL_CAP)
                    self._sizes[key] = len(payload)
                    self._expiry[key] = self._expires(strategy.ttl)
                pipe.execute()
            warmed = len(entries)
            span.set_attribute("cache.warmup.keys_warmed", warmed)
            result.append(True)
        return WarmupMetrics(warmed, (time.monotonic() - started) * 1000.0, bool(result))

    def close(self) -> None:
        """Delete this cache's keys (a real server outlives the bot). Housekeeping, not
        trading: no span, no metric."""
        keys = [self._key(k) for k in self._sizes]
        self._sizes.clear()
        self._expiry.clear()
        if not keys:
            return
        try:
            with suppress_instrumentation():
                self.client.delete(*keys)
        except CACHE_ERRORS:
            pass

    # -- state read by gauges ----------------------------------------------------------------
    @property
    def hit_rate_percent(self) -> float:
        lookups = self.hits + self.misses
        return 100.0 * self.hits / lookups if lookups else 0.0

    def expires_at(self, key: str) -> float | None:
        """When the value this cache last wrote under ``key`` expires (simulated time; inf
        without a TTL), or None when it holds none. Its own bookkeeping, like
        :attr:`memory_mb`: no Redis round trip and no lookup counted, so a warmer can look
        ahead without touching the hit/miss metrics."""
        return self._expiry.get(key)

    @property
    def memory_mb(self) -> float:
        """Bytes this cache holds (its own keys), in MiB; tracked, not asked of the server."""
        return sum(self._sizes.values()) / (1024 * 1024)

    # -- internals ------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _expires(self, ttl: float | None) -> float:
        return math.inf if ttl is None else self.clock.time() + ttl

    def _envelope(self, value: Any, ttl: float | None) -> str:
        expires = None if ttl is None else self.clock.time() + ttl
        return json.dumps({"v": value, "exp": expires}, separators=(",", ":"))

    def _forget(self, key: str, reason: str) -> None:
        self.client.delete(self._key(key))
        self._sizes.pop(key, None)
        self._expiry.pop(key, None)
        self.observability.record_invalidation(key, reason)

    @contextmanager
    def _operation(self, operation: str, key: str) -> Iterator[tuple[Span, list[Any]]]:
        """A ``redis.<operation>`` span with latency and error accounting. The body appends
        its result to the list; on a Redis error the list stays empty and nothing raises."""
        attrs = {"redis.operation": operation, "redis.key": key, "cache.type": "redis",
                 "cache.key_pattern": self.observability.key_pattern(key)}
        with self.tracer.start_as_current_span(f"redis.{operation}", attributes=attrs) as span:
            started = time.monotonic()
            result: list[Any] = []
            # the round trip to Redis, on the simulated clock
            self.clock.tick(self._rng.uniform(*self.latency))
            try:
                yield span, result
            except CACHE_ERRORS as exc:
                self.errors += 1
                mark_error(span, exc)
                self.observability.record_error(operation, exc)
                self.logger.warning(
                    "cache unavailable, falling through", LogContext("RedisCache", operation),
                    key_pattern=self.observability.key_pattern(key), error_type=type(exc).__name__,
                )
            latency_ms = (time.monotonic() - started) * 1000.0
            span.set_attribute("redis.latency_ms", latency_ms)
            self.observability.record_latency(operation, latency_ms,
                                              "success" if result else "error")
            if result:
                span.set_status(Status(StatusCode.OK))


def _parse_envelope(raw: Any) -> dict[str, Any] | None:
    """The stored envelope, or None when the value is not one of ours."""
    try:
        envelope = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(envelope, dict) or "v" not in envelope or "exp" not in envelope:
        return None
    return envelope
