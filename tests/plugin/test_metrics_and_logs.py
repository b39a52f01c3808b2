"""Metric views and log capture through the `telemetry` fixture: pass and fail paths.

In-process runs (see conftest.py): per-test isolation is a property of one session, so the
generated tests run in sequence in one inner session and check that nothing leaks.
"""

from __future__ import annotations

import pytest

from .pytester_helpers import assert_failures, failure, run_inprocess, run_subprocess

METRICS_PASSING = """
import math
import time

import pytest

from app import balance, latency, orders, positions, tracer
from pytest_sniper_otel import ANY, span


def test_counter_accumulates_within_a_test(telemetry):
    orders.add(2, {"side": "buy"})
    assert telemetry.metric("orders_total").value == 2
    orders.add(1, {"side": "sell"})
    orders.add(3, {"side": "buy"})
    assert telemetry.metric("orders_total").value == 6          # both reads see the total
    assert telemetry.metric("orders_total", {"side": "buy"}).value == 5
    assert telemetry.metric("orders_total", {"side": ANY}).series == [
        {"side": "buy"}, {"side": "sell"}
    ]
    assert telemetry.metric("orders_total", {"side": "none"}, allow_empty=True).value == 0


def test_nothing_leaks_from_the_previous_test(telemetry):
    # The previous test recorded orders_total and the gauge below; none of it is here.
    assert telemetry.metric_names() == []
    orders.add(1, {"side": "buy"})
    assert telemetry.metric("orders_total").value == 1
    assert telemetry.metric_names() == ["orders_total"]


def test_gauge_set_in_this_test(telemetry):
    balance.set(100.0, {"acct": "main"})
    balance.set(90.5, {"acct": "main"})
    positions.add(3)
    positions.add(-1)
    assert telemetry.metric("balance_usdt").value == 90.5
    assert telemetry.metric("open_positions").value == 2
    assert telemetry.metric("open_positions").kind == "updowncounter"


def test_gauge_does_not_leak(telemetry):
    assert "balance_usdt" not in telemetry.metric_names()


def test_histogram(telemetry):
    for v in (5, 50, 50, 500, 7000):
        latency.record(v, {"venue": "mexc"})
    h = telemetry.metric("latency_ms", {"venue": "mexc"})
    assert (h.count, h.sum, h.min, h.max) == (5, 7605, 5, 7000)
    assert h.boundaries == (10, 100, 1000, 5000)
    assert h.bucket_counts == (1, 2, 1, 0, 1)
    assert h.quantile(0.5) == pytest.approx(77.5)     # rank 2.5 of 5, in (10, 100]
    assert h.quantile(0.99) == 5000                   # the +Inf bucket: largest boundary
    binance = telemetry.metric("latency_ms", {"venue": "binance"}, allow_empty=True)
    assert binance.count == 0 and math.isnan(binance.quantile(0.5))


def test_clock_tick_is_a_2000_ms_span_and_sample(telemetry, clock):
    with tracer.start_as_current_span("place-order"):
        started = time.monotonic()
        clock.tick(2)
        latency.record((time.monotonic() - started) * 1000)
    telemetry.assert_span_tree(span("place-order", duration_ms=2000))
    assert telemetry.metric("latency_ms").sum == 2000
    assert telemetry.metric("latency_ms").bucket_counts == (0, 0, 0, 1, 0)


def test_snapshot_clear_and_cardinality(telemetry, clock):
    orders.add(1, {"side": "buy"})
    orders.add(1, {"side": "sell"})
    snap = telemetry.metrics_snapshot()
    assert snap.time_unix_nano == clock.time_ns()
    assert [(p.name, dict(p.attributes), p.value) for p in snap] == [
        ("orders_total", {"side": "buy"}, 1.0),
        ("orders_total", {"side": "sell"}, 1.0),
    ]
    telemetry.assert_cardinality("orders_total", max_series=2)
    with tracer.start_as_current_span("gone"):
        pass
    telemetry.clear()
    assert telemetry.metric_names() == [] and telemetry.spans == [] and telemetry.logs == []
    orders.add(5)
    assert telemetry.metric("orders_total").value == 5
"""

