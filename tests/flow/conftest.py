"""Fixtures for the reference bot's tests: a Redis client per leg (fakeredis, real)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import fakeredis
import pytest
import redis

REDIS_URL_ENV = "SNIPER_OTEL_REDIS_URL"


@pytest.fixture(
    params=["fakeredis", pytest.param("real", marks=pytest.mark.sniper_otel_real_redis)]
)
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
