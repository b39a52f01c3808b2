"""The plugin in a suite that already runs OpenTelemetry tools: logfire, pytest-opentelemetry,
an app's own logging bridge, OTEL_* environment variables, metric Views. Each case runs the
real third-party package in a fresh interpreter (the header reads the process's providers)."""

from __future__ import annotations

import os

import pytest

from .pytester_helpers import (
    ASYNCIO_LOOP_SCOPE,
    assert_failures,
    failure,
    literal,
    run_subprocess,
)

SDK_TRACER = "opentelemetry.sdk.trace.TracerProvider"
SDK_METER = "opentelemetry.sdk.metrics._internal.MeterProvider"
SDK_LOGGER = "opentelemetry.sdk._logs._internal.LoggerProvider"
LOGFIRE = {
    "traces": f"logfire._internal.tracer.ProxyTracerProvider wrapping {SDK_TRACER}",
    "metrics": f"logfire._internal.metrics.ProxyMeterProvider wrapping {SDK_METER}",
    "logs": f"logfire._internal.logs.ProxyLoggerProvider wrapping {SDK_LOGGER}",
}

LOGFIRE_TESTS = """
import logging

import logfire
from opentelemetry import metrics, trace

from pytest_sniper_otel import span


def test_spans_logs_and_metrics(telemetry):
    with logfire.span("snipe {symbol}", symbol="BTCUSDT"):
        logfire.info("order placed")
        logging.getLogger("bot").warning("filled")
        trace.get_tracer("bot").start_span("plain-otel").end()
    logfire.metric_counter("orders_total").add(2)
    latency = metrics.get_meter("bot").create_histogram("latency_ms")
    for ms in (10, 20, 30, 40, 1000):
        latency.record(ms)
    telemetry.assert_span_tree(
        span("snipe {symbol}", attributes={"symbol": "BTCUSDT"},
             children=["order placed", "plain-otel"]),
        exact=True,
    )
    assert [r.body for r in telemetry.logs] == ["filled"]
    telemetry.assert_logs_correlated()
    assert telemetry.metric("orders_total").value == 2
    # logfire's default Views make every histogram exponential
    h = telemetry.metric("latency_ms")
    assert (h.count, h.sum, h.min, h.max) == (5, 1100, 10, 1000)
    assert 20 < h.quantile(0.5) <= 30  # rank 2.5 of 5: halfway into the bucket of 30
    assert h.quantile(1.0) == 1000


def test_the_next_test_starts_empty(telemetry):
    assert telemetry.spans == [] and telemetry.logs == []
    assert telemetry.metric_names() == []
"""


