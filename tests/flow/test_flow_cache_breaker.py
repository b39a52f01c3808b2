"""The cache breaker: a Redis that times out is skipped, and used again once it answers.

The logic runs on fakeredis with a connection pool that times out (as a hung server's
would); the real leg hangs a loopback ``redis-server`` with SIGSTOP.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pytest_sniper_otel import Telemetry, span
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import CacheBreaker, RedisCache


class _Hang:
    """Replaces a pool's ``get_connection``: while ``hung``, every command times out."""

    def __init__(self, client: Any, error: type[Exception] = redis.TimeoutError) -> None:
        self.pool = client.connection_pool
        self.original = self.pool.get_connection
        self.error = error
        self.hung = True
        self.calls = 0
        self.pool.get_connection = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.hung:
            raise self.error("Timeout reading from socket (test)")
        return self.original(*args, **kwargs)


def _cache(client: Any, clock: SimClock) -> RedisCache:
    return RedisCache(client, clock=clock, seed=0, breaker=CacheBreaker(threshold=3, cooldown=15))


def test_timeouts_open_the_breaker_and_the_cache_skips_redis(
    clock: SimClock, telemetry: Telemetry
) -> None:
    client = fakeredis.FakeRedis()
    cache = _cache(client, clock)
    cache.set("ticker:ABCUSDT", 1.5, ttl=600)
    hang = _Hang(client)
    for _ in range(10):
        assert not cache.get("ticker:ABCUSDT").hit
    assert hang.calls == 3 and cache.breaker.is_open and cache.breaker.bypassed == 7
    assert cache.errors == 10
    assert telemetry.metric("cache_errors_total",
                            {"operation": "get", "error_type": "TimeoutError"}).value == 3
    assert telemetry.metric("cache_errors_total",
                            {"operation": "get", "error_type": "CacheBypassed"}).value == 7
    # bypassed operations count as failed ones, so RedisUnavailable keeps firing
    assert telemetry.metric("cache_operation_latency_ms",
                            {"operation": "get", "result": "error"}).count == 10
    telemetry.assert_span_tree(span("redis.get", status="ERROR", status_description=re.compile(
        "CacheBypassed: cache breaker open"), events=["exception"]))
    assert [r.body for r in telemetry.logs if r.severity_text == "ERROR"] == [
        "cache breaker opened: Redis times out, using the exchange"]

    clock.tick(10)  # within the cool-down: still skipped
    assert not cache.get("ticker:ABCUSDT").hit and hang.calls == 3
    clock.tick(10)
    assert not cache.get("ticker:ABCUSDT").hit  # the probe: still hung, re-opens
    assert hang.calls == 4 and cache.breaker.is_open and cache.breaker.opens == 1

    hang.hung = False
    clock.tick(10)  # the cool-down restarted at the failed probe
    assert not cache.get("ticker:ABCUSDT").hit and hang.calls == 4
    clock.tick(10)
    assert cache.get("ticker:ABCUSDT").value == 1.5  # the probe answers: closed
    assert not cache.breaker.is_open
    assert cache.get("ticker:ABCUSDT").hit and hang.calls == 6
    assert "cache breaker closed: Redis answers again" in [r.body for r in telemetry.logs]
    cache.close()


def test_refused_connections_fail_fast_and_never_open_it(
    clock: SimClock, telemetry: Telemetry
) -> None:
    client = fakeredis.FakeRedis()
    cache = _cache(client, clock)
    hang = _Hang(client, redis.ConnectionError)
    for _ in range(10):
        assert not cache.get("ticker:ABCUSDT").hit
    assert hang.calls == 10 and not cache.breaker.is_open and cache.breaker.bypassed == 0
    cache.close()


def test_an_answer_between_timeouts_resets_the_count(clock: SimClock) -> None:
    breaker = CacheBreaker(threshold=3)
    for timed_out in (True, True, False, True, True):
        assert breaker.record(0.0, timed_out=timed_out) is None
    assert breaker.record(0.0, timed_out=True) == "opened"


@pytest.fixture
def hung_redis() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("CI is set but redis-server is not installed")
        pytest.skip("needs redis-server (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        probe = redis.Redis(port=port, socket_connect_timeout=0.2)
        for _ in range(50):
            try:
                probe.ping()
                break
            except redis.RedisError:
                threading.Event().wait(0.1)
        probe.close()
        yield port, proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=10)


def test_a_sigstopped_server_is_skipped_until_it_answers_again(
    hung_redis: tuple[int, subprocess.Popen[bytes]], clock: SimClock, telemetry: Telemetry
) -> None:
    port, proc = hung_redis
    client = redis.Redis(port=port, socket_connect_timeout=1.0, socket_timeout=0.1,
                         retry=Retry(NoBackoff(), 0))
    cache = _cache(client, clock)
    try:
        cache.set("ticker:ABCUSDT", 1.5, ttl=600)
        os.kill(proc.pid, signal.SIGSTOP)
        for _ in range(20):
            clock.tick(1)
            assert not cache.get("ticker:ABCUSDT").hit
        # three commands and one probe (15 s later) waited out the socket timeout; the
        # other 16 never asked
        assert cache.breaker.is_open and cache.breaker.bypassed == 16
        assert telemetry.metric("cache_errors_total",
                                {"operation": "get", "error_type": "TimeoutError"}).value == 4
        os.kill(proc.pid, signal.SIGCONT)
        clock.tick(15)
        assert cache.get("ticker:ABCUSDT").value == 1.5
        assert not cache.breaker.is_open
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        cache.close()
        client.close()
