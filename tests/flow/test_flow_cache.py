"""The Redis cache against fakeredis and a real server (``SNIPER_OTEL_REDIS_URL``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

from pytest_sniper_otel import Telemetry, span
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import Outcome, RedisCache, SniperBot, WarmupStrategy

from .flowkit import one_listing


@pytest.fixture
def cache(redis_client: redis.Redis, clock: SimClock, telemetry: Telemetry) -> Iterator[RedisCache]:
    cache = RedisCache(redis_client, clock=clock, seed=0)
    yield cache
    cache.close()


def test_a_cached_falsy_value_is_a_hit(cache: RedisCache, telemetry: Telemetry) -> None:
    cache.set("position:ZERO", 0)
    cache.set("note:EMPTY", "")
    assert cache.get("position:ZERO").hit and cache.get("position:ZERO").value == 0
    assert cache.get("note:EMPTY").hit and cache.get("note:EMPTY").value == ""
    assert not cache.get("position:ABSENT").hit
    assert telemetry.metric("cache_hits_total", {"key_pattern": "position:*"}).value == 2
    assert telemetry.metric("cache_hits_total", {"key_pattern": "note:*"}).value == 2
    assert telemetry.metric("cache_misses_total", {"key_pattern": "position:*"}).value == 1
    telemetry.assert_span_tree(span("redis.get", attributes={
        "redis.key": "position:ZERO", "redis.hit": "true", "cache.key_pattern": "position:*",
        "cache.type": "redis"}, children=[span("GET", kind="CLIENT")]))


def test_expiry_follows_the_simulated_clock(cache: RedisCache, clock: SimClock,
                                            telemetry: Telemetry) -> None:
    cache.set("ticker:ABCUSDT", 1.25, ttl=5)
    clock.tick(4)
    assert cache.get("ticker:ABCUSDT").value == 1.25
    clock.tick(2)
    assert not cache.get("ticker:ABCUSDT").hit
    assert telemetry.metric("cache_invalidations_total",
                            {"reason": "expired", "key_pattern": "ticker:*"}).value == 1
    latency = telemetry.metric("cache_operation_latency_ms", {"operation": "get"})
    assert latency.boundaries == (1, 5, 10, 25, 50, 100, 200)
    assert latency.count == 2 and 0 < latency.max < 5  # simulated round trips


def test_warmup_strategy_preloads_in_one_pipeline(cache: RedisCache, telemetry: Telemetry) -> None:
    entries = {f"listing:S{i}USDT": {"launch": i} for i in range(3)}
    result = cache.execute_warmup_strategy(WarmupStrategy("listing:*", lambda: entries, 60.0))
    assert result.keys_warmed == 3 and result.ok
    assert cache.get("listing:S2USDT").value == {"launch": 2}
    telemetry.assert_span_tree(span("redis.warmup_strategy", attributes={
        "redis.operation": "warmup_strategy", "redis.key": "listing:*",
        "cache.warmup.keys_warmed": 3}, exact=True, children=[span(lambda n: "SET" in n)]))


def test_two_caches_on_one_server_do_not_see_each_other(
    redis_client: redis.Redis, clock: SimClock
) -> None:
    a = RedisCache(redis_client, clock=clock, seed=1)
    b = RedisCache(redis_client, clock=clock, seed=1)
    try:
        a.set("calendar:latest", [1])
        assert not b.get("calendar:latest").hit
    finally:
        a.close()
        b.close()
    assert not redis_client.keys(f"{a.namespace}:*")


def test_a_foreign_value_under_our_key_is_a_miss_not_a_crash(
    cache: RedisCache, redis_client: redis.Redis, telemetry: Telemetry
) -> None:
    redis_client.set(f"{cache.namespace}:listing:X", b"\xff not json")
    assert not cache.get("listing:X").hit
    assert telemetry.metric("cache_invalidations_total", {"reason": "corrupt"}).value == 1


def test_the_bot_trades_on_this_redis(redis_client: redis.Redis, clock: SimClock,
                                      telemetry: Telemetry) -> None:
    bot = SniperBot.create(seed=1, clock=clock, redis=redis_client, config=one_listing())
    try:
        bot.run_for(300)
        assert [i.outcome for i in bot.ledger] == [Outcome.FILLED, Outcome.FILLED]
        assert bot.cache.errors == 0 and bot.cache.hits > 0
        assert bot.reconcile() == []
    finally:
        bot.close()



def test_close_removes_a_write_the_server_applied_but_never_answered(
    clock: SimClock, telemetry: Telemetry
) -> None:
    """A SET whose answer came too late (a loaded machine, a socket timeout): the server
    has the key, the cache counted an error and does not know it. close() removes it."""
    client = fakeredis.FakeRedis()
    execute: Callable[..., Any] = client.execute_command

    def applied_then_lost(*args: Any, **options: Any) -> Any:
        answer = execute(*args, **options)
        if args[0] == "SET":
            raise redis.TimeoutError("Timeout reading from socket")
        return answer

    client.execute_command = applied_then_lost  # type: ignore[method-assign]
    cache = RedisCache(client, clock=clock, seed=0, instrument_commands=False)
    assert not cache.set("listing:LATE", {"symbol": "LATE"})  # an error, not raised
    assert client.keys(f"{cache.namespace}:*") == [f"{cache.namespace}:listing:LATE".encode()]
    cache.close()
    assert client.keys(f"{cache.namespace}:*") == []
