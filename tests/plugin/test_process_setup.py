"""What the plugin installs or attaches to, in a fresh interpreter each time.

Subprocess runs (see conftest.py): the report header, providers a conftest installs before
the plugin looks, tracers and instruments created at import time before any provider, and
``-n 2`` workers all depend on the process's state before the session starts, which an
in-process run would inherit from earlier runs.
"""

from __future__ import annotations

import os

import pytest

from .pytester_helpers import assert_failures, literal, run_subprocess

WILL_INSTALL = (
    "sniper-otel: on first use of the telemetry fixture: traces: install SDK TracerProvider; "
    "metrics: install SDK MeterProvider (DELTA reader); logs: install SDK LoggerProvider + "
    "logging bridge"
)
INSTALLED = (
    "traces: installed SDK TracerProvider; metrics: installed SDK MeterProvider (DELTA reader); "
    "logs: installed SDK LoggerProvider + logging bridge"
)

IMPORT_TIME_CONFTEST = '''
"""Tracer, meter, instruments and logger obtained at import time, before any provider."""
import logging

from opentelemetry import metrics, trace

tracer = trace.get_tracer("bot")
orders = metrics.get_meter("bot").create_counter("orders_total")
log = logging.getLogger("bot")
'''

ISOLATION_TESTS = """
import threading

import pytest

from conftest import log, orders, tracer
from pytest_sniper_otel import span


@pytest.mark.parametrize("n", range(6))
def test_each_test_sees_only_its_own(telemetry, n):
    with tracer.start_as_current_span(f"flow-{n}") as s:
        log.info("order %d", n)
        orders.add(n + 1)
    telemetry.assert_span_tree(span(f"flow-{n}"), exact=True)
    assert [r.body for r in telemetry.logs] == [f"order {n}"]
    assert telemetry.logs[0].span_id == s.get_span_context().span_id
    assert telemetry.metric("orders_total").value == n + 1


def test_span_from_a_thread(telemetry):
    def worker():
        with tracer.start_as_current_span("in-thread"):
            log.info("from the thread")

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    telemetry.assert_span_tree(span("in-thread"), exact=True)
    telemetry.assert_logs_correlated()


def test_fails_with_a_section(telemetry):
    with tracer.start_as_current_span("doomed"):
        pass
    assert False
"""


