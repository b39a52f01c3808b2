"""SimClock's readings: the same values freezegun gives, and the SDK stamping from the clock."""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import random
import sys
import threading
import time
import types
from typing import Any

import freezegun.api
import pytest
from freezegun import freeze_time
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_sniper_otel import SimClock
from pytest_sniper_otel.clock import (
    _OTEL_STAMPING_MODULES,
    monotonic,
    real_monotonic,
    real_monotonic_ns,
)


def test_readings_equal_freezegun_on_any_tick() -> None:
    rng = random.Random(0)
    with SimClock("2026-03-01T09:30:00.123457+00:00") as clock:
        for _ in range(3000):
            move = rng.random()
            if move < 0.8:
                clock.advance_ns(rng.choice([1, 999, 1000, 1001, 256, 123_456_789,
                                             rng.randrange(10**12)]))
            elif move < 0.95:
                clock.jump(rng.uniform(-86_400, 86_400))
            else:
                clock.move_to(dt.datetime(rng.randrange(1950, 2100), 1, 1,
                                          microsecond=rng.randrange(10**6), tzinfo=dt.UTC))
            assert clock.time_ns() == time.time_ns()
            assert clock.time() == clock.now().timestamp() == time.time()
            assert monotonic() == time.monotonic()


def test_monotonic_is_real_without_a_clock_and_follows_a_freeze_inside_one() -> None:
    before = monotonic()
    assert time.monotonic() >= before
    with SimClock("2026-03-01T09:30:00+00:00") as clock:
        clock.tick(1.5)
        assert monotonic() == time.monotonic() == clock.time()
        with freeze_time("2030-01-01 00:00:00"):  # someone else's freeze inside the clock
            assert monotonic() == time.monotonic() == 1893456000.0
        assert monotonic() == clock.time()
    after = monotonic()
    assert before <= after < before + 60  # real seconds again, not the simulated epoch


def test_real_monotonic_moves_with_real_time_whatever_the_clock_does() -> None:
    def unpatched_ns() -> int:  # freezegun patches neither clock_gettime nor its callers
        return time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    # a module that took freezegun's saved real function by name: freezegun's scan on
    # start swaps it for the fake, the trap real_monotonic_ns avoids
    leaky: types.ModuleType = types.ModuleType("leaky_real_time")
    exec("from freezegun.api import real_monotonic_ns", leaky.__dict__)
    sys.modules[leaky.__name__] = leaky
    try:
        readings: list[tuple[int, int, int]] = []  # (before, real_monotonic_ns, after)

        def read() -> None:
            before = unpatched_ns()
            reading = real_monotonic_ns()
            readings.append((before, reading, unpatched_ns()))

        read()
        with SimClock("2026-03-01T09:30:00+00:00") as clock:
            assert leaky.real_monotonic_ns is freezegun.api.fake_monotonic_ns
            read()
            clock.tick(3600)
            read()
            clock.jump(-86_400)
            read()
            clock.move_to("1990-01-01T00:00:00+00:00")
            read()
            simulated = (clock.monotonic_ns(), time.monotonic())
            real_before = real_monotonic()
            threading.Event().wait(0.05)  # a real wait: time.sleep would tick the clock
            assert real_monotonic() - real_before >= 0.05
            assert (clock.monotonic_ns(), time.monotonic()) == simulated
            with freeze_time("2030-01-01 00:00:00"):  # someone else's freeze inside
                read()
        read()
    finally:
        del sys.modules[leaky.__name__]
    for before, reading, after in readings:
        assert before <= reading <= after
    assert [r for _, r, _ in readings] == sorted(r for _, r, _ in readings)
    assert abs(real_monotonic() - unpatched_ns() / 1e9) < 1.0


def test_every_stamping_module_takes_time_ns_from_the_clock() -> None:
    """A module renamed by a later SDK would silently fall back to freezegun's slow path."""
    modules = [importlib.import_module(name) for name in _OTEL_STAMPING_MODULES]
    real = time.time_ns
    assert [m.__name__ for m in modules if m.time_ns is not real] == []
    with SimClock() as clock:
        assert [m.__name__ for m in modules if m.time_ns != clock.time_ns] == []
    assert [m.__name__ for m in modules if m.time_ns is not real] == []


def _providers() -> tuple[TracerProvider, InMemorySpanExporter, MeterProvider,
                          InMemoryMetricReader, LoggerProvider, InMemoryLogRecordExporter]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    return (tracer_provider, spans, MeterProvider(metric_readers=[reader]), reader,
            logger_provider, logs)


