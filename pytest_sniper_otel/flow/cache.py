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

A hung server (SIGSTOP, a dead peer) costs the client's ``socket_timeout`` of *real* time
per command; :class:`CacheBreaker` opens once Redis has timed out on consecutive commands
for a second of real time, and the cache layer then degrades to the exchange without
asking Redis: each skipped operation is an ERROR ``redis.<operation>`` span and counts in
``cache_errors_total`` with ``error_type="CacheBypassed"`` (and as ``result="error"``, so
``RedisUnavailable`` keeps firing). One trial goes through per cool-down of the bot's
clock; the first that answers closes the breaker. Refused connections fail at once and
never open it.
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation

from ..clock import Clock, monotonic, real_monotonic
from .telemetry import (
    INSTRUMENTATION_VERSION,
    STATUS_OK,
    TRACER_REDIS,
    AttrValue,
    LogContext,
    RedisCacheObservability,
    StructuredLogger,
    mark_error,
)

CACHE_ERRORS = (redis.RedisError, OSError)
# what a hung server raises: redis-py's own, and the socket's (TimeoutError in Python 3.10+)
CACHE_TIMEOUTS = (redis.TimeoutError, TimeoutError)
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


class CacheBypassed(redis.RedisError):
    """The cache breaker is open: the operation skipped Redis."""