def test_logfire_with_the_plugins_reader(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import logfire

        from pytest_sniper_otel import metric_reader

        logfire.configure(
            send_to_logfire=False,
            console=False,
            metrics=logfire.MetricsOptions(additional_readers=[metric_reader()]),
        )
        """
    )
    pytester.makepyfile(test_logfire=LOGFIRE_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            literal(
                "sniper-otel: on first use of the telemetry fixture: "
                f"traces: attach to {LOGFIRE['traces']}; "
                f"metrics: read {LOGFIRE['metrics']} via metric_reader(); "
                f"logs: attach to {LOGFIRE['logs']}"
            )
        ]
    )


def test_logfire_without_the_plugins_reader(pytester: pytest.Pytester) -> None:
    # Its MeterProvider has no reader at all: the plugin gives logfire's wrapper one like it
    # (same views, so histograms stay exponential) that has the plugin's reader.
    pytester.makeconftest(
        """
        import logfire

        logfire.configure(send_to_logfire=False, console=False)
        """
    )
    pytester.makepyfile(test_logfire=LOGFIRE_TESTS)
    result = run_subprocess(pytester, "-rA")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            literal(
                "sniper-otel: on first use of the telemetry fixture: "
                f"traces: attach to {LOGFIRE['traces']}; "
                f"metrics: give {LOGFIRE['metrics']} (no reader) one with metric_reader(); "
                f"logs: attach to {LOGFIRE['logs']}"
            )
        ]
    )


PYTEST_OTEL_TESTS = """
import logging

import pytest
from opentelemetry import metrics, trace

from pytest_sniper_otel import span

tracer = trace.get_tracer("bot")


@pytest.fixture
def client():
    with tracer.start_as_current_span("connect"):
        pass
    yield


def test_user_spans_are_the_roots(client, telemetry):
    with tracer.start_as_current_span("trade"):
        with tracer.start_as_current_span("place-order"):
            logging.getLogger("bot").warning("placed")
    telemetry.assert_span_tree([span("connect"), span("trade", children=["place-order"])],
                               exact=True)
    assert [r.name for r in telemetry.roots] == ["connect", "trade"]
    assert telemetry.open_spans == []
    assert [s.name for s in telemetry.spans] == ["connect", "place-order", "trade"]
    telemetry.assert_logs_correlated()
    # the spans are still children of pytest-opentelemetry's own test spans
    harness = trace.get_current_span()
    assert harness.name.endswith("::call")
    assert telemetry.roots[1].span.parent.span_id == harness.get_span_context().span_id


def test_log_outside_the_codes_spans(telemetry):
    logging.getLogger("bot").warning("outside")
    telemetry.assert_logs_correlated()
"""


def test_pytest_opentelemetry_spans_are_not_the_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", ASYNCIO_LOOP_SCOPE)  # with pytest-opentelemetry's plugin
    pytester.makepyfile(test_traced_run=PYTEST_OTEL_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1, failed=1)
    failure(result, "test_log_outside_the_codes_spans").fnmatch_lines(
        [
            "E       AssertionError: 1 of 1 log records are not correlated with a captured span:",
            "E         WARN  bot: outside [[]trace=* span=*[]]  <- only inside "
            "pytest-opentelemetry's span of the test itself, in no span of the code under test",
        ],
        consecutive=True,
    )
    result.stdout.fnmatch_lines(
        [
            literal(
                "sniper-otel: on first use of the telemetry fixture: "
                f"traces: attach to {SDK_TRACER}; "
                f"metrics: UNAVAILABLE (foreign {SDK_METER} without a metric reader); "
                f"logs: attach to {SDK_LOGGER}"
            )
        ]
    )


def test_pytest_opentelemetry_is_named_when_its_provider_has_no_reader(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", ASYNCIO_LOOP_SCOPE)  # with pytest-opentelemetry's plugin
    pytester.makepyfile(test_metrics="""
from opentelemetry import metrics


def test_metrics(telemetry):
    metrics.get_meter("bot").create_counter("orders_total").add(3)
    assert telemetry.metric("orders_total").value == 3
""")
    result = run_subprocess(pytester)
    result.assert_outcomes(failed=1)
    assert_failures(
        result,
        {
            "test_metrics": f"sniper-otel cannot capture metrics: a {SDK_METER} without any "
            "metric reader was installed before the plugin, and readers can't be added to a "
            "MeterProvider after it is built. Let the plugin install it, or pass "
            "pytest_sniper_otel.capture.metric_reader() in its metric_readers=[...] "
            "(logfire: logfire.configure(metrics=logfire.MetricsOptions("
            "additional_readers=[metric_reader()]))). pytest-opentelemetry is loaded and "
            "installs one when pytest configures; a MeterProvider set in conftest.py comes "
            "first"
        },
        exc="pytest_sniper_otel.errors.CaptureUnavailable",
    )


def test_pytest_opentelemetry_with_metrics_through_the_plugins_reader(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_ADDOPTS", ASYNCIO_LOOP_SCOPE)
    # conftest.py runs before pytest-opentelemetry configures its providers: the
    # MeterProvider set here wins, the tracer and logger providers stay pytest-opentelemetry's.
    pytester.makeconftest(
        """
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider

        from pytest_sniper_otel import metric_reader

        metrics.set_meter_provider(MeterProvider(metric_readers=[metric_reader()]))
        """
    )
    pytester.makepyfile(
        test_traced_run=PYTEST_OTEL_TESTS
        + """

def test_metrics(telemetry):
    metrics.get_meter("bot").create_counter("orders_total").add(3)
    assert telemetry.metric("orders_total").value == 3
"""
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            literal(
                "sniper-otel: on first use of the telemetry fixture: "
                f"traces: attach to {SDK_TRACER}; "
                f"metrics: read {SDK_METER} via metric_reader(); "
                f"logs: attach to {SDK_LOGGER}"
            )
        ]
    )


def test_an_app_that_bridged_logging_itself(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import logging

        from opentelemetry import _logs
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from opentelemetry.sdk._logs import LoggerProvider

        provider = LoggerProvider()
        _logs.set_logger_provider(provider)
        logging.getLogger().addHandler(LoggingHandler(logger_provider=provider))
        logging.getLogger("bot").addHandler(LoggingHandler(logger_provider=provider))
        logging.getLogger("bot").propagate = False
        """
    )
    pytester.makepyfile(
        test_bridged="""
        import logging

        def test_each_record_once(telemetry):
            logging.getLogger("app").warning("from app")
            logging.getLogger("bot").warning("from bot")
            assert [r.body for r in telemetry.logs] == ["from app", "from bot"]
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1)


ENV_TESTS = """
from opentelemetry import trace

from pytest_sniper_otel import span


def test_every_span_is_captured(telemetry):
    for n in range(20):
        trace.get_tracer("bot").start_span(f"s{n}").end()
    assert len(telemetry.spans) == 20
"""


@pytest.mark.parametrize(
    ("env", "note"),
    [
        ({"OTEL_SDK_DISABLED": "true"}, "ignoring OTEL_SDK_DISABLED=true"),
        ({"OTEL_TRACES_SAMPLER": "always_off"},
         "sampling every span, not OTEL_TRACES_SAMPLER=always_off"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
         "sampling every span, not OTEL_TRACES_SAMPLER=traceidratio"),
        ({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "2"},
         "limits OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=2 apply"),
    ],
    ids=["disabled", "always_off", "traceidratio", "limits"],
)
def test_providers_the_plugin_installs_ignore_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], note: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makeconftest("import opentelemetry.trace")  # the header reads the providers
    pytester.makepyfile(test_env=ENV_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1)
    disabled = "OTEL_SDK_DISABLED" in env
    metrics = "DELTA reader, ignoring OTEL_SDK_DISABLED=true" if disabled else "DELTA reader"
    logs_note = " (ignoring OTEL_SDK_DISABLED=true)" if disabled else ""
    result.stdout.fnmatch_lines(
        [
            literal(
                "sniper-otel: on first use of the telemetry fixture: "
                f"traces: install SDK TracerProvider ({note}); "
                f"metrics: install SDK MeterProvider ({metrics}); "
                f"logs: install SDK LoggerProvider + logging bridge{logs_note}"
            )
        ]
    )


def test_the_header_names_the_environment_before_opentelemetry_is_imported(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "2")
    pytester.makepyfile(test_env=ENV_TESTS)  # no conftest: nothing imports OpenTelemetry first
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([literal(
        "sniper-otel: SDK providers will be installed on first use of the telemetry fixture "
        "(traces: ignoring OTEL_SDK_DISABLED=true, sampling every span, not "
        "OTEL_TRACES_SAMPLER=always_off, limits OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT=2 apply; "
        "metrics: ignoring OTEL_SDK_DISABLED=true; logs: ignoring OTEL_SDK_DISABLED=true)"
    )])


def test_the_lazy_header_is_plain_without_such_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    pytester.makepyfile(test_env=ENV_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([literal(
        "sniper-otel: SDK providers will be installed on first use of the telemetry fixture"
    )])
    result.stdout.no_fnmatch_line("*installed on first use of the telemetry fixture (*")


@pytest.mark.parametrize(
    ("conftest", "why"),
    [
        (
            "provider = TracerProvider(sampler=TraceIdRatioBased(0.0))",
            "drops spans (sampler TraceIdRatioBased{0.0})",
        ),
        (
            "import os\n"
            "os.environ['OTEL_SDK_DISABLED'] = 'true'\n"
            "provider = TracerProvider()\n"
            "del os.environ['OTEL_SDK_DISABLED']",
            "records no spans (OTEL_SDK_DISABLED=true)",
        ),
    ],
    ids=["sampler", "disabled"],
)
def test_a_users_provider_that_drops_spans_is_named(
    pytester: pytest.Pytester, conftest: str, why: str
) -> None:
    pytester.makeconftest(
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.sampling import TraceIdRatioBased\n"
        f"{conftest}\n"
        "trace.set_tracer_provider(provider)\n"
    )
    pytester.makepyfile(
        test_dropped="""
        from opentelemetry import trace

        from pytest_sniper_otel import span

        def test_flow(telemetry):
            with trace.get_tracer("bot").start_as_current_span("flow"):
                pass
            telemetry.assert_span_tree(span("flow"))
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(failed=1)
    dropping = f"the global {SDK_TRACER}, which {why}"
    result.stdout.fnmatch_lines(
        [
            literal(
                "sniper-otel: on first use of the telemetry fixture: "
                f"traces: attach to {SDK_TRACER}, which {why}; "
            )
            + "*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E   *",
            "E       not captured: " + literal(f"{dropping}, so spans it did not record"),
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_dropped.py::test_flow",
            "  *: SniperOtelWarning: "
            + literal(f"sniper-otel: {dropping}: spans it does not record are not captured"),
        ]
    )


VIEW_TESTS = """
import pytest
from opentelemetry import metrics

from pytest_sniper_otel import MetricNotFound

meter = metrics.get_meter("bot")
latency = meter.create_histogram("execution_latency_ms")
orders = meter.create_counter("orders")
debug = meter.create_counter("debug_total")


def test_views_are_read(telemetry):
    for ms in (5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560):
        latency.record(ms, {"symbol": "BTCUSDT"})
    orders.add(2, {"symbol": "BTCUSDT", "client_order_id": "c-1"})
    orders.add(1, {"symbol": "BTCUSDT", "client_order_id": "c-2"})
    debug.add(1)
    h = telemetry.metric("execution_latency_ms", {"symbol": "BTCUSDT"})
    assert (h.count, h.sum, h.min, h.max) == (10, 5115, 5, 2560)
    # the 5th of 10 values, 80, within the relative width of one exponential bucket
    assert h.quantile(0.5) == pytest.approx(80, rel=0.05)
    assert h.quantile(0.0) == 5 and h.quantile(1.0) == 2560
    assert sum(h.bucket_counts) == 10 and len(h.boundaries) == len(h.bucket_counts) - 1
    # renamed, and attribute_keys kept only the symbol: one series
    assert telemetry.metric("orders_total").series == [{"symbol": "BTCUSDT"}]
    assert telemetry.metric("orders_total").value == 3
    try:
        telemetry.metric("debug_total")
    except MetricNotFound:
        pass  # DropAggregation: never recorded
    else:
        raise AssertionError("a dropped instrument was read")
"""

VIEWS = """[
    View(instrument_name="execution_latency_ms",
         aggregation=ExponentialBucketHistogramAggregation()),
    View(instrument_name="orders", name="orders_total", attribute_keys={"symbol"}),
    View(instrument_name="debug_total", aggregation=DropAggregation()),
]"""
VIEW_IMPORTS = (
    "from opentelemetry.sdk.metrics.view import (\n"
    "    DropAggregation, ExponentialBucketHistogramAggregation, View)\n"
)


def test_views_of_a_users_meter_provider(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        "from opentelemetry import metrics\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        + VIEW_IMPORTS
        + "from pytest_sniper_otel import metric_reader\n"
        "metrics.set_meter_provider(\n"
        f"    MeterProvider(metric_readers=[metric_reader()], views={VIEWS}))\n"
    )
    pytester.makepyfile(test_views=VIEW_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1)


def test_views_for_the_meter_provider_the_plugin_installs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        VIEW_IMPORTS
        + f"""
def pytest_sniper_otel_metric_views(config):
    return {VIEWS}
"""
    )
    pytester.makepyfile(test_views=VIEW_TESTS)
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["sniper-otel: on first use of the telemetry fixture: traces: install SDK "
         "TracerProvider; metrics: install SDK MeterProvider (DELTA reader, 3 views); logs: *"]
    )


