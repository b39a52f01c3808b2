"""Redis degraded: slow commands, then memory pressure evicting most keys, then a flush.

Commands take 40-70 ms for five minutes; meanwhile 60% of the bot's keys are evicted at
every step (as ``maxmemory`` with an LRU policy would), and finally the whole namespace is
flushed. Evicted keys are cache misses, never errors or stale data: the hit rate falls, the
bot fetches again from the exchange, and ``CacheHitRateLow`` must fire.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _latency_and_misses_observed(run):
    evicted = [f for f in run.faults if f.name == "redis.eviction"]
    assert sum(f.evicted for f in evicted) > 0, "nothing was evicted"
    assert run.summary["cache"]["errors"] == 0, "eviction must not surface as errors"


SCENARIO = Scenario(
    name="redis_degraded",
    title="slow Redis, LRU eviction of most keys, then a flush",
    faults=[
        fault("redis.latency", start="1m", duration="5m", latency=0.04, jitter=0.03),
        fault("redis.eviction", start="1m", duration="6m", probability=0.6,
              pattern="sniper:*"),
        fault("redis.eviction", start="7m", duration="1m", flush=True, pattern="sniper:*"),
    ],
    alerts=[expect_alert("CacheHitRateLow", within="8m", resolves_within="10m")],
    recovery=720.0,
    verify=_latency_and_misses_observed,
)


def test_redis_degraded(chaos):
    chaos.run(SCENARIO)