METRICS_FAILING = """
from app import balance, latency, orders


def test_name_never_recorded(telemetry):
    orders.add(1, {"side": "buy"})
    latency.record(3)
    telemetry.metric("order_total")


def test_nothing_recorded(telemetry):
    telemetry.metric("orders_total")


def test_value_of_a_histogram(telemetry):
    latency.record(5)
    telemetry.metric("latency_ms").value


def test_count_of_a_counter(telemetry):
    orders.add(1)
    telemetry.metric("orders_total").count


def test_value_of_two_gauge_series(telemetry):
    balance.set(10, {"acct": "a"})
    balance.set(20, {"acct": "b"})
    telemetry.metric("balance_usdt").value


def test_cardinality(telemetry):
    for i in range(5):
        orders.add(1, {"order.id": f"o-{i}", "side": "buy"})
    telemetry.assert_cardinality("orders_total", max_series=3)


def test_quantile_out_of_range(telemetry):
    latency.record(5)
    telemetry.metric("latency_ms").quantile(1.5)


def test_attribute_key_typo(telemetry):
    orders.add(1, {"side": "buy"})
    telemetry.metric("orders_total", {"sied": "buy"})


def test_attribute_value_typo(telemetry):
    orders.add(1, {"side": "buy"})
    orders.add(1, {"side": "sell"})
    telemetry.metric("orders_total", {"side": "bye"})


def test_metric_name_not_a_str(telemetry):
    telemetry.metric(123)


def test_metric_attributes_not_a_mapping(telemetry):
    telemetry.metric("orders_total", ["side"])


def test_quantile_as_a_string(telemetry):
    latency.record(5)
    telemetry.metric("latency_ms").quantile("0.5")


def test_max_series_as_a_string(telemetry):
    orders.add(1)
    telemetry.assert_cardinality("orders_total", max_series="3")
"""


def test_metric_views(app: pytest.Pytester) -> None:
    app.makepyfile(test_metrics=METRICS_PASSING)
    result = run_inprocess(app)
    result.assert_outcomes(passed=7)


METRICS_BETWEEN_WINDOWS = """
from opentelemetry import metrics
from opentelemetry.metrics import Observation

from app import orders

jobs = {"done": 0}


def test_records_after_its_last_read(telemetry):
    orders.add(1)
    assert telemetry.metric("orders_total").value == 1
    orders.add(10)  # after the test's last collection


def test_records_without_telemetry():
    orders.add(100)


def test_sees_none_of_it(telemetry):
    assert telemetry.metric_names() == []


def test_creates_an_observable_between_windows():
    metrics.get_meter("app").create_observable_counter(
        "jobs_total", callbacks=[lambda options: [Observation(jobs["done"])]]
    )
    jobs["done"] = 7


def test_sees_only_its_own_jobs(telemetry):
    # Nothing was recorded since the last collection, but the observable's callback runs
    # at collection time: the window still collects (and drops) the 7 done before it.
    jobs["done"] = 10
    assert telemetry.metric("jobs_total").value == 3
"""


def test_what_was_recorded_between_windows_stays_out(app: pytest.Pytester) -> None:
    # A window skips collecting when nothing can have been recorded since the last
    # collection: anything recorded after a test's last read, by a test without telemetry,
    # or by an observable instrument must still be dropped. A fresh process: the observable
    # instrument stays on the session's MeterProvider.
    app.makepyfile(test_between=METRICS_BETWEEN_WINDOWS)
    result = run_subprocess(app)
    result.assert_outcomes(passed=5)