def test_import_time_tracer_before_any_provider(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(IMPORT_TIME_CONFTEST)
    pytester.makepyfile(test_isolation=ISOLATION_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=7, failed=1)
    # A conftest imported opentelemetry: the header reads the providers (and installs none).
    result.stdout.fnmatch_lines([literal(WILL_INSTALL)])
    result.stdout.fnmatch_lines(
        ["*- Captured telemetry call -*", "spans (1):", "   doomed [[]UNSET[]] *ms"]
    )


@pytest.mark.slow  # workers of its own: CI's (the suite itself runs on two)
def test_under_xdist_two_workers(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(IMPORT_TIME_CONFTEST)
    pytester.makepyfile(test_isolation=ISOLATION_TESTS)
    result = run_subprocess(pytester, "-n", "2")
    result.assert_outcomes(passed=7, failed=1)
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    # Each worker installs its own providers; the section travels back to the controller.
    result.stdout.fnmatch_lines(
        ["*- Captured telemetry call -*", "spans (1):", "   doomed [[]UNSET[]] *ms"]
    )


def test_header_before_opentelemetry_is_imported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)  # the header would read them: one module more
    pytester.makepyfile(
        test_lazy=f"""
        import sys

        from opentelemetry import metrics, trace

        tracer = trace.get_tracer("bot")  # collected after the header: nothing installed yet
        orders = metrics.get_meter("bot").create_counter("orders_total")

        def test_nothing_installed_yet(request):
            # A suite that never asks for telemetry pays for none of it: no SDK, none of
            # the plugins' heavier modules, no per-test report hook.
            ours = ("opentelemetry.sdk", "pytest_sniper_otel.")
            loaded = sorted(m for m in sys.modules if m.startswith(ours))
            assert loaded == [
                "pytest_sniper_otel.chaos",
                "pytest_sniper_otel.chaos.plugin",
                "pytest_sniper_otel.lab_plugin",
                "pytest_sniper_otel.plugin",
            ]
            assert not request.config.pluginmanager.has_plugin("sniper-otel-windows")

        def test_installs_on_first_use(telemetry):
            from pytest_sniper_otel.capture import installed_session
            assert installed_session().describe() == "{INSTALLED}"
            with tracer.start_as_current_span("late"):
                orders.add(2)
            assert [s.name for s in telemetry.spans] == ["late"]
            assert telemetry.metric("orders_total").value == 2
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["sniper-otel: SDK providers will be installed on first use of the telemetry fixture"]
    )


FOREIGN_PROVIDERS = '''
"""A conftest that sets up its own SDK providers before the plugin."""
from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTED = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(EXPORTED))
trace.set_tracer_provider(provider)
metrics.set_meter_provider(MeterProvider())
_logs.set_logger_provider(LoggerProvider())
'''

FOREIGN_TESTS = """
import logging

from opentelemetry import metrics, trace

from conftest import EXPORTED
from pytest_sniper_otel import span

tracer = trace.get_tracer("bot")
orders = metrics.get_meter("bot").create_counter("orders_total")


def test_spans_are_captured_and_still_exported(telemetry):
    with tracer.start_as_current_span("flow"):
        logging.getLogger("bot").warning("hello")
    telemetry.assert_span_tree(span("flow"), exact=True)
    assert [s.name for s in EXPORTED.get_finished_spans()] == ["flow"]
    telemetry.assert_logs_correlated()


def test_metric_says_what_to_do(telemetry):
    orders.add(1)
    telemetry.metric("orders_total")


def test_section_leaves_metrics_out(telemetry):
    orders.add(1)
    assert False
"""


def test_providers_installed_by_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FOREIGN_PROVIDERS)
    pytester.makepyfile(test_foreign=FOREIGN_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1, failed=2)
    meter_provider = "opentelemetry.sdk.metrics._internal.MeterProvider"
    result.stdout.fnmatch_lines(
        [
            literal(
                "sniper-otel: on first use of the telemetry fixture: traces: attach to "
                "opentelemetry.sdk.trace.TracerProvider; "
                f"metrics: UNAVAILABLE (foreign {meter_provider} without a metric reader); "
                "logs: attach to opentelemetry.sdk._logs._internal.LoggerProvider"
            )
        ]
    )
    assert_failures(
        result,
        {
            "test_metric_says_what_to_do": f"sniper-otel cannot capture metrics: a "
            f"{meter_provider} without any metric reader was installed before the plugin, and "
            "readers can't be added to a MeterProvider after it is built. Let the plugin "
            "install it, or pass pytest_sniper_otel.capture.metric_reader() in its "
            "metric_readers=[...] (logfire: logfire.configure(metrics=logfire.MetricsOptions("
            "additional_readers=[metric_reader()])))"
        },
        exc="pytest_sniper_otel.errors.CaptureUnavailable",
    )
    # The report section shows what could be captured and leaves metrics out.
    result.stdout.fnmatch_lines(
        [
            "*- Captured telemetry call -*",
            "spans (0):",
            "(no spans captured)",
            "",
            "logs (0):",
            "*_ test_section_leaves_metrics_out _*",
        ]
    )
    assert "metrics (" not in result.stdout.str()


READER_CONFTEST = '''
"""A conftest that builds its MeterProvider with the plugin's reader: the documented fix."""
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider

from pytest_sniper_otel import metric_reader

metrics.set_meter_provider(MeterProvider(metric_readers=[metric_reader()]))
'''


def test_meter_provider_built_with_metric_reader(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(READER_CONFTEST)
    pytester.makepyfile(
        test_reader="""
        from opentelemetry import metrics

        orders = metrics.get_meter("bot").create_counter("orders_total")

        def test_first(telemetry):
            orders.add(5)
            assert telemetry.metric("orders_total").value == 5

        def test_second_starts_from_zero(telemetry):
            orders.add(1)
            assert telemetry.metric("orders_total").value == 1
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "sniper-otel: on first use of the telemetry fixture: traces: install SDK "
            "TracerProvider; metrics: read opentelemetry.sdk.metrics._internal.MeterProvider "
            "via metric_reader(); logs: *"
        ]
    )


def test_non_sdk_tracer_provider(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from opentelemetry import trace

        trace.set_tracer_provider(trace.NoOpTracerProvider())
        """
    )
    pytester.makepyfile(
        test_noop="""
        def test_spans(telemetry):
            telemetry.spans
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "sniper-otel: on first use of the telemetry fixture: traces: UNAVAILABLE "
            "(opentelemetry.trace.NoOpTracerProvider); *",
            "E   *CaptureUnavailable: sniper-otel cannot capture traces: the global TracerProvider "
            "is opentelemetry.trace.NoOpTracerProvider, not an SDK TracerProvider; the plugin "
            "cannot attach a span processor to it",
        ]
    )


SESSION_FIXTURE_CONFTEST = """
import pytest
from opentelemetry import trace  # an initial conftest imports OTel: the header reads it
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

EXPORTED = InMemorySpanExporter()


@pytest.fixture(scope="session", autouse=True)
def otel_pipeline():
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTED))
    trace.set_tracer_provider(provider)
    yield
"""


@pytest.mark.parametrize("verbosity", ["-v", "-q"])
def test_provider_installed_by_a_session_fixture(pytester: pytest.Pytester, verbosity: str) -> None:
    # The header runs before any fixture. Had it installed providers, the session fixture's
    # set_tracer_provider would be ignored and its exporter get nothing, in runs that print
    # a header (not under -q). The plugin attaches on first use instead.
    pytester.makeconftest(SESSION_FIXTURE_CONFTEST)
    pytester.makepyfile(
        test_pipeline="""
        from opentelemetry import trace

        from conftest import EXPORTED
        from pytest_sniper_otel.capture import installed_session

        def test_captured_and_exported(telemetry):
            with trace.get_tracer("bot").start_as_current_span("s"):
                pass
            assert [s.name for s in telemetry.spans] == ["s"]
            assert [s.name for s in EXPORTED.get_finished_spans()] == ["s"]
            assert installed_session().setup["traces"] == (
                "attached to opentelemetry.sdk.trace.TracerProvider"
            )
        """
    )
    result = run_subprocess(pytester, verbosity)
    result.assert_outcomes(passed=1)
