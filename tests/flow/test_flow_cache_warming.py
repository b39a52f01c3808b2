"""Cache warming: driven by the cache's hit/miss metrics, within a budget; off changes nothing."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NoReturn

import fakeredis
import pytest
import redis

from pytest_sniper_otel import Telemetry, span
from pytest_sniper_otel.catalog import METRICS, SPANS
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import (
    BotConfig,
    CacheWarmer,
    CacheWarming,
    ExchangeUnavailable,
    RedisCache,
    SniperBot,
)
from pytest_sniper_otel.flow.warming import WarmTarget


@pytest.fixture
def cache(clock: SimClock, telemetry: Telemetry) -> Iterator[RedisCache]:
    cache = RedisCache(fakeredis.FakeRedis(), clock=clock, seed=0)
    yield cache
    cache.close()


class Loader:
    """A target's load: records which keys it was asked for."""

    def __init__(self, value: Any = "fresh", error: Exception | None = None) -> None:
        self.value = value
        self.error = error
        self.calls: list[list[str]] = []

    def __call__(self, keys: Sequence[str]) -> Mapping[str, Any]:
        self.calls.append(list(keys))
        if self.error is not None:
            raise self.error
        return {key: self.value for key in keys}


def target(pattern: str, key: str, load: Loader, *, ttl: float = 20.0,
           exchange_calls: int = 1) -> WarmTarget:
    return WarmTarget(pattern, ttl, lambda: [key], load, exchange_calls,
                      errors=(ExchangeUnavailable,))


def test_a_pattern_that_misses_is_warmed_and_one_that_hits_is_not(
    cache: RedisCache, clock: SimClock, telemetry: Telemetry
) -> None:
    cold, hot = Loader(), Loader()
    warmer = CacheWarmer(cache, clock, CacheWarming(interval=5.0),
                         [target("cold:*", "cold:a", cold), target("hot:*", "hot:a", hot)])
    cache.set("hot:a", "cached", ttl=30.0)
    for _ in range(4):
        clock.tick(5.0)
        assert not cache.get("cold:a").hit
        assert cache.get("hot:a").hit
    # hot:a now expires within the look-ahead: only its hits keep it from being refreshed
    assert cache.expires_at("hot:a") == pytest.approx(clock.time() + 10.0, abs=0.1)
    clock.tick(6.0)
    warmer.run()

    # the decision read exactly what the monitoring got
    misses = telemetry.metric("cache_misses_total", {"key_pattern": "cold:*"}).value
    hits = telemetry.metric("cache_hits_total", {"key_pattern": "hot:*"}).value
    assert (misses, hits) == (4, 4)
    assert warmer.demand(warmer.targets[0]).misses == misses
    assert warmer.demand(warmer.targets[1]).lookups == hits
    assert warmer.warm == {"cold:*"}
    assert cold.calls == [["cold:a"]] and hot.calls == []
    assert cache.get("cold:a").value == "fresh"
    telemetry.assert_span_tree(span("redis.warmup_strategy", attributes={
        "redis.key": "cold:*", "cache.warmup.keys_warmed": 1}))
    telemetry.assert_no_span("redis.warmup_strategy", attributes={"redis.key": "hot:*"})

    # warm, it is refreshed ahead of expiry (not before) and keeps hitting
    clock.tick(10.0)
    warmer.run()
    assert len(cold.calls) == 1  # expires at +20 s, beyond the next run
    clock.tick(5.0)
    warmer.run()
    assert len(cold.calls) == 2
    clock.tick(5.0)
    assert cache.get("cold:a").hit


def test_a_rarely_read_pattern_is_not_warmed_even_when_every_read_misses(
    cache: RedisCache, clock: SimClock
) -> None:
    # four misses in five minutes, TTL 15 s: about one read per five TTLs, so keeping the
    # key fresh would cost twenty calls for four hits
    load = Loader()
    warmer = CacheWarmer(cache, clock, CacheWarming(),
                         [target("account:*", "account:balances", load, ttl=15.0)])
    for _ in range(4):
        clock.tick(75.0)
        assert not cache.get("account:balances").hit
        warmer.run()
    demand = warmer.demand(warmer.targets[0])
    assert demand.miss_ratio == 1.0 and demand.reads_per_key_per_ttl < 1.0
    assert warmer.warm == set() and load.calls == []


def test_a_pattern_turns_cold_when_its_reads_stop(cache: RedisCache, clock: SimClock) -> None:
    load = Loader()
    warmer = CacheWarmer(cache, clock, CacheWarming(interval=5.0, window=60.0),
                         [target("calendar:*", "calendar:latest", load, ttl=10.0)])
    for _ in range(6):
        clock.tick(5.0)
        cache.get("calendar:latest")
        warmer.run()
    assert warmer.warm == {"calendar:*"} and cache.get("calendar:latest").hit
    for _ in range(12):  # a minute nobody reads it: the reads leave the window
        clock.tick(5.0)
        warmer.run()
    assert warmer.warm == set() and warmer.demand(warmer.targets[0]).lookups == 0
    refreshed = len(load.calls)
    for _ in range(12):
        clock.tick(5.0)
        warmer.run()
    assert len(load.calls) == refreshed


class PipelineRefused(fakeredis.FakeRedis):
    def pipeline(self, transaction: bool = True, shard_hint: object = None) -> NoReturn:
        raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


