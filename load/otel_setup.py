"""Telemetry variants for the load tests: which global providers a process installs.

Global OpenTelemetry providers are set once per process, so each variant runs in its own
process. This module never imports locust or gevent and starts no thread on import: the
locustfile calls :func:`install` only after gevent has patched the standard library, so the
batch processors' worker "threads" are greenlets (a real thread started before the patch
deadlocked a run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

# The bot's loggers live under this name (pytest_sniper_otel.flow.telemetry.LOGGER_ROOT).
BOT_LOGGER = "sniper"
DEFAULT_OTLP_ENDPOINT = "http://127.0.0.1:4318"


@dataclass(frozen=True)
class Variant:
    name: str
    traces: bool
    metrics: bool
    logs: bool
    export: str  # "null": full SDK pipeline, exporter drops batches; "otlp": OTLP/HTTP
    help: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("none", False, False, False, "null", "no telemetry: no-op API providers"),
        Variant("traces", True, False, False, "null", "traces only, null export"),
        Variant("metrics", False, True, False, "null", "metrics only, null export"),
        Variant("logs", False, False, True, "null", "logs only (stdlib bridge), null export"),
        Variant("all", True, True, True, "null", "traces + metrics + logs, null export"),
        Variant("all-otlp", True, True, True, "otlp", "all three, OTLP/HTTP to a local receiver"),
    )
}
BASELINE = "none"


def variant(name: str) -> Variant:
    """The named variant, or ValueError listing the known ones."""
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(
            f"unknown telemetry variant {name!r}; choose from {', '.join(VARIANTS)}"
        ) from None


# -- exporters that count and drop --------------------------------------------------------
class NullSpanExporter(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class NullMetricExporter(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.exported = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported += 1
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def null_log_exporter() -> Any:
    """A log exporter that counts and drops (the SDK's logs API is still private)."""
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    class NullLogExporter(LogRecordExporter):
        def __init__(self) -> None:
            self.exported = 0

        def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
            self.exported += len(batch)
            return LogRecordExportResult.SUCCESS

        def force_flush(self, timeout_millis: int = 30_000) -> bool:
            return True

        def shutdown(self) -> None:
            pass

    return NullLogExporter()


# -- installation --------------------------------------------------------------------------
@dataclass
class Installed:
    """What :func:`install` set up; :meth:`shutdown` flushes and stops it."""

    variant: Variant
    exporters: dict[str, Any] = field(default_factory=dict)
    _shutdowns: list[Callable[[], Any]] = field(default_factory=list)

    def exported(self) -> dict[str, int]:
        """Items the null exporters saw (spans, metric exports, log records)."""
        return {k: int(getattr(e, "exported", -1)) for k, e in self.exporters.items()}

    def shutdown(self) -> None:
        for stop in self._shutdowns:
            stop()
        self._shutdowns.clear()


def install(
    v: Variant,
    *,
    endpoint: str = DEFAULT_OTLP_ENDPOINT,
    metric_interval_ms: int = 5_000,
    simple: bool = False,
) -> Installed:
    """Install ``v``'s global providers for this process (batch processors, as production
    would; ``simple=True`` exports synchronously, for single-threaded micro-benchmarks)."""
    installed = Installed(v)
    # The bot's INFO records go nowhere unless a variant bridges them: a NullHandler keeps
    # them off locust's console handler (and off logging's last-resort stderr handler).
    bot_logger = logging.getLogger(BOT_LOGGER)
    bot_logger.propagate = False
    bot_logger.addHandler(logging.NullHandler())
    if v.traces:
        _install_traces(installed, endpoint, simple)
    if v.metrics:
        _install_metrics(installed, endpoint, metric_interval_ms)
    if v.logs:
        _install_logs(installed, endpoint, simple, bot_logger)
    return installed


def _install_traces(installed: Installed, endpoint: str, simple: bool) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    exporter: SpanExporter
    if installed.variant.export == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    else:
        exporter = NullSpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(
        SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter)
    )
    trace.set_tracer_provider(provider)
    installed.exporters["traces"] = exporter
    installed._shutdowns.append(provider.shutdown)


def _install_metrics(installed: Installed, endpoint: str, interval_ms: int) -> None:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    exporter: MetricExporter
    if installed.variant.export == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter = OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics")
    else:
        exporter = NullMetricExporter()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms)
    provider = MeterProvider(metric_readers=[reader])
    metrics.set_meter_provider(provider)
    installed.exporters["metrics"] = exporter
    installed._shutdowns.append(provider.shutdown)


def _install_logs(
    installed: Installed, endpoint: str, simple: bool, bot_logger: logging.Logger
) -> None:
    from opentelemetry import _logs
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor

    exporter: Any
    if installed.variant.export == "otlp":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        exporter = OTLPLogExporter(endpoint=f"{endpoint}/v1/logs")
    else:
        exporter = null_log_exporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(exporter) if simple else BatchLogRecordProcessor(exporter)
    )
    _logs.set_logger_provider(provider)
    handler = LoggingHandler(level=logging.NOTSET, logger_provider=provider)
    bot_logger.addHandler(handler)
    installed.exporters["logs"] = exporter

    def stop() -> None:
        bot_logger.removeHandler(handler)
        provider.shutdown()

    installed._shutdowns.append(stop)
