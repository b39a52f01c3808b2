"""Each test's window holds only its own telemetry: spans belong to the test they started in,
fixtures set up before ``telemetry`` are inside the window, and a suite that resets the global
providers (opentelemetry-test-utils' ``TestBase``) keeps capturing."""

from __future__ import annotations

import pytest

from .pytester_helpers import literal, run_inprocess, run_subprocess

OUTLIVING_TESTS = """
import logging
import threading

import pytest
from opentelemetry import trace

from pytest_sniper_otel import span

tracer = trace.get_tracer("bot")
log = logging.getLogger("bot")
started = threading.Event()
release = threading.Event()
workers = []


def finish_background_work():
    release.set()
    for worker in workers:
        worker.join(5)
    workers.clear()


@pytest.fixture(scope="module", autouse=True)
def background_work_ends_by_module_teardown():
    yield
    finish_background_work()


@pytest.fixture(autouse=True)
def earlier_background_work_ends_now(request):
    # A task that outlived its test finishes while the next test sets up: its span ends and
    # it logs inside that test's window.
    if request.node.name != "test_leaves_a_span_open":
        finish_background_work()


def test_leaves_a_span_open(telemetry):
    def background():
        with tracer.start_as_current_span("outlives-its-test"):
            log.warning("still working")
            started.set()
            release.wait(5)
            log.warning("done at last")

    workers.append(threading.Thread(target=background))
    workers[0].start()
    started.wait(5)
    with tracer.start_as_current_span("own-work"):
        pass
    telemetry.assert_span_tree(span("own-work"), exact=True)
    assert telemetry.open_spans == ["outlives-its-test"]
    assert [r.body for r in telemetry.logs] == ["still working"]


@pytest.mark.parametrize("n", range(3))
def test_later(telemetry, n):
    with tracer.start_as_current_span(f"later-{n}"):
        log.warning("later %d", n)
    telemetry.assert_span_tree(span(f"later-{n}"), exact=True)
    assert telemetry.open_spans == []
    assert [r.body for r in telemetry.logs] == [f"later {n}"]
    telemetry.assert_logs_correlated()
"""

LEAVER_SECTION = [
    "*- Captured telemetry call -*",
    "spans (1):",
    "   own-work [[]UNSET[]] *ms",
    "   started, never ended: outlives-its-test",
    "",
    "logs (1):",
    "   WARN  bot: still working [[]trace=* span=*[]]",
]


def test_a_span_belongs_to_the_test_it_started_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_outliving=OUTLIVING_TESTS)
    result = run_inprocess(pytester, "-rA", "--sniper-otel-show=always")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(LEAVER_SECTION)
    # The test that ran while the span ended sees neither the span nor its last log.
    result.stdout.fnmatch_lines(
        [
            "*_ test_later[[]0[]] _*",
            "*- Captured telemetry call -*",
            "spans (1):",
            "   later-0 [[]UNSET[]] *ms",
            "",
            "logs (1):",
            "   WARN  bot: later 0 [[]trace=* span=*[]]",
        ]
    )
    assert "bot: done at last" not in result.stdout.str()  # pytest's log capture has it


@pytest.mark.parametrize(
    "args",
    [
        # workers of their own: CI's (the suite itself runs on two)
        pytest.param(("-n", "2", "-p", "no:randomly"), id="xdist", marks=pytest.mark.slow),
        pytest.param(("-p", "randomly", "--randomly-seed=1"), id="randomly-1"),
        pytest.param(("-p", "randomly", "--randomly-seed=4"), id="randomly-4",
                     marks=pytest.mark.slow),
    ],
)
def test_a_span_belongs_to_the_test_it_started_in_any_order(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_outliving=OUTLIVING_TESTS)
    result = run_subprocess(pytester, *args, "--sniper-otel-show=always", "-rA")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(LEAVER_SECTION)
    assert "bot: done at last" not in result.stdout.str()  # pytest's log capture has it


FIXTURE_ORDER_TESTS = """
import logging

import pytest
from opentelemetry import trace

from pytest_sniper_otel import span

tracer = trace.get_tracer("bot")
seen = {}


@pytest.fixture
def teardown_is_captured_too(request):
    yield
    # Set up first, torn down last: by now the window holds every other fixture's teardown.
    names = [s.name for s in seen.pop("telemetry").spans]
    assert names[-1] == "disconnect", names


@pytest.fixture
def client():
    with tracer.start_as_current_span("connect"):
        logging.getLogger("bot").warning("connected")
    yield "client"
    with tracer.start_as_current_span("disconnect"):
        pass


def test_fixture_before_telemetry(teardown_is_captured_too, client, telemetry):
    seen["telemetry"] = telemetry
    with tracer.start_as_current_span("trade"):
        pass
    telemetry.assert_span_tree([span("connect"), span("trade")], exact=True)
    assert [r.body for r in telemetry.logs] == ["connected"]


def test_fixture_after_telemetry(teardown_is_captured_too, telemetry, client):
    seen["telemetry"] = telemetry
    with tracer.start_as_current_span("trade"):
        pass
    telemetry.assert_span_tree([span("connect"), span("trade")], exact=True)
    assert [r.body for r in telemetry.logs] == ["connected"]


def test_telemetry_requested_in_the_test(teardown_is_captured_too, client, request):
    with tracer.start_as_current_span("before-the-request"):
        pass
    telemetry = request.getfixturevalue("telemetry")
    assert request.getfixturevalue("telemetry") is telemetry
    seen["telemetry"] = telemetry
    with tracer.start_as_current_span("trade"):
        pass
    # the window opened at the request, and closes after the test's last teardown
    telemetry.assert_span_tree(span("trade"), exact=True)
"""


