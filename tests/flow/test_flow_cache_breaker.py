"""The cache breaker: a hung Redis is skipped, and used again once it answers.

The logic runs on fakeredis with a connection pool that times out as a hung server's
would, each timeout costing real time on a stand-in real clock; the real leg hangs a
loopback ``redis-server`` with SIGSTOP.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from pytest_sniper_otel import Telemetry, span
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import CacheBreaker, RedisCache


class _RealTime:
    """The real clock the breaker reads, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Hang:
    """Replaces a pool's ``get_connection``: while ``hung``, every command waits out a
    ``socket_timeout`` (on the stand-in real clock) and raises ``error``."""

    def __init__(self, client: Any, real: _RealTime, socket_timeout: float = 0.25,
                 error: type[Exception] = redis.TimeoutError) -> None:
        self.pool = client.connection_pool
        self.original = self.pool.get_connection
        self.real = real
        self.socket_timeout = socket_timeout
        self.error = error
        self.hung = True
        self.calls = 0
        self.pool.get_connection = self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.hung:
            self.real.now += self.socket_timeout
            raise self.error("Timeout reading from socket (test)")
        return self.original(*args, **kwargs)


def _cache(client: Any, clock: SimClock, real: _RealTime) -> RedisCache:
    return RedisCache(client, clock=clock, seed=0, breaker=CacheBreaker(real_time=real))


def test_a_second_of_timeouts_opens_the_breaker_and_the_cache_skips_redis(
    clock: SimClock, telemetry: Telemetry
) -> None:
    client, real = fakeredis.FakeRedis(), _RealTime()
    cache = _cache(client, clock, real)
    cache.set("ticker:ABCUSDT", 1.5, ttl=600)
    hang = _Hang(client, real)  # 0.25 s per command: the fourth timeout makes a second
    for _ in range(10):
        assert not cache.get("ticker:ABCUSDT").hit
    assert hang.calls == 4 and cache.breaker.is_open and cache.breaker.bypassed == 6
    assert cache.errors == 10
    assert telemetry.metric("cache_errors_total",
                            {"operation": "get", "error_type": "TimeoutError"}).value == 4
    assert telemetry.metric("cache_errors_total",
                            {"operation": "get", "error_type": "CacheBypassed"}).value == 6
    # skipped operations count as failed ones, so RedisUnavailable keeps firing
    assert telemetry.metric("cache_operation_latency_ms",
                            {"operation": "get", "result": "error"}).count == 10
    telemetry.assert_span_tree(span("redis.get", status="ERROR", status_description=re.compile(
        "CacheBypassed: cache breaker open"), events=["exception"]))
    assert [r.body for r in telemetry.logs if r.severity_text == "ERROR"] == [
        "cache breaker opened: Redis times out, using the exchange"]

    # trials on the bot's clock: 15 s, then twice as long after each failed one, up to 60 s
    trials = []
    for second in range(1, 170):
        clock.tick(1)
        calls = hang.calls
        assert not cache.get("ticker:ABCUSDT").hit
        if hang.calls > calls:
            trials.append(second)
    assert trials == [15, 45, 105, 165]

    hang.hung = False
    clock.tick(50)  # still within the cool-down: skipped
    assert not cache.get("ticker:ABCUSDT").hit and len(trials) + 4 == hang.calls
    clock.tick(10)
    assert cache.get("ticker:ABCUSDT").value == 1.5  # the trial answers: closed
    assert not cache.breaker.is_open
    assert cache.get("ticker:ABCUSDT").hit
    assert "cache breaker closed: Redis answers again" in [r.body for r in telemetry.logs]
    cache.close()


def test_a_short_stall_does_not_open_it(clock: SimClock) -> None:
    # three commands miss their timeout (a loaded machine), then Redis answers: the bot
    # keeps asking Redis rather than skip it for a cool-down
    client, real = fakeredis.FakeRedis(), _RealTime()
    cache = _cache(client, clock, real)
    hang = _Hang(client, real, socket_timeout=0.125)
    for _ in range(3):
        assert not cache.get("ticker:ABCUSDT").hit
    hang.hung = False
    assert cache.set("ticker:ABCUSDT", 2.0)
    hang.hung = True
    for _ in range(7):  # 0.875 s of silence since the answer
        assert not cache.get("ticker:ABCUSDT").hit
    assert not cache.breaker.is_open and cache.breaker.bypassed == 0
    assert not cache.get("ticker:ABCUSDT").hit  # the eighth: a second without an answer
    assert cache.breaker.is_open and cache.breaker.opens == 1
    cache.close()