def test_metric_errors(app: pytest.Pytester) -> None:
    app.makepyfile(test_metrics=METRICS_FAILING)
    result = run_inprocess(app, "--sniper-otel-show=never")
    result.assert_outcomes(failed=13)
    errors = "pytest_sniper_otel.errors"
    assert_failures(
        result,
        {
            "test_name_never_recorded": """
                metric 'order_total' was not recorded in this test; did you mean 'orders_total'?
                captured metrics: latency_ms, orders_total
            """,
            "test_nothing_recorded": (
                "metric 'orders_total' was not recorded in this test: "
                "no metrics were recorded at all"
            ),
        },
        exc=f"{errors}.MetricNotFound",
    )
    assert_failures(
        result,
        {
            "test_value_of_a_histogram": "latency_ms is a histogram and has no .value; "
            "use .count, .sum, .min, .max, .bucket_counts or .quantile(q)",
            "test_count_of_a_counter": "orders_total is a counter and has no .count; use .value",
            "test_value_of_two_gauge_series": "gauge balance_usdt has 2 series matching {} and "
            "gauges do not add up; narrow the attributes. Series: {acct='a'}; {acct='b'}",
        },
        exc=f"{errors}.MetricKindError",
    )
    assert_failures(
        result,
        {
            "test_cardinality": """
                metric 'orders_total' has 5 series, more than max_series=3
                distinct values per attribute: order.id: 5 values, side: 1 value
                first series: {order.id='o-0', side='buy'}; {order.id='o-1', side='buy'}; {order.id='o-2', side='buy'}; {order.id='o-3', side='buy'}; {order.id='o-4', side='buy'}
            """  # noqa: E501
        },
    )
    assert_failures(
        result,
        {
            "test_quantile_out_of_range": "quantile(q): q must be within [0, 1], got 1.5",
            "test_attribute_key_typo": "metric 'orders_total' has no series with attribute "
            "'sied' (did you mean 'side'?); its attribute keys are: side",
            "test_attribute_value_typo": "metric 'orders_total' has no series with side='bye' "
            "(did you mean 'buy'?); values of 'side' seen: 'buy', 'sell'. Pass "
            "allow_empty=True to read it as empty (a count of 0)",
            "test_metric_name_not_a_str": "metric(name): name must be a str, got int 123",
            "test_metric_attributes_not_a_mapping": "metric('orders_total', attributes): "
            "attributes must be a mapping, got list ['side']",
            "test_quantile_as_a_string": "quantile(q): q must be a number within [0, 1], got "
            "str '0.5'",
            "test_max_series_as_a_string": "assert_cardinality('orders_total', max_series): "
            "max_series must be an int >= 0, got str '3'",
        },
        exc=f"{errors}.SpecError",
    )


LOGS = """
import logging
import re
import threading

from app import log, orders, tracer


def test_info_is_bridged_and_correlated(telemetry):
    log.debug("too quiet")
    with tracer.start_as_current_span("risk") as s:
        log.info("risk accepted", extra={"order.id": "o-1"})
    ctx = s.get_span_context()
    [record] = telemetry.logs
    assert (record.body, record.severity_text) == ("risk accepted", "INFO")
    assert record.severity_number == 9
    assert (record.trace_id, record.span_id) == (ctx.trace_id, ctx.span_id)
    assert record.logger_name == "app" and record.attributes["order.id"] == "o-1"
    telemetry.assert_logs_correlated()


def test_records_from_a_thread(telemetry):
    def worker():
        with tracer.start_as_current_span("in-thread"):
            log.warning("from a thread")

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert [(r.body, r.severity_text) for r in telemetry.logs] == [("from a thread", "WARN")]
    telemetry.assert_logs_correlated()


def test_sdk_noise_is_not_captured(telemetry):
    logging.getLogger("opentelemetry.sdk.trace").warning("SDK noise")
    assert telemetry.logs == []
    telemetry.assert_logs_correlated(allow_empty=True)


def test_min_severity(telemetry):
    log.info("uncorrelated but below the bar")
    with tracer.start_as_current_span("s"):
        log.error("correlated")
    telemetry.assert_logs_correlated(min_severity="WARNING")


def test_uncorrelated(telemetry):
    log.warning("outside any span")
    with tracer.start_as_current_span("s"):
        log.info("inside")
    telemetry.assert_logs_correlated()


def test_span_not_captured_here(telemetry):
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    foreign = SpanContext(trace_id=0xAB, span_id=0xCD, is_remote=True, trace_flags=TraceFlags(1))
    with trace.use_span(NonRecordingSpan(foreign)):
        log.error("correlated with a span this test never captured")
    telemetry.assert_logs_correlated()


def test_no_records(telemetry):
    telemetry.assert_logs_correlated()


def test_unknown_severity(telemetry):
    telemetry.assert_logs_correlated(min_severity="LOUD")


def test_no_secrets_passes(telemetry):
    with tracer.start_as_current_span("sign", attributes={"api.key.id": "k-1"}):
        log.info("signed")
    orders.add(1, {"side": "buy"})
    telemetry.assert_no_secrets("sk-12345678", re.compile(r"[0-9a-f]{16}"))


def test_secrets_leak(telemetry):
    with tracer.start_as_current_span("sign", attributes={"api.key": "sk-12345678"}) as s:
        s.add_event("signed", {"signature": "abcdef0123456789"})
        log.info("signing with sk-12345678")
    orders.add(1, {"sig": "abcdef0123456789"})
    telemetry.assert_no_secrets("sk-12345678", re.compile(r"[0-9a-f]{16}"))


def test_secrets_needs_a_value(telemetry):
    telemetry.assert_no_secrets()


def test_secrets_empty_string(telemetry):
    telemetry.assert_no_secrets("")
"""


