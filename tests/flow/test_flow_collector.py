"""The loopback OTLP/HTTP collector: what it counts and each way it misbehaves, met by the
real OTLP exporters and by a bare HTTP client."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Sequence

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pytest_sniper_otel.cli import main as sniper_otel
from pytest_sniper_otel.flow.collector import OtlpCollector


def _spans(n: int) -> Sequence[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("collector-test")
    for i in range(n):
        with tracer.start_as_current_span(f"span-{i}"):
            pass
    provider.shutdown()
    return memory.get_finished_spans()


def _post(url: str, path: str, body: bytes, timeout: float) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/x-protobuf"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_counts_requests_bytes_and_the_items_it_accepted() -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("collector-test")
    meter.create_counter("orders").add(1, {"side": "buy"})
    meter.create_counter("orders").add(1, {"side": "sell"})
    meter.create_histogram("latency").record(3.0)
    metrics = reader.get_metrics_data()
    assert metrics is not None
    with OtlpCollector(count_items=True) as collector:
        spans = OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces", timeout=5)
        assert spans.export(_spans(3)) == SpanExportResult.SUCCESS
        assert spans.export(_spans(2)) == SpanExportResult.SUCCESS
        points = OTLPMetricExporter(endpoint=f"{collector.url}/v1/metrics", timeout=5)
        assert points.export(metrics) == MetricExportResult.SUCCESS
        assert _post(collector.url, "/v1/profiles", b"", timeout=5) == 404
    assert collector.requests == {"/v1/traces": 2, "/v1/metrics": 1, "/v1/profiles": 1}
    assert collector.bytes["/v1/traces"] > 0 and collector.bytes["/v1/profiles"] == 0
    assert collector.items == {"traces": 5, "metrics": 3}  # two counter series + a histogram
    snapshot = collector.snapshot()
    assert snapshot["requests"]["/v1/traces"] == 2 and snapshot["items"]["traces"] == 5


def test_without_count_items_it_counts_requests_only() -> None:
    with OtlpCollector() as collector:
        exporter = OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces", timeout=5)
        assert exporter.export(_spans(3)) == SpanExportResult.SUCCESS
    assert collector.requests == {"/v1/traces": 1}
    assert collector.items == {}


def test_slow_answers_after_its_delay() -> None:
    with OtlpCollector(mode="slow", delay=0.5, count_items=True) as collector:
        with pytest.raises(TimeoutError):
            _post(collector.url, "/v1/traces", b"", timeout=0.1)
        started = time.perf_counter()
        assert _post(collector.url, "/v1/traces", b"", timeout=10) == 200
        assert time.perf_counter() - started >= 0.5
    assert collector.requests == {"/v1/traces": 2}


def test_hung_never_answers_and_is_released_when_it_stops() -> None:
    with OtlpCollector(mode="hung", count_items=True) as collector:
        exporter = OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces", timeout=0.3)
        assert exporter.export(_spans(2)) == SpanExportResult.FAILURE
        with pytest.raises(TimeoutError):
            _post(collector.url, "/v1/traces", b"", timeout=0.3)
        # the mode can change while it serves
        collector.mode = "ok"
        assert _post(collector.url, "/v1/traces", b"", timeout=5) == 200
    assert collector.requests["/v1/traces"] >= 3  # the exporter may retry within its timeout
    assert collector.items["traces"] == 0  # the one accepted export was empty


def test_reset_resets_the_connection() -> None:
    with OtlpCollector(mode="reset", count_items=True) as collector:
        with pytest.raises(ConnectionResetError):
            _post(collector.url, "/v1/traces", b"\x00" * 100, timeout=5)
        exporter = OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces", timeout=1)
        assert exporter.export(_spans(2)) == SpanExportResult.FAILURE
    assert collector.requests["/v1/traces"] >= 2
    assert collector.items == {}


@pytest.mark.parametrize(("options", "error"), [
    ({"mode": "flaky"}, "mode must be one of ok, slow, hung, reset, got 'flaky'"),
    ({"delay": -1.0}, "delay must be >= 0 seconds, got -1.0"),
    ({"hold_limit": 0.0}, "hold_limit must be > 0 seconds, got 0.0"),
])
def test_bad_options_are_refused(options: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        OtlpCollector(**options)  # type: ignore[arg-type]


def test_the_command_serves_then_prints_what_arrived(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a free port, then exports sent while the command serves
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = OtlpCollector.start

    def start_and_export(self: OtlpCollector) -> OtlpCollector:
        started(self)
        OTLPSpanExporter(endpoint=f"{self.url}/v1/traces", timeout=5).export(_spans(4))
        return self

    monkeypatch.setattr(OtlpCollector, "start", start_and_export)
    assert sniper_otel(["collector", "--port", str(port), "--count-items",
                        "--duration", "0.2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    pytest.LineMatcher(lines).fnmatch_lines([
        f"OTLP/HTTP collector on http://127.0.0.1:{port} (mode ok)",
        "/v1/traces: 1 request, * bytes, 4 spans",
    ])


@pytest.mark.parametrize(("argv", "error"), [
    (["--duration", "0"], "--duration must be > 0 seconds, got 0"),
    (["--port", "70000"], "--port must be 0-65535, got 70000"),
    (["--delay", "-1"], "--delay must be >= 0 seconds, got -1"),
    (["--mode", "flaky"], "argument --mode: invalid choice: 'flaky'"),
])
def test_the_command_refuses_bad_input(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        sniper_otel(["collector", *argv])
    assert exit_.value.code == 2
    assert error in capsys.readouterr().err


def test_the_command_says_when_the_port_is_taken(capsys: pytest.CaptureFixture[str]) -> None:
    with OtlpCollector() as taken:
        port = taken.server.server_address[1]
        assert sniper_otel(["collector", "--port", str(port), "--duration", "0.1"]) == 2
    assert (f"sniper-otel collector: cannot listen on 127.0.0.1:{port}: "
            in capsys.readouterr().err)
