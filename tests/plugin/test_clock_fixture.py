"""The `clock` fixture and its marker, through pytester (in-process: see conftest.py)."""

from __future__ import annotations

import datetime as dt
from xml.etree import ElementTree

import pytest

from .pytester_helpers import assert_failures, run_inprocess

CLOCK_TESTS = """
import datetime as dt
import time

import pytest

from app import tracer
from pytest_sniper_otel import span

START = dt.datetime(2020, 3, 1, 9, 30, tzinfo=dt.timezone.utc)


def test_default_start_and_tick(clock):
    assert clock.now() == dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    before = time.monotonic()
    clock.tick(1.5)
    assert time.monotonic() - before == 1.5
    assert clock.elapsed() == 1.5


@pytest.mark.sniper_otel_clock("2020-03-01T09:30:00")
def test_marker_start_iso(clock, telemetry):
    assert clock.now() == START
    with tracer.start_as_current_span("s"):
        clock.tick(2)
    [s] = telemetry.spans
    assert s.start_time == int(START.timestamp()) * 10**9
    telemetry.assert_span_tree(span("s", duration_ms=2000))


@pytest.mark.sniper_otel_clock(START)
def test_marker_start_datetime(clock):
    assert clock.time() == START.timestamp()
    clock.jump(-30)
    assert clock.elapsed() == -30


@pytest.mark.sniper_otel_clock(START, otel_follows=False)
def test_otel_keeps_real_time(clock, telemetry):
    with tracer.start_as_current_span("s"):
        clock.tick(2)
    [s] = telemetry.spans
    assert clock.now() == START + dt.timedelta(seconds=2)       # the code sees simulated time
    assert s.start_time > int(START.timestamp() + 10**8) * 10**9  # OTel stamps real time
    assert s.end_time - s.start_time != 2 * 10**9


def test_clock_is_stopped_after_the_test():
    assert dt.datetime.now(dt.timezone.utc).year > 2020
"""


def test_clock_fixture_and_marker(app: pytest.Pytester) -> None:
    app.makepyfile(test_clock=CLOCK_TESTS)
    result = run_inprocess(app)
    result.assert_outcomes(passed=5)


SLEEP_TESTS = """
import threading
import time

from app import tracer
from pytest_sniper_otel import span


def test_sleep_advances_the_clock(clock, telemetry):
    with tracer.start_as_current_span("back-off"):
        time.sleep(30)
    assert clock.elapsed() == 30
    telemetry.assert_span_tree(span("back-off", duration_ms=30_000))


def test_other_threads_really_sleep(clock):
    worker = threading.Thread(target=time.sleep, args=(0.001,))
    worker.start()
    worker.join()
    assert clock.elapsed() == 0


def test_negative_sleep_is_refused_as_by_time_sleep(clock):
    time.sleep(-1)
"""


def test_time_sleep_under_the_clock(app: pytest.Pytester) -> None:
    app.makepyfile(test_sleep=SLEEP_TESTS)
    result = run_inprocess(app)
    assert_failures(
        result,
        {"test_negative_sleep_is_refused_as_by_time_sleep": "sleep length must be non-negative"},
        exc="ValueError",
    )
    result.assert_outcomes(passed=2, failed=1)


TIMING_TESTS = """
import time


def test_an_hour_of_simulated_time(clock):
    clock.tick(1800)
    time.sleep(1800)
    assert clock.elapsed() == 3600
"""


def test_pytest_timing_stays_on_the_wall_clock(app: pytest.Pytester) -> None:
    """A simulated hour, a frozen 2026 clock: --durations, junit-xml and the session
    duration report wall time (seconds, not 3600 s or 1.77e9 s)."""
    app.makepyfile(test_timing=TIMING_TESTS)
    result = run_inprocess(app, "--durations=0", "-vv", "--junitxml=out.xml")
    seconds = r"\d{1,2}\.\d\ds"
    for when in ("setup   ", "call    ", "teardown"):  # sorted by duration: one at a time
        result.stdout.re_match_lines([rf"{seconds} {when} test_timing.py::test_an_hour_of_"])
    result.stdout.re_match_lines([rf"=+ 1 passed in {seconds} =+"])
    junit = ElementTree.parse(app.path / "out.xml").getroot()
    [suite] = junit.iter("testsuite")
    [case] = junit.iter("testcase")
    assert float(suite.get("time", "nan")) < 100
    assert float(case.get("time", "nan")) < 100
    assert suite.get("timestamp", "").startswith(str(dt.date.today().year))