def test_logs_correlation_and_secrets(app: pytest.Pytester) -> None:
    app.makepyfile(test_logs=LOGS)
    result = run_inprocess(app, "--sniper-otel-show=never")
    result.assert_outcomes(passed=5, failed=7)
    assert_failures(
        result,
        {
            "test_uncorrelated": """
                1 of 2 log records are not correlated with a captured span:
                  WARN  app: outside any span [uncorrelated]  <- no active span
            """,
            "test_span_not_captured_here": """
                1 of 1 log records are not correlated with a captured span:
                  ERROR app: correlated with a span this test never captured [trace=000000000000000000000000000000ab span=00000000000000cd]  <- span not captured in this test
            """,  # noqa: E501
            "test_no_records": "no log records at TRACE or above were captured, so correlation "
            "cannot be checked (pass allow_empty=True if that is expected)",
            "test_secrets_leak": """
                4 secret leak(s) in telemetry:
                  secret #1 in span 'sign' attribute 'api.key'
                  pattern #2 '[0-9a-f]{16}' in span 'sign' event 'signed' attribute 'signature'
                  secret #1 in log 'app' body
                  pattern #2 '[0-9a-f]{16}' in metric 'orders_total' attribute 'sig'
            """,
        },
    )
    errors = "pytest_sniper_otel.errors.SpecError"
    assert_failures(
        result,
        {
            "test_unknown_severity": "unknown severity 'LOUD'; use one of TRACE, DEBUG, INFO, "
            "WARN, WARNING, ERROR, FATAL, CRITICAL",
            "test_secrets_needs_a_value": "assert_no_secrets() needs at least one value or "
            "pattern to look for",
            "test_secrets_empty_string": "assert_no_secrets(): secret #1 must be a non-empty str "
            "or a compiled str regex, got str",
        },
        exc=errors,
    )


LOGGER_FILTERS = """
import logging

from app import log, tracer

httpx_log = logging.getLogger("httpx")
client_log = logging.getLogger("httpx.client")


def noisy_library():
    # httpx logs each request at INFO outside any span of ours.
    httpx_log.info("HTTP Request: GET https://api.example/ticker 200")
    client_log.info("connection pool: 1 idle")


def test_only_the_app_loggers(telemetry):
    noisy_library()
    with tracer.start_as_current_span("fetch"):
        log.info("ticker fetched")
    telemetry.assert_logs_correlated(loggers=["app"])


def test_ignore_a_library_and_its_children(telemetry):
    noisy_library()
    with tracer.start_as_current_span("fetch"):
        log.info("ticker fetched")
    telemetry.assert_logs_correlated(ignore_loggers=["httpx"])


def test_the_library_is_uncorrelated(telemetry):
    noisy_library()
    telemetry.assert_logs_correlated(loggers=["httpx"])


def test_a_logger_that_logged_nothing(telemetry):
    noisy_library()
    telemetry.assert_logs_correlated(loggers=["ap"])


def test_log_inside_a_span_still_open(telemetry):
    span = tracer.start_span("stream")
    from opentelemetry import trace

    with trace.use_span(span, end_on_exit=False):
        log.warning("tick")
    telemetry.assert_logs_correlated()


def test_loggers_as_a_string(telemetry):
    telemetry.assert_logs_correlated(loggers="httpx")


def test_ignore_loggers_with_a_non_str(telemetry):
    telemetry.assert_logs_correlated(ignore_loggers=[None])


def test_severity_not_a_str(telemetry):
    telemetry.assert_logs_correlated(min_severity=30)
"""


def test_logs_correlated_by_logger_and_open_spans(app: pytest.Pytester) -> None:
    app.makepyfile(test_loggers=LOGGER_FILTERS)
    result = run_inprocess(app, "--sniper-otel-show=never")
    result.assert_outcomes(passed=2, failed=6)
    assert_failures(
        result,
        {
            "test_the_library_is_uncorrelated": """
                2 of 2 log records are not correlated with a captured span:
                  INFO  httpx: HTTP Request: GET https://api.example/ticker 200 [uncorrelated]  <- no active span
                  INFO  httpx.client: connection pool: 1 idle [uncorrelated]  <- no active span
            """,  # noqa: E501
            "test_a_logger_that_logged_nothing": "no log records at TRACE or above were captured "
            "from the chosen loggers (captured loggers: httpx, httpx.client), so correlation "
            "cannot be checked (pass allow_empty=True if that is expected)",
        },
    )
    failure(result, "test_log_inside_a_span_still_open").fnmatch_lines(
        [
            "E       AssertionError: 1 of 1 log records are not correlated with a captured span:",
            "E         WARN  app: tick [[]trace=* span=*[]]  <- inside span 'stream', which is "
            "still open (a span is captured when it ends)",
        ],
        consecutive=True,
    )
    assert_failures(
        result,
        {
            "test_loggers_as_a_string": "assert_logs_correlated(loggers): loggers must be a list "
            "of logger names, e.g. loggers=['httpx'], got str 'httpx'",
            "test_ignore_loggers_with_a_non_str": "assert_logs_correlated(ignore_loggers): each "
            "logger name must be a non-empty str, got NoneType None",
            "test_severity_not_a_str": "min_severity must be a severity name, got int 30",
        },
        exc="pytest_sniper_otel.errors.SpecError",
    )


