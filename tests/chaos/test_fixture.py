"""The `chaos` fixture, its marker and the seed option, through pytester."""

from __future__ import annotations

import re

import pytest

HEADER_SEED = re.compile(
    r"sniper-otel chaos seed: (\d+) \(reproduce with --sniper-otel-chaos-seed=(\d+)\)$"
)
WORKER_SEED = re.compile(r"worker (gw\d) chaos seed (\d+)$")

CLIENT = """
import json
import pytest
from pytest_sniper_otel.chaos import fault
from pytest_sniper_otel.flow.exchange import ApiRequest, ApiResponse

REQ = ApiRequest("GET", "/api/v3/ticker/price", "ticker")
ORIGINAL = []


class Client:
    def __init__(self, clock):
        self.clock = clock
        self.statuses = []

        def transport(request):
            return ApiResponse(200, b'{"price": "1"}')

        ORIGINAL.append(transport)
        self.transport = transport

    def poll(self, dt):
        self.statuses.append(self.transport(REQ).status)
        self.clock.tick(dt)
"""


def test_markers_are_registered_with_their_signatures(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines([
        "@pytest.mark.sniper_otel_bot(*, seed=0, config=None, redis=None): *",
        "@pytest.mark.sniper_otel_chaos(*faults, seed=None): *",
        "@pytest.mark.sniper_otel_real_redis: needs a real Redis server (SNIPER_OTEL_REDIS_URL)*",
    ])


def test_header_prints_the_seed_when_chaos_is_in_play(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--sniper-otel-chaos-seed=4242")
    result.stdout.fnmatch_lines(
        ["sniper-otel chaos seed: 4242 (reproduce with --sniper-otel-chaos-seed=4242)"])
    result = pytester.runpytest("--sniper-otel-chaos-seed=soon")
    result.stderr.fnmatch_lines(
        ["ERROR: --sniper-otel-chaos-seed takes a non-negative int or 'random', got 'soon'"]
    )


def test_a_negative_seed_is_refused_at_startup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--sniper-otel-chaos-seed=-3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --sniper-otel-chaos-seed takes a non-negative int or 'random', got '-3'"]
    )
    pytester.makeini("[pytest]\nsniper_otel_chaos_seed = -1\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: --sniper-otel-chaos-seed takes a non-negative int or 'random', got '-1'"]
    )


SEED_PER_WORKER = """
import os

import pytest


@pytest.mark.parametrize("n", range(8))
def test_seed_of_this_worker(chaos, n):
    print(f"worker {os.environ['PYTEST_XDIST_WORKER']} chaos seed {chaos.seed}")
"""


@pytest.mark.slow  # three interpreters with the lab loaded
def test_random_seed_is_drawn_once_for_all_xdist_workers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_seed=SEED_PER_WORKER)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2", "-rP",
        "--sniper-otel-chaos-seed=random", timeout=120,
    )
    result.assert_outcomes(passed=8)
    [header] = [m for m in map(HEADER_SEED.match, result.outlines) if m]
    seed = header.group(1)
    assert header.group(2) == seed
    seen = {m.groups() for m in map(WORKER_SEED.match, result.outlines) if m}
    assert seen == {("gw0", seed), ("gw1", seed)}


def test_header_is_quiet_about_chaos_unless_verbose(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("sniper-otel chaos*")
    result = pytester.runpytest("-v")
    result.stdout.fnmatch_lines(
        ["sniper-otel chaos seed: 0 (reproduce with --sniper-otel-chaos-seed=0)"])


def test_schedule_applies_on_the_clock_and_rolls_back_after_a_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(CLIENT + """

@pytest.fixture
def client(clock):
    c = Client(clock)
    yield c
    # requested before `chaos`, so torn down after it: the fault must be gone by now
    assert c.transport is ORIGINAL[-1], "fault not rolled back"
    print("ROLLED BACK")


def test_rate_limited_window(client, chaos):
    chaos.bind(exchange=client)
    limit = chaos.add(fault("exchange.rate_limit", start=10, duration=20))
    chaos.advance(60, step=1.0, run=client.poll)
    assert client.statuses[:10] == [200] * 10
    assert client.statuses[10:30] == [429] * 20
    assert client.statuses[30:] == [200] * 30
    start = 1767225600.0  # the clock fixture's default start, 2026-01-01T00:00:00Z
    assert [a.to_json() for a in limit.records] == [
        {"started": 10.0, "ended": 30.0, "hits": 20, "misses": 0,
         # each 429 costs 10 ms of simulated time, so the clock ran 0.2 s ahead
         "clock_started": start + 10, "clock_ended": pytest.approx(start + 30.2)}]


def test_fails_while_a_fault_is_active(client, chaos):
    chaos.bind(exchange=client)
    chaos.inject(fault("exchange.http_error"))
    chaos.advance(5, run=client.poll)
    assert client.statuses == [200]
""")
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["E       assert [[]503, 503, 503, 503, 503[]] == [[]200[]]"])
    assert result.stdout.str().count("ROLLED BACK") == 2


def test_marker_faults_need_a_bound_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(CLIENT + """

@pytest.mark.sniper_otel_chaos(fault("exchange.http_error", start=5, probability=0.5), seed=3)
def test_marker(chaos, clock):
    client = Client(clock)
    chaos.bind(exchange=client)
    chaos.advance(100, run=client.poll)
    assert chaos.seed == 3
    assert 20 < client.statuses.count(503) < 75


@pytest.mark.sniper_otel_chaos(fault("exchange.http_error"))
def test_never_bound(chaos):
    pass


@pytest.mark.sniper_otel_chaos("exchange.http_error")
def test_not_a_spec(chaos):
    pass
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=2)
    # Two calls: the errors' order follows the test order, which pytest-randomly shuffles.
    result.stdout.fnmatch_lines(
        ["*FaultError: marker faults were never applied: exchange.http_error (target 'exchange')*"]
    )
    result.stdout.fnmatch_lines([
        "*FaultError: sniper_otel_chaos takes fault(...) specs as positional arguments, "
        "got 'exchange.http_error'*",
    ])


def test_journals_are_written_for_ci(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
from pytest_sniper_otel.chaos import Scenario, fault

QUICK = Scenario(name="quick", title="t", faults=[fault("redis.outage", start=10, duration=30)],
                 warmup=10.0, duration=60.0, recovery=10.0, baseline=False)


def test_quick(chaos):
    chaos.run(QUICK, check=False)
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "--sniper-otel-chaos-journal=out")
    result.assert_outcomes(passed=1)
    journal = pytester.path / "out" / "test_journals_are_written_for_ci.py_test_quick--quick.json"
    import json

    data = json.loads(journal.read_text())
    assert data["experiment"]["name"] == "quick" and data["run"][0]["fault"] == "redis.outage"


def test_bind_bot_drives_faults_against_the_sniper_bot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
from pytest_sniper_otel.chaos import fault


def test_outage_then_recovery(sniper_bot, chaos, telemetry):
    chaos.bind_bot(sniper_bot)
    outage = chaos.add(fault("redis.outage", start=60, duration=120))
    chaos.advance(300, step=5.0, run=sniper_bot.run_for)
    assert outage.records[0].started == 60 and outage.records[0].ended == 180
    assert outage.total_hits() == sniper_bot.cache.errors > 0
    failed = telemetry.metric("cache_operation_latency_ms", {"result": "error"}).count
    assert failed == sniper_bot.cache.errors
    assert "get_connection" not in vars(sniper_bot.cache.client.connection_pool)
""")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
