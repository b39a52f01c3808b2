"""A real Redis server stops taking writes (``CLIENT PAUSE WRITE``), as during a failover.

Runs only against a real server: ``sniper-otel chaos --redis-url redis://...``, or pytest
with ``SNIPER_OTEL_REDIS_URL`` set. For four minutes the server answers reads but holds
every write until the bot's client times out. The cache must turn those timeouts into
counted errors on the failed commands' spans and fall through (``RedisUnavailable`` fires
and resolves), trading must not stall, and the ledger must reconcile.
"""

import os

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault

REDIS_URL_ENV = "SNIPER_OTEL_REDIS_URL"


def _writes_timed_out(run):
    assert run.summary["cache"]["errors"] > 0, "no cache error during the pause"
    timeouts = [s for s in run.spans if s.name == "SET" and any(
        e.name == "exception" and e.attributes.get("exception.type", "").endswith("TimeoutError")
        for e in s.events)]
    assert timeouts, "no SET span carries the TimeoutError"


SCENARIO = Scenario(
    name="redis_pause",
    title="a real Redis pauses writes for four minutes (failover)",
    faults=[fault("redis.client_pause", start="1m", duration="4m", mode="WRITE")],
    # only writes fail, so the error ratio crosses 50% later than in a full outage
    alerts=[expect_alert("RedisUnavailable", within="5m", resolves_within="3m")],
    verify=_writes_timed_out,
    tags={"requires": "real_redis"},
)


@pytest.mark.sniper_otel_real_redis
def test_redis_pause(chaos):
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {REDIS_URL_ENV} is not")
        pytest.skip(f"set {REDIS_URL_ENV}=redis://host:port/db to run against a real Redis")
    # short timeouts, no client-side retries: a paused write fails fast in real time
    client = redis.Redis.from_url(url, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
    try:
        chaos.run(SCENARIO, redis=client)
    finally:
        client.close()
