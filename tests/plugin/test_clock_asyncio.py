"""The `clock` fixture with asyncio: the real pytest-asyncio (auto and strict mode) and
anyio's pytest plugin on its asyncio backend.

A subprocess with a timeout: a loop that is not on the simulated clock hangs for the
simulated hour these tests sleep, and the bound turns that into a failure.
"""

from __future__ import annotations

import pytest

from .pytester_helpers import (
    FOREIGN_OTEL_PLUGINS,
    QUIET,
    assert_failures,
    literal,
    run_inprocess,
    run_subprocess,
)

HEADER = (
    "sniper-otel clock: asyncio event loops of the test's thread run on the simulated clock "
    "(pytest-asyncio, anyio)"
)

ASYNC_TESTS = """
import asyncio
import threading
import time

import pytest

from opentelemetry import trace

from pytest_sniper_otel import span

tracer = trace.get_tracer("bot")


def report(what, value):
    print(f"[{what}] {value!r}")


@MARK
async def test_sleep_in_a_span_lasts_simulated_time(clock, telemetry):
    loop = asyncio.get_running_loop()
    start = loop.time()
    with tracer.start_as_current_span("poll-order-status"):
        await asyncio.sleep(3600)
    report("loop seconds", loop.time() - start)
    report("clock elapsed", clock.elapsed())
    telemetry.assert_span_tree(span("poll-order-status", duration_ms=3_600_000))


@MARK
async def test_wait_for_times_out_on_simulated_time(clock):
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.sleep(60), timeout=5)
    report("timed out after", loop.time() - start)
    report("in time", await asyncio.wait_for(asyncio.sleep(4, "filled"), timeout=5))
    report("after", loop.time() - start)


@MARK
async def test_call_later_fires_in_order(clock):
    loop = asyncio.get_running_loop()
    start = loop.time()
    fired = []
    for delay in (0.3, 0.1, 0.2):
        loop.call_later(delay, lambda d=delay: fired.append((d, round(loop.time() - start, 9))))
    await asyncio.sleep(1)
    report("fired", fired)


@MARK
async def test_timer_due_at_the_tick_boundary_fires(clock):
    loop = asyncio.get_running_loop()
    due = loop.create_future()
    loop.call_at(loop.time() + 0.3, due.set_result, "due at 0.3")
    clock.tick(0.1)
    clock.tick(0.2)  # 0.1 + 0.2 is not 0.3 in floats; the loop counts integer nanoseconds
    report("fired", await due)
    report("without moving on", (loop.time(), clock.monotonic_ns()))


@MARK
async def test_time_sleep_and_threads(clock):
    loop = asyncio.get_running_loop()
    start = loop.time()
    time.sleep(2)  # blocking the loop's thread: the loop's time moves with it
    report("after time.sleep", loop.time() - start)

    def slow_io():
        time.sleep(0.01)  # another thread: a real sleep, and the clock does not move
        return "done"

    report("to_thread", await asyncio.to_thread(slow_io))


@MARK
async def test_fails_with_the_simulated_time(clock):
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(5)
    assert loop.time() - start == 4
"""

# anyio's own default runs each test on every backend installed (trio comes with selenium).
ANYIO_ON_ASYNCIO = """
import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"
"""

# What the tests print (-rP shows each passing test's output).
EXPECTED_PRINTS = [
    "[loop seconds] 3600.0",
    "[clock elapsed] 3600.0",
    "[timed out after] 5.0",
    "[in time] 'filled'",
    "[after] 9.0",
    "[fired] [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)]",
    "[fired] 'due at 0.3'",
    "[without moving on] (0.3, 300000000)",
    "[after time.sleep] 2.0",
    "[to_thread] 'done'",
]


@pytest.mark.parametrize(
    ("decorator", "mode"),
    [("@pytest.mark.asyncio\n", "strict"), ("", "auto"), ("@pytest.mark.anyio\n", "strict")],
    ids=["pytest-asyncio-strict", "pytest-asyncio-auto", "anyio-asyncio"],
)
def test_event_loop_runs_on_the_simulated_clock(
    pytester: pytest.Pytester, decorator: str, mode: str
) -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest(ANYIO_ON_ASYNCIO)
    pytester.makepyfile(test_async=ASYNC_TESTS.replace("@MARK\n", decorator))
    result = run_subprocess(pytester, "-rP", timeout=120)
    result.stdout.fnmatch_lines([literal(line) for line in (HEADER, *EXPECTED_PRINTS)])
    assert_failures(
        result, {"test_fails_with_the_simulated_time": "assert (5.0 - 0.0) == 4"}, exc=""
    )
    result.assert_outcomes(passed=5, failed=1)


def run_unconfigured(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """A run whose configuration names no asyncio runner (every other inner run sets a
    default fixture loop scope); pytest-asyncio warns that the scope is unset."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTEST_ADDOPTS", FOREIGN_OTEL_PLUGINS)
        return pytester.runpytest_inprocess(
            *QUIET, "-p", "no:randomly", "-W", "ignore::pytest.PytestDeprecationWarning", *args,
        )


@pytest.mark.parametrize(
    "args",
    [(), ("-p", "no:asyncio"), ("-p", "no:anyio")],
    ids=["both-runners", "anyio-only", "pytest-asyncio-only"],
)
def test_clock_header_is_quiet_when_no_runner_is_configured(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_sync="def test_nothing():\n    pass\n")
    result = run_unconfigured(pytester, *args)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("sniper-otel clock:*")


@pytest.mark.parametrize(
    ("args", "runners"),
    [((), "pytest-asyncio, anyio"), (("-p", "no:asyncio"), "anyio"),
     (("-p", "no:anyio"), "pytest-asyncio")],
    ids=["both-runners", "anyio-only", "pytest-asyncio-only"],
)
def test_clock_header_shows_under_verbose(
    pytester: pytest.Pytester, args: tuple[str, ...], runners: str
) -> None:
    pytester.makepyfile(test_sync="def test_nothing():\n    pass\n")
    result = run_unconfigured(pytester, "-v", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([literal(HEADER.replace("pytest-asyncio, anyio", runners))])


@pytest.mark.parametrize(
    "configured",
    [("-o", "asyncio_mode=auto"), ("--asyncio-mode=strict",),
     ("-o", "asyncio_default_fixture_loop_scope=function")],
    ids=["auto-mode", "mode-on-the-command-line", "fixture-loop-scope"],
)
def test_clock_header_shows_when_pytest_asyncio_is_configured(
    pytester: pytest.Pytester, configured: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_sync="def test_nothing():\n    pass\n")
    result = run_unconfigured(pytester, *configured)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([literal(HEADER)])


def test_clock_header_from_the_ini_file(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(test_sync="def test_nothing():\n    pass\n")
    result = run_unconfigured(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([literal(HEADER)])


def test_no_clock_header_without_an_async_runner(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sync="def test_nothing():\n    pass\n")
    result = run_inprocess(pytester, "-v", "-p", "no:asyncio",
                           "-p", "no:anyio")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("sniper-otel clock:*")