LEVELS = """
import logging

from app import log


def test_levels(telemetry):
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    print("bridged:", ",".join(r.body for r in telemetry.logs))
"""


@pytest.mark.parametrize(
    ("args", "ini", "bridged"),
    [
        ((), "", "i,w,e"),
        (("--sniper-otel-log-level=warning",), "", "w,e"),
        ((), "sniper_otel_log_level = DEBUG", "d,i,w,e"),
        (("--sniper-otel-log-level=ERROR",), "sniper_otel_log_level = DEBUG", "e"),
        # The root logger is lower than the option here: the option still decides.
        (("--sniper-otel-log-level=ERROR", "--log-level=DEBUG"), "", "e"),
    ],
    ids=["default-INFO", "option", "ini", "option-beats-ini", "root-lower-than-option"],
)
def test_log_level(app: pytest.Pytester, args: tuple[str, ...], ini: str, bridged: str) -> None:
    if ini:
        app.makeini(f"[pytest]\n{ini}\n")
    app.makepyfile(test_levels=LEVELS)
    result = run_inprocess(app, "-s", *args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*bridged: {bridged}"])


def test_bad_log_level_is_a_usage_error(app: pytest.Pytester) -> None:
    result = run_inprocess(app, "--sniper-otel-log-level=LOUD")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: sniper-otel log level 'LOUD' is not a logging level name"])


def test_root_logger_level_is_only_ever_lowered(app: pytest.Pytester) -> None:
    # A root logger at NOTSET lets everything through; the capture must not raise it to
    # INFO and hide DEBUG records from the user's own handlers (caplog here).
    app.makeconftest("import logging\nlogging.getLogger().setLevel(logging.NOTSET)\n")
    app.makepyfile(
        test_root="""
        import logging

        from app import log

        def test_debug_still_reaches_caplog(telemetry, caplog):
            log.debug("d")
            log.info("i")
            assert [r.getMessage() for r in caplog.records] == ["d", "i"]
            assert [r.body for r in telemetry.logs] == ["i"]

        def test_level_restored():
            assert logging.getLogger().level == logging.NOTSET
        """
    )
    result = run_inprocess(app)
    result.assert_outcomes(passed=2)


def test_root_logger_is_lowered_for_telemetry_tests_only(app: pytest.Pytester) -> None:
    # Consecutive telemetry tests share one lowering; every other test, and whatever runs
    # after the session, sees the level the user set. A test that sets the level itself
    # has it put back at its end.
    app.makeconftest(
        """
        import logging

        logging.getLogger().setLevel(logging.WARNING)

        def pytest_sessionfinish(session):
            print("at session end:", logging.getLevelName(logging.getLogger().level))
        """
    )
    app.makepyfile(
        test_root="""
        import logging

        from app import log

        def level():
            return logging.getLevelName(logging.getLogger().level)

        def test_1(telemetry):
            assert level() == "INFO"

        def test_2(telemetry):
            log.info("i")
            assert [r.body for r in telemetry.logs] == ["i"]
            assert level() == "INFO"

        def test_3_plain(caplog):
            log.info("not seen")
            assert level() == "WARNING"
            assert caplog.records == []

        def test_4(telemetry):
            assert level() == "INFO"
            logging.getLogger().setLevel(logging.ERROR)

        def test_5_plain():
            assert level() == "WARNING"

        def test_6(telemetry):
            assert level() == "INFO"
        """
    )
    result = run_inprocess(app, "-s")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*at session end: WARNING"])


def test_root_logger_level_survives_pytest_log_level(app: pytest.Pytester) -> None:
    # pytest's --log-level sets the root logger to it around each test phase and puts back
    # the level it found: telemetry tests still see their records, and every other test,
    # and whatever runs after the session, the level pytest alone would give it (ERROR
    # between and inside tests, the conftest's CRITICAL after the run).
    app.makeconftest(
        """
        import logging

        BEFORE = logging.getLogger().level
        logging.getLogger().setLevel(logging.CRITICAL)

        def pytest_runtest_logfinish(nodeid):
            if "plain" in nodeid:
                print("after", nodeid.split("::")[1] + ":",
                      logging.getLevelName(logging.getLogger().level))

        def pytest_unconfigure(config):
            print("at unconfigure:", logging.getLevelName(logging.getLogger().level))
            logging.getLogger().setLevel(BEFORE)
        """
    )
    app.makepyfile(
        test_root="""
        import logging

        from app import log

        def level():
            return logging.getLevelName(logging.getLogger().level)

        def test_1(telemetry):
            log.info("one")
            assert [r.body for r in telemetry.logs] == ["one"]

        def test_2_plain():
            print("test_2_plain sees", level())

        def test_3(telemetry):
            log.info("three")
            assert [r.body for r in telemetry.logs] == ["three"]

        def test_4(telemetry):
            log.warning("four")
            assert [r.body for r in telemetry.logs] == ["four"]

        def test_5_plain():
            print("test_5_plain sees", level())
        """
    )
    result = run_inprocess(app, "-s", "--log-level=ERROR")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "*test_2_plain sees ERROR*",
            "*after test_2_plain: ERROR",
            "*test_5_plain sees ERROR*",
            "*after test_5_plain: ERROR",
            "at unconfigure: CRITICAL",
        ]
    )


