"""Fixtures for the reference bot's tests: a Redis client per leg (fakeredis, real), and a
private loopback redis-server that a test may stop."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
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
    url = request.getfixturevalue("real_redis_url")
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


@pytest.fixture
def private_redis_server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """``(port, process)`` of a redis-server of this test's own on loopback, answering PING.
    A test may SIGSTOP it (a hung server); teardown resumes and ends it either way. Skips
    without redis-server, except in CI (``CI`` set), where its absence is a failure."""
    server = shutil.which("redis-server")
    if server is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail("CI is set but redis-server is not installed")
        pytest.skip("needs redis-server (apt-get install redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        probe = redis.Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            for _ in range(50):  # five seconds at most
                try:
                    probe.ping()
                    break
                except redis.RedisError:
                    threading.Event().wait(0.1)
            else:
                pytest.fail(f"redis-server on port {port} did not answer PING within 5 s")
        finally:
            probe.close()
        yield port, proc
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.terminate()
        proc.wait(timeout=10)
