"""Fixtures for the reference bot's tests: hand-made calendars and a Redis client per leg."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from pytest_sniper_otel.flow import BotConfig, ListingSpec, MarketConditions

REDIS_URL_ENV = "SNIPER_OTEL_REDIS_URL"


def one_listing(**overrides: Any) -> BotConfig:
    """A bot config with a single genuine, hyped listing launching 100 s after start, a
    calm market (no partial fills, no random rejects) and everything else default."""
    spec = ListingSpec(symbol="SNIPEUSDT", vcoin_id="v-snipe", launch_offset=100.0,
                       genuine=True, hype=0.8, ready_lead=90.0, initial_price=0.25,
                       volatility=0.0)
    conditions = MarketConditions(partial_fill_rate=0.0, reject_rate=0.0)
    return BotConfig(**{"listings": [spec], "conditions": conditions, **overrides})


@pytest.fixture(params=["fakeredis", "real"])
def redis_client(request: pytest.FixtureRequest) -> Iterator[redis.Redis]:
    """A fakeredis client, then a real server's (``SNIPER_OTEL_REDIS_URL``).

    The real leg skips when the variable is unset outside CI; in CI (``CI`` set) a missing
    or unreachable server is a failure, not a skip.
    """
    if request.param == "fakeredis":
        yield fakeredis.FakeRedis()
        return
    url = os.environ.get(REDIS_URL_ENV)
    in_ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    if not url:
        if in_ci:
            pytest.fail(f"CI is set but {REDIS_URL_ENV} is not: the real-Redis leg must run in CI")
        pytest.skip(f"set {REDIS_URL_ENV}=redis://host:port/db to run against a real Redis")
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(f"{REDIS_URL_ENV}={url} is not reachable: {exc}")
    try:
        yield client
    finally:
        client.close()
