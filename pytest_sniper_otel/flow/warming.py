"""Cache warming driven by the cache's own hit/miss metrics.

The warmer sees every ``cache_hits_total`` / ``cache_misses_total`` increment the cache
records (metric name and ``key_pattern``, the same data points the monitoring gets; no raw
key), and keeps a sliding window of them. On each run (a ``cache-warming`` workflow every
``interval`` simulated seconds) it decides per key pattern:

* a pattern turns **warm** when, over the window, at least ``min_lookups`` lookups were
  seen, their miss ratio is at least ``min_miss_ratio``, and each of its keys is read at
  least once per TTL on average (a refresh nobody reads before the next one is a wasted
  call);
* it stays warm while that read rate holds, even as warming drives its misses down (else
  it would flap between warm and cold), and turns cold when the reads stop.

For a warm pattern, each key whose value expires before the next run (or that the cache no
longer holds) is reloaded ahead of expiry in one ``redis.warmup_strategy`` span, as long as
the window's budget of extra exchange calls allows it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from .cache import RedisCache, WarmupStrategy
from .telemetry import Attrs, LogContext, StructuredLogger


@dataclass(frozen=True)
class CacheWarming:
    """Settings of :class:`CacheWarmer` (``BotConfig(cache_warming=CacheWarming())``)."""

    interval: float = 5.0  # simulated seconds between warming runs; also the look-ahead
    window: float = 300.0  # simulated seconds of hit/miss history each decision reads
    min_lookups: int = 4
    min_miss_ratio: float = 0.05
    budget: int = 30  # extra exchange calls allowed per window

    def __post_init__(self) -> None:
        problems = []
        if not (math.isfinite(self.interval) and self.interval > 0):
            problems.append(f"interval must be a positive number of seconds, got {self.interval!r}")
        if not (math.isfinite(self.window) and self.window >= self.interval):
            problems.append(f"window must be at least interval ({self.interval!r} s), "
                            f"got {self.window!r}")
        if self.min_lookups < 1:
            problems.append(f"min_lookups must be >= 1, got {self.min_lookups!r}")
        if not 0.0 <= self.min_miss_ratio <= 1.0:
            problems.append(f"min_miss_ratio must be within 0..1, got {self.min_miss_ratio!r}")
        if self.budget < 0:
            problems.append(f"budget must be >= 0 exchange calls, got {self.budget!r}")
        if problems:
            raise ValueError("CacheWarming: " + "; ".join(problems))


@dataclass(frozen=True)
class WarmTarget:
    """A key pattern the warmer may refresh: its keys, how to load fresh values for some
    of them, their TTL, and what one load costs in exchange calls."""

    pattern: str
    ttl: float
    current_keys: Callable[[], Sequence[str]]
    load: Callable[[Sequence[str]], Mapping[str, Any]]
    exchange_calls: int
    errors: tuple[type[BaseException], ...] = ()  # a failed load is logged, not raised


@dataclass(frozen=True)
class PatternDemand:
    lookups: int
    misses: int
    reads_per_key_per_ttl: float

    @property
    def miss_ratio(self) -> float:
        return self.misses / self.lookups if self.lookups else 0.0


class CacheWarmer:
    def __init__(self, cache: RedisCache, clock: Clock, settings: CacheWarming,
                 targets: Iterable[WarmTarget], logger: StructuredLogger | None = None) -> None:
        self.cache = cache
        self.clock = clock
        self.settings = settings
        self.targets = tuple(targets)
        self.logger = logger or StructuredLogger("cache")
        self.started = clock.time()
        self.warm: set[str] = set()  # patterns being warmed
        self.refreshes = 0
        self.keys_refreshed = 0
        self.exchange_calls = 0
        self.over_budget = 0  # refreshes skipped because the budget was spent
        self.failures = 0
        self._lookups: deque[tuple[float, str, bool]] = deque()
        self._spent: deque[tuple[float, int]] = deque()
        cache.observability.subscribe(self._observe)

    def _observe(self, metric: str, attrs: Attrs) -> None:
        self._lookups.append((self.clock.time(), str(attrs["key_pattern"]),
                              metric == "cache_hits_total"))

    # -- decisions -------------------------------------------------------------------------
    def demand(self, target: WarmTarget) -> PatternDemand:
        """The pattern's lookups and misses over the window, and how often each of its
        keys is read per TTL."""
        now = self.clock.time()
        self._trim(now)
        lookups = misses = 0
        for _, pattern, hit in self._lookups:
            if pattern == target.pattern:
                lookups += 1
                misses += not hit
        span = min(self.settings.window, now - self.started)
        keys = max(1, len(target.current_keys()))
        rate = lookups / span * target.ttl / keys if span > 0 else 0.0
        return PatternDemand(lookups, misses, rate)

    def _decide(self, target: WarmTarget, demand: PatternDemand) -> bool:
        read_enough = demand.reads_per_key_per_ttl >= 1.0
        if target.pattern in self.warm:
            if not read_enough:
                self.warm.discard(target.pattern)
        elif (read_enough and demand.lookups >= self.settings.min_lookups
              and demand.miss_ratio >= self.settings.min_miss_ratio):
            self.warm.add(target.pattern)
        return target.pattern in self.warm

    def _trim(self, now: float) -> None:
        since = now - self.settings.window
        while self._lookups and self._lookups[0][0] < since:
            self._lookups.popleft()
        while self._spent and self._spent[0][0] < since:
            self._spent.popleft()

    # -- the workflow ------------------------------------------------------------------------
    def run(self) -> None:
        """One warming pass (the ``cache-warming`` workflow)."""
        for target in self.targets:
            demand = self.demand(target)
            if not self._decide(target, demand):
                continue
            horizon = self.clock.time() + self.settings.interval
            due = [k for k in target.current_keys()
                   if (expires := self.cache.expires_at(k)) is None or expires <= horizon]
            if not due:
                continue
            spent = sum(calls for _, calls in self._spent)
            if spent + target.exchange_calls > self.settings.budget:
                self.over_budget += 1
                continue
            self._refresh(target, due, demand)

    def _refresh(self, target: WarmTarget, keys: Sequence[str], demand: PatternDemand) -> None:
        self._spent.append((self.clock.time(), target.exchange_calls))
        self.exchange_calls += target.exchange_calls
        self.refreshes += 1
        context = LogContext("CacheWarmer", "warm")
        try:
            result = self.cache.execute_warmup_strategy(
                WarmupStrategy(target.pattern, lambda: target.load(keys), target.ttl))
        except target.errors as exc:
            # the warmup span carries the error; the bot reads through on its next miss
            self.failures += 1
            self.logger.warning("cache warming failed", context, key_pattern=target.pattern,
                                error_type=type(exc).__name__)
            return
        if not result.ok:  # Redis failed: the cache logged and counted it already
            self.failures += 1
            return
        self.keys_refreshed += result.keys_warmed
        self.logger.info("cache warmed ahead of expiry", context, key_pattern=target.pattern,
                         keys=result.keys_warmed, miss_ratio=round(demand.miss_ratio, 3),
                         lookups=demand.lookups)