def test_a_redis_failure_while_warming_counts_as_a_failed_refresh(
    cache: RedisCache, clock: SimClock, telemetry: Telemetry
) -> None:
    load = Loader()
    warmer = CacheWarmer(cache, clock, CacheWarming(),
                         [target("calendar:*", "calendar:latest", load)])
    for _ in range(4):
        clock.tick(5.0)
        cache.get("calendar:latest")
    cache.client = PipelineRefused()
    warmer.run()
    assert (warmer.refreshes, warmer.failures, warmer.keys_refreshed) == (1, 1, 0)
    assert telemetry.metric("cache_errors_total", {"operation": "warmup_strategy"}).value == 1


def test_extra_exchange_calls_stay_within_the_budget_per_window(
    cache: RedisCache, clock: SimClock
) -> None:
    load = Loader()
    warmer = CacheWarmer(cache, clock, CacheWarming(interval=5.0, window=60.0, budget=2),
                         [target("calendar:*", "calendar:latest", load, ttl=10.0)])
    for _ in range(4):
        clock.tick(2.0)
        cache.get("calendar:latest")
    for _ in range(6):  # every run finds the value due: it expires before the next run
        clock.tick(5.0)
        cache.get("calendar:latest")
        warmer.run()
    assert (len(load.calls), warmer.exchange_calls, warmer.over_budget) == (2, 2, 4)
    for _ in range(12):  # still read; the first two calls leave the window
        clock.tick(5.0)
        cache.get("calendar:latest")
    warmer.run()
    assert len(load.calls) == 3 and warmer.warm == {"calendar:*"}


def test_a_failed_load_is_an_error_span_and_a_warning_not_a_crash(
    cache: RedisCache, clock: SimClock, telemetry: Telemetry
) -> None:
    load = Loader(error=ExchangeUnavailable("calendar: 503 after 3 attempts"))
    warmer = CacheWarmer(cache, clock, CacheWarming(),
                         [target("calendar:*", "calendar:latest", load)])
    for _ in range(4):
        clock.tick(5.0)
        cache.get("calendar:latest")
    warmer.run()
    assert warmer.failures == 1 and cache.expires_at("calendar:latest") is None
    telemetry.assert_span_tree(span("redis.warmup_strategy", status="ERROR",
                                    attributes={"redis.key": "calendar:*"}))
    [record] = [r for r in telemetry.logs if r.body == "cache warming failed"]
    assert record.attributes["key_pattern"] == "calendar:*"
    assert record.attributes["error_type"] == "ExchangeUnavailable"


@pytest.mark.parametrize("settings, problem", [
    ({"interval": 0.0}, "interval must be a positive number of seconds, got 0.0"),
    ({"window": 1.0}, "window must be at least interval (5.0 s), got 1.0"),
    ({"min_miss_ratio": 1.5}, "min_miss_ratio must be within 0..1, got 1.5"),
    ({"budget": -1}, "budget must be >= 0 exchange calls, got -1"),
])
def test_bad_settings_are_refused_naming_the_problem(settings: dict[str, Any],
                                                     problem: str) -> None:
    with pytest.raises(ValueError) as info:
        CacheWarming(**settings)
    assert str(info.value).startswith("CacheWarming: ") and problem in str(info.value)


def run_bot(seed: int, warming: CacheWarming | None, seconds: float) -> dict[str, Any]:
    with SimClock() as clock:
        bot = SniperBot.create(seed=seed, clock=clock, config=BotConfig(cache_warming=warming))
        bot.run_for(seconds)
        summary = bot.summary()
        bot.close()
    return summary


def test_off_by_default_and_off_changes_nothing(telemetry: Telemetry) -> None:
    assert BotConfig().cache_warming is None
    summary = run_bot(3, None, 600)
    # this seed's figures from before cache warming existed: the off path is the same bot
    assert summary["cache"] == {"hits": 252, "misses": 46, "errors": 0}
    assert (summary["orders"], summary["workflows"], summary["pnl_usd"]) == (
        {"filled": 10}, 152, 920.38)
    assert "cache_warming" not in summary
    telemetry.assert_no_span("workflow-execution", attributes={"workflow.name": "cache-warming"})
    telemetry.assert_no_span("redis.warmup_strategy", attributes={"redis.key": "calendar:*"})


def test_the_bot_warms_its_calendar_and_analyses_from_its_metrics(
    telemetry: Telemetry
) -> None:
    on = run_bot(3, CacheWarming(), 900)
    warming = on["cache_warming"]
    # account:* misses on every read, but is read too rarely to pay for warming
    assert warming["warm_patterns"] == ["analysis:*", "calendar:*"]
    assert warming["over_budget"] == 0 and warming["failures"] == 0
    # once warm, every 30 s calendar poll is served from the cache
    polls = telemetry.find_spans("fetch-calendar-data")
    assert len(polls) == 31  # at 0, 30, ..., 900 s
    assert [p.attributes["calendar.cache_hit"] for p in polls[-20:]] == [True] * 20
    telemetry.assert_span_tree(span("workflow-execution", attributes={
        "workflow.name": "cache-warming"}, children=[span("redis.warmup_strategy", attributes={
            "redis.key": "calendar:*"}, children=[span("mexc-api-request")])]))

    # no name the catalogue does not have: spans, their attributes, metrics
    for node in (n for root in telemetry.roots for n in root.walk()):
        scope = node.span.instrumentation_scope
        if scope is not None and scope.name == "opentelemetry.instrumentation.redis":
            continue
        assert node.name in SPANS, node.name
        assert set(node.attributes) <= set(SPANS[node.name].attributes), node.name
    assert set(telemetry.metric_names()) <= set(METRICS)

    def hit_rate(summary: dict[str, Any]) -> float:
        cache = summary["cache"]
        return float(cache["hits"] / (cache["hits"] + cache["misses"]))

    off = run_bot(3, None, 900)
    assert hit_rate(on) > hit_rate(off) + 0.05
