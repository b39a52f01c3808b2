"""Telemetry faults: the export path raising, hanging, crawling or overflowing.

Target: an :class:`~pytest_sniper_otel.chaos.export.ExportPipeline`. Each fault swaps the
pipeline's exporter (or its queue size) and restores it on rollback. Trading must carry on
regardless; what is lost shows up in ``telemetry_dropped_total{signal, reason}``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .export import ExportPipeline
from .faults import Fault, FaultError, positive, register, require

_SIGNALS = ("traces", "logs", "all")


class ExporterUnavailable(ConnectionError):
    """What a collector that refuses connections looks like to an exporter."""


class _FaultyExporter(SpanExporter):
    def __init__(self, fault: Fault, inner: Any) -> None:
        self.fault = fault
        self.inner = inner

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        if self.fault.strikes():
            return self.misbehave(spans)
        result: SpanExportResult = self.inner.export(spans)
        return result

    def misbehave(self, spans: Sequence[Any]) -> SpanExportResult:
        raise NotImplementedError

    def shutdown(self) -> None:
        release = getattr(self, "release", None)
        if release is not None:
            release.set()


class _Raising(_FaultyExporter):
    def misbehave(self, spans: Sequence[Any]) -> SpanExportResult:
        raise ExporterUnavailable("collector refused the connection (chaos)")


class _Hanging(_FaultyExporter):
    def __init__(self, fault: Fault, inner: Any) -> None:
        super().__init__(fault, inner)
        self.release = threading.Event()

    def misbehave(self, spans: Sequence[Any]) -> SpanExportResult:
        # Blocks its worker thread until rollback; the pipeline gives up after its timeout.
        self.release.wait()
        return SpanExportResult.FAILURE


class _Slow(_FaultyExporter):
    def __init__(self, fault: Fault, inner: Any, latency: float) -> None:
        super().__init__(fault, inner)
        self.latency = latency

    @property
    def export_latency(self) -> float:
        # Read once per batch by the pipeline: the probability applies per batch.
        return self.latency if self.fault.strikes() else 0.0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        result: SpanExportResult = self.inner.export(spans)
        return result


@dataclass
class _ExporterFault(Fault):
    signal: str = "traces"
    target = "telemetry"

    def validate(self) -> None:
        require(self.signal in _SIGNALS, f"signal must be one of {', '.join(_SIGNALS)}, "
                                         f"got {self.signal!r}")

    def make(self, inner: Any) -> _FaultyExporter:
        raise NotImplementedError

    def _slots(self) -> list[str]:
        return {"traces": ["exporter"], "logs": ["log_exporter"],
                "all": ["exporter", "log_exporter"]}[self.signal]

    def apply(self, target: Any) -> None:
        pipeline = _pipeline(target)
        self._saved = {slot: getattr(pipeline, slot) for slot in self._slots()}
        self._installed = {slot: self.make(inner) for slot, inner in self._saved.items()}
        for slot, exporter in self._installed.items():
            setattr(pipeline, slot, exporter)

    def revert(self, target: Any) -> None:
        pipeline = _pipeline(target)
        for slot, exporter in self._installed.items():
            exporter.shutdown()  # releases a hanging export thread
            if getattr(pipeline, slot) is exporter:
                setattr(pipeline, slot, self._saved[slot])


@register
@dataclass
class ExporterRaises(_ExporterFault):
    """The exporter raises (collector down). Batches are dropped as ``export_failed``."""

    name = "telemetry.exporter_raises"
    summary = "span/log exporter raises ConnectionError on export"

    def make(self, inner: Any) -> _FaultyExporter:
        return _Raising(self, inner)


@register
@dataclass
class ExporterHangs(_ExporterFault):
    """The exporter never returns until rollback: ``export_timeout`` then ``queue_full``."""

    name = "telemetry.exporter_hangs"
    summary = "exporter blocks forever; the pipeline times out and its queue overflows"

    def make(self, inner: Any) -> _FaultyExporter:
        return _Hanging(self, inner)


@register
@dataclass
class ExporterSlow(_ExporterFault):
    """Each export keeps the pipeline busy ``latency`` simulated seconds: the queue backs up."""

    latency: float = 5.0
    name = "telemetry.exporter_slow"
    summary = "each export takes `latency` simulated seconds; backlog overflows the queue"

    def validate(self) -> None:
        super().validate()
        positive(self.latency, "latency")

    def make(self, inner: Any) -> _FaultyExporter:
        return _Slow(self, inner, self.latency)


@register
@dataclass
class QueueOverflow(Fault):
    """Shrinks the pipeline's queue to ``max_queue`` items: bursts overflow it."""

    max_queue: int = 16
    name = "telemetry.queue_overflow"
    target = "telemetry"
    summary = "export queue shrunk to `max_queue`; bursts are dropped as queue_full"

    def validate(self) -> None:
        require(
            isinstance(self.max_queue, int) and not isinstance(self.max_queue, bool)
            and self.max_queue >= 0,
            f"max_queue must be an int >= 0, got {self.max_queue!r}",
        )

    def apply(self, target: Any) -> None:
        pipeline = _pipeline(target)
        self._saved = pipeline.max_queue, pipeline.max_batch
        pipeline.max_queue = self.max_queue
        pipeline.max_batch = max(1, min(pipeline.max_batch, self.max_queue // 2 or 1))

    def revert(self, target: Any) -> None:
        pipeline = _pipeline(target)
        pipeline.max_queue, pipeline.max_batch = self._saved


def _pipeline(target: Any) -> ExportPipeline:
    if not isinstance(target, ExportPipeline):
        raise FaultError(f"telemetry faults act on an ExportPipeline, got {type(target).__name__}")
    return target
