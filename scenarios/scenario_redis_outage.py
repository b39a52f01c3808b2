"""Redis outage: every connection is refused for four minutes.

The outage is injected at the redis-py connection pool (fakeredis's sync client ignores
``connected=False``), so each failed command's instrumented span carries the
``ConnectionError``. The cache swallows the errors and the bot falls through to the
exchange: trading continues at full cadence. ``RedisUnavailable`` must fire within three
minutes and resolve within three minutes of the rollback.

With ``sniper-otel chaos --redis-url redis://...`` the same scenario runs against a real
server; see ``scenario_redis_pause`` for what a server-side outage looks like there.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _cache_errors_counted(run):
    errors = run.summary["cache"]["errors"]
    assert errors > 0, "no cache error was counted during the outage"
    refused = [s for s in run.spans if s.name in ("GET", "SET")
               and any(e.name == "exception" for e in s.events)]
    assert refused, "no Redis command span carries the ConnectionError"


SCENARIO = Scenario(
    name="redis_outage",
    title="Redis refuses every connection for four minutes",
    faults=[fault("redis.outage", start="1m", duration="4m")],
    alerts=[expect_alert("RedisUnavailable", within="3m", resolves_within="3m")],
    verify=_cache_errors_counted,
)


def test_redis_outage(chaos):
    chaos.run(SCENARIO)
