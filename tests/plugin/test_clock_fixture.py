"""The `clock` fixture and its marker, through pytester (in-process: see conftest.py)."""

from __future__ import annotations

import pytest
from pytester_helpers import run_inprocess

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
    result = run_inprocess(app, "-p", "no:randomly")
    result.assert_outcomes(passed=5)