def test_bridge_left_attached_between_telemetry_tests_bridges_nothing(
    app: pytest.Pytester,
) -> None:
    # Between two telemetry tests the bridge stays on the root logger (as its level stays
    # lowered), yet a record written then (a module fixture's) reaches no OTel processor,
    # the user's exporter included; any other test, and the end of the run, finds the root
    # logger without it.
    app.makeconftest(
        """
        import logging

        import pytest
        from opentelemetry._logs import set_logger_provider
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import (
            InMemoryLogRecordExporter,
            SimpleLogRecordProcessor,
        )

        EXPORTED = InMemoryLogRecordExporter()
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(EXPORTED))
        set_logger_provider(provider)

        def bridges():
            return [type(h).__module__ for h in logging.getLogger().handlers
                    if "opentelemetry" in type(h).__module__]

        def pytest_unconfigure(config):
            print("exported:", sorted(r.log_record.body for r in EXPORTED.get_finished_logs()))
            print("bridges at the end:", bridges())
        """
    )
    app.makepyfile(
        test_between="""
        import pytest

        from app import log
        from conftest import bridges

        @pytest.fixture(scope="module")
        def shared():
            log.info("between")

        def test_1(telemetry):
            log.info("one")

        def test_2(shared, telemetry):
            log.info("two")
            assert [r.body for r in telemetry.logs] == ["two"]

        def test_3_plain():
            assert bridges() == []
        """
    )
    result = run_subprocess(app, "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["exported: ['one', 'two']", "bridges at the end: []"])


NESTED = """
import logging

import pytest

from app import log, orders, tracer
from pytest_sniper_otel import install_session


def test_a_nested_window_is_separate_and_the_outer_resumes(telemetry):
    orders.add(2)
    log.info("before")
    with install_session().capture(nested=True, log_level=logging.WARNING) as inner:
        orders.add(5)
        log.info("inside, below the inner level")
        log.warning("inside")
        with tracer.start_as_current_span("control"):
            pass
    orders.add(1)
    log.info("after")
    assert telemetry.metric("orders_total").value == 3
    assert inner.metric("orders_total").value == 5
    assert [s.name for s in inner.spans] == ["control"]
    assert telemetry.spans == []
    assert [r.body for r in telemetry.logs] == ["before", "after"]
    assert [r.body for r in inner.logs] == ["inside"]


def test_a_second_window_needs_nested(telemetry):
    with pytest.raises(RuntimeError) as raised:
        with install_session().capture():
            pass
    assert str(raised.value) == (
        "a telemetry capture window is already open in this process; "
        "open another inside it with capture(nested=True)"
    )
"""


def test_nested_capture_windows(app: pytest.Pytester) -> None:
    app.makepyfile(test_nested=NESTED)
    result = run_inprocess(app)
    result.assert_outcomes(passed=2)