def test_spans_metric_points_and_log_records_carry_the_simulated_time() -> None:
    tracer_provider, spans, meter_provider, reader, logger_provider, logs = _providers()
    tracer = tracer_provider.get_tracer("readings")
    counter = meter_provider.get_meter("readings").create_counter("ticks")
    log = logging.getLogger("readings")
    handler = LoggingHandler(logger_provider=logger_provider)
    log.addHandler(handler)
    try:
        with SimClock("2026-01-01T00:00:00.000001+00:00") as clock:
            opened = time.time_ns()  # freezegun's reading
            with tracer.start_as_current_span("outer") as outer:
                clock.advance_ns(1_234_567)
                outer.add_event("half-way")
                counter.add(1)
                log.warning("inside")
                started = clock.time_ns()
                clock.tick(2.5)
            ended = clock.time_ns()
            collected = clock.time_ns()
            data = reader.get_metrics_data()
    finally:
        log.removeHandler(handler)
    (span,) = spans.get_finished_spans()
    assert span.start_time == opened
    assert span.events[0].timestamp == started
    assert span.end_time == ended == started + 2_500_000_000
    assert data is not None
    point = data.resource_metrics[0].scope_metrics[0].metrics[0].data.data_points[0]
    assert point.time_unix_nano == collected
    (record,) = logs.get_finished_logs()
    assert record.log_record.observed_timestamp == started


def test_otel_on_the_real_clock_is_not_stamped_from_the_simulated_one() -> None:
    tracer_provider, spans, *_ = _providers()
    before = time.time_ns()
    with SimClock(otel_follows=False) as clock:
        modules = [importlib.import_module(name) for name in _OTEL_STAMPING_MODULES]
        assert [m.__name__ for m in modules if m.time_ns == clock.time_ns] == []
        with tracer_provider.get_tracer("readings").start_as_current_span("real"):
            clock.tick(3600)
    (span,) = spans.get_finished_spans()
    assert span.start_time is not None and span.end_time is not None
    assert before <= span.start_time <= span.end_time < before + 60 * 10**9


def test_readings_need_a_running_clock() -> None:
    clock = SimClock()
    with pytest.raises(RuntimeError, match="SimClock is not running"):
        clock.time_ns()
    with pytest.raises(RuntimeError, match="SimClock is not running"):
        clock.time()


def test_a_clock_started_inside_another_stamps_otel_until_it_stops() -> None:
    tracer_provider, spans, *_ = _providers()
    tracer = tracer_provider.get_tracer("readings")
    wall = time.time_ns()
    with SimClock("2026-01-01T00:00:00+00:00") as outer:
        with SimClock("2030-06-01T00:00:00+00:00") as inner:
            with tracer.start_as_current_span("inner"):
                inner.tick(5)
            with SimClock(otel_follows=False), tracer.start_as_current_span("real"):
                pass
        with tracer.start_as_current_span("outer"):
            outer.tick(2)
    inner_span, real_span, outer_span = spans.get_finished_spans()
    assert inner_span.start_time == 1906502400 * 10**9  # 2030-06-01
    assert inner_span.end_time == inner_span.start_time + 5 * 10**9
    assert real_span.start_time is not None
    assert wall <= real_span.start_time < wall + 60 * 10**9
    assert outer_span.start_time == 1767225600 * 10**9  # 2026-01-01
    assert outer_span.end_time == outer_span.start_time + 2 * 10**9


def test_stopping_clocks_out_of_order_is_refused_and_leaves_both_running() -> None:
    freezers_before = len(freezegun.api.freeze_factories)
    outer = SimClock("2026-01-01T00:00:00+00:00").start()
    inner = SimClock("2030-06-01T00:00:00+00:00").start()
    try:
        with pytest.raises(RuntimeError, match=r"SimClock.stop\(\): a clock or freeze_time "
                           r"started after this one is still running; stop clocks in reverse "
                           r"order of start \(nest them\)"):
            outer.stop()
        assert outer.running and inner.running
        assert dt.datetime.now(dt.UTC).year == 2030  # the inner clock still rules
        with freeze_time("2040-01-01"), pytest.raises(RuntimeError, match="freeze_time"):
            inner.stop()
    finally:
        inner.stop()
        outer.stop()
    assert not outer.running and not inner.running
    assert len(freezegun.api.freeze_factories) == freezers_before


def _time_read_from(module_name: str) -> float:
    """``time.time()`` called by code of the module ``module_name`` (as freezegun sees it)."""
    scope: dict[str, Any] = {"__name__": module_name, "time": time}
    exec("def read():\n    return time.time()\n", scope)
    reading: float = scope["read"]()
    return reading


def test_without_real_time_callers_an_ignored_module_reads_the_simulated_clock() -> None:
    exporter = "opentelemetry.exporter.otlp.example"  # on the clock's ignore list
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()

    def is_real(reading: float) -> bool:
        return abs(reading - freezegun.api.real_time()) < 60

    with SimClock() as clock:
        clock.tick(7)
        assert is_real(_time_read_from(exporter))
        assert _time_read_from("bot") == start + 7
    with SimClock(real_time_callers=False) as clock:
        clock.tick(7)
        assert _time_read_from(exporter) == start + 7
        assert _time_read_from("bot") == start + 7
        with SimClock():  # a clock inside it inspects the callers again
            assert is_real(_time_read_from(exporter))
        assert _time_read_from(exporter) == start + 7
    assert freezegun.api.ignore_lists == []