def test_logfire_configured_again_mid_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import logfire

        logfire.configure(send_to_logfire=False, console=False)
        """
    )
    pytester.makepyfile(
        test_reconfigured="""
        import logfire

        from pytest_sniper_otel import span

        def test_1(telemetry):
            with logfire.span("before"):
                pass
            telemetry.assert_span_tree(span("before"), exact=True)

        def test_2_reconfigures():
            logfire.configure(send_to_logfire=False, console=False, service_name="again")

        def test_3(telemetry):
            with logfire.span("after"):
                pass
            telemetry.assert_span_tree(span("after"), exact=True)

        def test_4_metrics_name_the_problem(telemetry):
            telemetry.metric("orders_total")
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=3, failed=1)
    assert_failures(
        result,
        {
            "test_4_metrics_name_the_problem": "sniper-otel cannot capture metrics: the SDK "
            "MeterProvider inside logfire._internal.metrics.ProxyMeterProvider was replaced "
            "after the plugin read it (logfire.configure() called again?); configure it once, "
            "with logfire.MetricsOptions(additional_readers=[metric_reader()])"
        },
        exc="pytest_sniper_otel.errors.CaptureUnavailable",
    )
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_reconfigured.py::test_3",
            "  *: SniperOtelWarning: "
            + literal(
                "sniper-otel: the SDK TracerProvider inside "
                "logfire._internal.tracer.ProxyTracerProvider was replaced; "
                f"sniper-otel attached to {LOGFIRE['traces']}"
            ),
        ]
    )


def test_views_that_arrive_too_late_are_named(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        VIEW_IMPORTS
        + f"""
from pytest_sniper_otel import install_session

install_session()  # before any test: the MeterProvider is built without the views


def pytest_sniper_otel_metric_views(config):
    return {VIEWS}
"""
    )
    pytester.makepyfile(
        test_late="""
        def test_one(telemetry):
            pass
        """
    )
    result = run_subprocess(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_late.py::test_one",
            "  *: SniperOtelWarning: "
            + literal(
                "sniper-otel: 3 metric view(s) arrived after the providers were set up "
                "(installed SDK MeterProvider (DELTA reader)) and do not apply; "
                "install_session() was called before the first test that uses telemetry"
            ),
        ]
    )