@dataclass
class CacheBreaker:
    """Skips a hung Redis. Opens when ``threshold`` consecutive operations timed out and
    Redis has answered nothing for ``silence`` *real* seconds since the first of them.
    While open, operations skip Redis until a cool-down of the bot's clock has passed;
    then one operation is the trial: an answer closes the breaker, a timeout re-opens it
    for twice the cool-down (``cooldown`` first, at most ``max_cooldown``).

    Silence is measured in real time because hanging is a real-time thing: a loaded
    machine on which a few commands miss a 0.1 s timeout, or a server that still answers
    reads while its writes block (``CLIENT PAUSE WRITE``), is not hung. Once open, the
    bot's clock runs on at near its normal speed, so a real second of silence becomes
    many simulated seconds of skipped operations; opening on a short stall would turn it
    into minutes of simulated outage. The cool-down is on the bot's clock: the cache uses
    Redis again within ``max_cooldown`` of the bot's time after it answers, whatever the
    machine's speed, and a server that stays hung costs one ``socket_timeout`` per
    cool-down instead of one per operation."""

    threshold: int = 3
    silence: float = 1.0
    cooldown: float = 15.0
    max_cooldown: float = 60.0
    real_time: Callable[[], float] = real_monotonic
    timeouts: int = 0
    silent_since: float | None = None  # real time the first of the current timeouts began
    opened_at: float | None = None  # the bot's clock when it (re)opened
    wait: float = 0.0  # the current cool-down
    opens: int = 0
    bypassed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int) \
                or self.threshold < 1:
            raise ValueError(f"CacheBreaker threshold must be an int >= 1, got {self.threshold!r}")
        for name in ("silence", "cooldown", "max_cooldown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise ValueError(f"CacheBreaker {name} must be a finite number of seconds >= 0, "
                                 f"got {value!r}")
        if self.max_cooldown < self.cooldown:
            raise ValueError(f"CacheBreaker max_cooldown ({self.max_cooldown:g}) is shorter than "
                             f"cooldown ({self.cooldown:g})")

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    def allows(self, now: float) -> bool:
        """False: skip Redis. True while open: this operation is the trial."""
        if self.opened_at is None:
            return True
        return now - self.opened_at >= self.wait

    def record(self, now: float, *, timed_out: bool, began: float) -> str | None:
        """The outcome of an operation that reached Redis (``began``: real time it was
        sent); returns "opened"/"closed" on a change of state."""
        if not timed_out:
            self.timeouts = 0
            self.silent_since = None
            if self.opened_at is not None:
                self.wait = 0.0
                self.opened_at = None
                return "closed"
            return None
        self.timeouts += 1
        if self.silent_since is None:
            self.silent_since = began
        if self.opened_at is not None:  # a failed trial
            self.opened_at = now
            self.wait = min(self.wait * 2, self.max_cooldown)
            return None
        if (self.timeouts >= self.threshold
                and self.real_time() - self.silent_since >= self.silence):
            self.opened_at = now
            self.wait = self.cooldown
            self.opens += 1
            return "opened"
        return None


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
        breaker: CacheBreaker | None = None,
    ) -> None:
        self.client = client
        self.breaker = breaker or CacheBreaker()
        self._bypassing = False
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
        # every key a write was sent for, answered or not: a server can apply a write whose
        # answer the client gave up on (a socket timeout on a loaded machine)
        self._sent: set[str] = set()
        if instrument_commands and not getattr(client, "_is_instrumented_by_opentelemetry", False):
            RedisInstrumentor.instrument_client(client)

    # -- public operations -----------------------------------------------------------------
    def get(self, key: str) -> CacheLookup:
        with self._operation("get", key) as (outcome, result):
            raw = self._redis().get(self._key(key))
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
            outcome["redis.hit"] = "true" if lookup.hit else "false"
            result.append(lookup)
        return result[0] if result else MISS

    def set(self, key: str, value: Any, ttl: float | None = None) -> bool:
        with self._operation("set", key) as (_, result):
            payload = self._envelope(value, ttl)
            self._sent.add(key)
            self._redis().set(self._key(key), payload, ex=SERVER_TTL_CAP)
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
        started = monotonic()
        warmed = 0
        with self._operation("warmup_strategy", strategy.pattern) as (outcome, result):
            entries = strategy.load()
            if entries:
                pipe = self._redis().pipeline(transaction=False)
                for key, value in entries.items():
                    payload = self._envelope(value, strategy.ttl)
                    self._sent.add(key)
                    pipe.set(self._key(key), payload, ex=SERVER_TTL_CAP)
                    self._sizes[key] = len(payload)
                    self._expiry[key] = self._expires(strategy.ttl)
                pipe.execute()
            warmed = len(entries)
            outcome["cache.warmup.keys_warmed"] = warmed
            result.append(True)
        return WarmupMetrics(warmed, (monotonic() - started) * 1000.0, bool(result))

    def close(self) -> None:
        """Delete this cache's keys (a real server outlives the bot), those of writes never
        answered too. Housekeeping, not trading: no span, no metric."""
        keys = [self._key(k) for k in sorted(self._sent | self._sizes.keys())]
        self._sizes.clear()
        self._expiry.clear()
        self._sent.clear()
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
    def _redis(self) -> redis.Redis:
        """The client, unless the breaker skips Redis for the current operation."""
        if self._bypassing:
            raise CacheBypassed("cache breaker open: Redis timed out, skipped")
        return self.client

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def _expires(self, ttl: float | None) -> float:
        return math.inf if ttl is None else self.clock.time() + ttl

    def _envelope(self, value: Any, ttl: float | None) -> str:
        expires = None if ttl is None else self.clock.time() + ttl
        return json.dumps({"v": value, "exp": expires}, separators=(",", ":"))

    def _forget(self, key: str, reason: str) -> None:
        self._redis().delete(self._key(key))
        self._sizes.pop(key, None)
        self._expiry.pop(key, None)
        self.observability.record_invalidation(key, reason)

    @contextmanager
    def _operation(
        self, operation: str, key: str
    ) -> Iterator[tuple[dict[str, AttrValue], list[Any]]]:
        """A ``redis.<operation>`` span with latency and error accounting. The body appends
        its result to the list (on a Redis error it stays empty and nothing raises) and puts
        the span attributes it learns in the dict: they are set with the latency in one
        call, as each call on a live span takes its lock."""
        attrs = {"redis.operation": operation, "redis.key": key, "cache.type": "redis",
                 "cache.key_pattern": self.observability.key_pattern(key)}
        with self.tracer.start_as_current_span(f"redis.{operation}", attributes=attrs) as span:
            started = monotonic()
            result: list[Any] = []
            outcome: dict[str, AttrValue] = {}
            # the round trip to Redis, on the simulated clock
            self.clock.tick(self._rng.uniform(*self.latency))
            breaker = self.breaker
            now = self.clock.time()
            self._bypassing = not breaker.allows(now)
            began = breaker.real_time()
            try:
                timed_out = False
                try:
                    yield outcome, result
                except CACHE_TIMEOUTS:
                    timed_out = True
                    raise
                finally:
                    if self._bypassing:
                        breaker.bypassed += 1
                        self._bypassing = False
                    else:
                        self._breaker_moved(
                            breaker.record(now, timed_out=timed_out, began=began), operation)
            except CACHE_ERRORS as exc:
                self.errors += 1
                mark_error(span, exc)
                self.observability.record_error(operation, exc)
                if not isinstance(exc, CacheBypassed):  # one log when it opens, not per call
                    self.logger.warning(
                        "cache unavailable, falling through", LogContext("RedisCache", operation),
                        key_pattern=self.observability.key_pattern(key),
                        error_type=type(exc).__name__,
                    )
            latency_ms = (monotonic() - started) * 1000.0
            outcome["redis.latency_ms"] = latency_ms
            span.set_attributes(outcome)
            self.observability.record_latency(operation, latency_ms,
                                              "success" if result else "error")
            if result:
                span.set_status(STATUS_OK)

    def _breaker_moved(self, change: str | None, operation: str) -> None:
        if change == "opened":
            self.logger.error("cache breaker opened: Redis times out, using the exchange",
                              None, LogContext("RedisCache", operation),
                              timeouts=self.breaker.timeouts)
        elif change == "closed":
            self.logger.info("cache breaker closed: Redis answers again",
                             LogContext("RedisCache", operation),
                             bypassed=self.breaker.bypassed)


def _parse_envelope(raw: Any) -> dict[str, Any] | None:
    """The stored envelope, or None when the value is not one of ours."""
    try:
        envelope = json.loads(raw)
    except (ValueError, TypeError):
        return None
    if not isinstance(envelope, dict) or "v" not in envelope or "exp" not in envelope:
        return None
    return envelope