def test_refused_connections_fail_fast_and_never_open_it(clock: SimClock) -> None:
    client, real = fakeredis.FakeRedis(), _RealTime()
    cache = _cache(client, clock, real)
    hang = _Hang(client, real, error=redis.ConnectionError)
    for _ in range(10):
        assert not cache.get("ticker:ABCUSDT").hit
    assert hang.calls == 10 and not cache.breaker.is_open and cache.breaker.bypassed == 0
    cache.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"threshold": 0}, "CacheBreaker threshold must be an int >= 1, got 0"),
    ({"silence": float("nan")}, "CacheBreaker silence must be a finite number of seconds"),
    ({"cooldown": -1}, "CacheBreaker cooldown must be a finite number of seconds >= 0, got -1"),
    ({"cooldown": 30, "max_cooldown": 20},
     "CacheBreaker max_cooldown (20) is shorter than cooldown (30)"),
])
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        CacheBreaker(**kwargs)


def test_a_sigstopped_server_is_skipped_until_it_answers_again(
    private_redis_server: tuple[int, subprocess.Popen[bytes]], clock: SimClock,
    telemetry: Telemetry,
) -> None:
    port, proc = private_redis_server
    client = redis.Redis(port=port, socket_connect_timeout=1.0, socket_timeout=0.1,
                         retry=Retry(NoBackoff(), 0))
    cache = RedisCache(client, clock=clock, seed=0)
    try:
        cache.set("ticker:ABCUSDT", 1.5, ttl=600)
        os.kill(proc.pid, signal.SIGSTOP)
        for _ in range(30):  # a second of 0.1 s timeouts opens it: ten commands at most
            clock.tick(1)
            assert not cache.get("ticker:ABCUSDT").hit
            if cache.breaker.is_open:
                break
        assert cache.breaker.is_open and 3 <= cache.breaker.timeouts <= 10
        opened_after = cache.breaker.timeouts
        for _ in range(20):
            clock.tick(1)
            assert not cache.get("ticker:ABCUSDT").hit
        # of those twenty, one was the trial (15 s after opening) and timed out
        assert cache.breaker.bypassed == 19
        assert telemetry.metric("cache_errors_total", {
            "operation": "get", "error_type": "TimeoutError"}).value == opened_after + 1
        os.kill(proc.pid, signal.SIGCONT)
        clock.tick(30)
        assert cache.get("ticker:ABCUSDT").value == 1.5
        assert not cache.breaker.is_open
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        cache.close()
        client.close()


def test_sniper_otel_run_goes_on_past_a_server_that_hangs_mid_run(
    private_redis_server: tuple[int, subprocess.Popen[bytes]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from pytest_sniper_otel import cli
    from pytest_sniper_otel.cli import main as sniper_otel

    port, proc = private_redis_server
    connect = cli.connect_redis

    def connect_then_hang(*args: Any, **kwargs: Any) -> Any:
        client = connect(*args, **kwargs)  # the start-up check passes, then it hangs
        os.kill(proc.pid, signal.SIGSTOP)
        return client

    monkeypatch.setattr(cli, "connect_redis", connect_then_hang)
    out = tmp_path / "summary.json"
    code = sniper_otel(["run", "--duration", "10m", "--redis-url",
                        f"redis://127.0.0.1:{port}/0", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    summary = json.loads(out.read_text())
    assert summary["simulated_seconds"] == pytest.approx(600, abs=2)
    assert summary["reconcile"] == []
    breaker = summary["cache_breaker"]
    assert breaker["opens"] == 1 and summary["cache"]["hits"] == 0
    assert summary["cache"]["errors"] > breaker["bypassed"] > 0
    assert (f"cache breaker: opened 1 time(s) as Redis hung; {breaker['bypassed']} operations "
            "skipped it for the exchange") in printed