def test_fixtures_set_up_before_telemetry_are_captured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_order=FIXTURE_ORDER_TESTS)
    result = run_inprocess(pytester, "--sniper-otel-show=always", "-rA")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*_ test_telemetry_requested_in_the_test _*",
            "*- Captured telemetry call -*",
            "spans (1):",
            "   trade [[]UNSET[]] *ms",
        ]
    )
    for name in ("test_fixture_before_telemetry", "test_fixture_after_telemetry"):
        result.stdout.fnmatch_lines(
            [
                f"*_ {name} _*",
                "*- Captured telemetry call -*",
                "spans (2):",
                "   connect [[]UNSET[]] *ms",
                "   trade [[]UNSET[]] *ms",
            ]
        )


TESTBASE_CONFTEST = '''
"""Import-time tracer and instruments, as an app module would create them."""
from opentelemetry import metrics, trace

tracer = trace.get_tracer("bot")
orders = metrics.get_meter("bot").create_counter("orders_total")
'''

TESTBASE_TESTS = """
import logging

from opentelemetry import _logs, metrics, trace
from opentelemetry.test.globals_test import reset_logging_globals
from opentelemetry.test.test_base import TestBase

from conftest import orders, tracer
from pytest_sniper_otel import span


def check_capture(telemetry, n):
    late_tracer = trace.get_tracer("late")  # obtained after the reset
    late_counter = metrics.get_meter("late").create_counter("late_total")
    with tracer.start_as_current_span(f"early-{n}"):
        with late_tracer.start_as_current_span(f"late-{n}"):
            logging.getLogger("bot").warning("order %d", n)
    orders.add(n)
    late_counter.add(n)
    telemetry.assert_span_tree(span(f"early-{n}", children=[f"late-{n}"]), exact=True)
    assert telemetry.metric("orders_total").value == n
    assert telemetry.metric("late_total").value == n
    assert [r.body for r in telemetry.logs] == [f"order {n}"]
    telemetry.assert_logs_correlated()


def test_1_before(telemetry):
    check_capture(telemetry, 1)


class Test2Instrumentation(TestBase):
    def tearDown(self):
        super().tearDown()
        reset_logging_globals()  # as OTel's own logging tests do

    def test_uses_its_own_providers(self):
        with trace.get_tracer("lib").start_as_current_span("lib-span"):
            pass
        self.assertEqual([s.name for s in self.get_finished_spans()], ["lib-span"])


def test_3_after(telemetry):
    check_capture(telemetry, 3)


def test_4_and_later(telemetry):
    check_capture(telemetry, 4)
"""


def test_testbase_resetting_the_globals_does_not_empty_later_captures(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(TESTBASE_CONFTEST)
    pytester.makepyfile(test_mixed=TESTBASE_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=4)
    sdk = {
        "TracerProvider": "opentelemetry.sdk.trace.TracerProvider",
        "MeterProvider": "opentelemetry.sdk.metrics._internal.MeterProvider",
        "LoggerProvider": "opentelemetry.sdk._logs._internal.LoggerProvider",
    }
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_mixed.py::test_3_after",
            *(
                "  *: SniperOtelWarning: "
                + literal(
                    f"sniper-otel: the global {kind} was reset (opentelemetry-test-utils' "
                    f"TestBase does this in tearDown); sniper-otel set {cls} back"
                )
                for kind, cls in sdk.items()
            ),
        ]
    )
    # Once set back, later tests see nothing more to warn about.
    assert "test_mixed.py::test_4_and_later" not in result.stdout.str()


REPLACED_TESTS = """
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.test.globals_test import reset_trace_globals

from pytest_sniper_otel import span

EXPORTED = InMemorySpanExporter()


def test_1_installs(telemetry):
    trace.get_tracer("bot").start_span("first").end()
    telemetry.assert_span_tree(span("first"), exact=True)


def test_2_a_suite_installs_its_own_provider():
    reset_trace_globals()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTED))
    trace.set_tracer_provider(provider)


def test_3_captured_and_still_exported(telemetry):
    trace.get_tracer("bot").start_span("third").end()
    telemetry.assert_span_tree(span("third"), exact=True)
    assert [s.name for s in EXPORTED.get_finished_spans()] == ["third"]
"""


def test_a_provider_installed_after_a_reset_is_attached_to(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_replaced=REPLACED_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_replaced.py::test_3_captured_and_still_exported",
            "  *: SniperOtelWarning: "
            + literal(
                "sniper-otel: the global TracerProvider changed to "
                "opentelemetry.sdk.trace.TracerProvider; sniper-otel attached to "
                "opentelemetry.sdk.trace.TracerProvider"
            ),
        ]
    )
