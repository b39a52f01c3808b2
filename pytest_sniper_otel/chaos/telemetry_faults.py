"""Telemetry faults: the export path raising, hanging, crawling or overflowing.

Target: an :class:`~pytest_sniper_otel.chaos.export.ExportPipeline`. The first exporter
fault on a slot (``exporter`` for spans, ``log_exporter`` for logs) puts an
:class:`ExporterChain` in front of the real exporter and the last rollback removes it, so
overlapping faults unwind in any order; queue limits are layered the same way
(:mod:`.layers`). Trading must carry on regardless; what is lost shows up in
``telemetry_dropped_total{signal, reason}``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from . import layers
from .export import ExportPipeline
from .faults import Fault, FaultError, counted_push, positive, register, require

_SIGNALS = ("traces", "logs", "all")
Export = Callable[[Sequence[Any]], Any]


class ExporterUnavailable(ConnectionError):
    """What a collector that refuses connections looks like to an exporter."""


class ExporterChain(SpanExporter):
    """Routes each export through the active exporter faults, newest first."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.faults: list[_ExporterFault] = []

    @property
    def export_latency(self) -> float:
        # read once per batch by the pipeline; each slow fault draws its probability
        return max((f.latency_now() for f in list(self.faults)), default=0.0)

    def export(self, spans: Sequence[Any]) -> Any:
        call: Export = self.inner.export
        for f in list(self.faults):
            call = _bind(f, call)
        return call(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()


def _bind(f: _ExporterFault, nxt: Export) -> Export:
    def export(spans: Sequence[Any]) -> Any:
        if f.intercepts and f.strikes():
            return f.misbehave(spans, nxt)
        return nxt(spans)

    return export


@dataclass
class _ExporterFault(Fault):
    signal: str = "traces"
    target = "telemetry"
    intercepts = True  # False: it only slows the pipeline down

    def validate(self) -> None:
        require(self.signal in _SIGNALS, f"signal must be one of {', '.join(_SIGNALS)}, "
                                         f"got {self.signal!r}")

    def misbehave(self, spans: Sequence[Any], nxt: Export) -> Any:
        raise NotImplementedError

    def latency_now(self) -> float:
        return 0.0

    def _slots(self) -> list[str]:
        return {"traces": ["exporter"], "logs": ["log_exporter"],
                "all": ["exporter", "log_exporter"]}[self.signal]

    def apply(self, target: Any) -> None:
        pipeline = _pipeline(target)
        self.release = threading.Event()
        self._chains = []
        for slot in self._slots():
            chain = getattr(pipeline, slot)
            if not isinstance(chain, ExporterChain):
                chain = ExporterChain(chain)
                setattr(pipeline, slot, chain)
            chain.faults.append(self)
            self._chains.append((slot, chain))

    def revert(self, target: Any) -> None:
        pipeline = _pipeline(target)
        self.release.set()  # frees an export thread this fault is holding
        for slot, chain in self._chains:
            if self in chain.faults:
                chain.faults.remove(self)
            if not chain.faults and getattr(pipeline, slot) is chain:
                setattr(pipeline, slot, chain.inner)


@register
@dataclass
class ExporterRaises(_ExporterFault):
    """The exporter raises (collector down). Batches are dropped as ``export_failed``."""

    name = "telemetry.exporter_raises"
    summary = "span/log exporter raises ConnectionError on export"

    def misbehave(self, spans: Sequence[Any], nxt: Export) -> Any:
        raise ExporterUnavailable("collector refused the connection (chaos)")


@register
@dataclass
class ExporterHangs(_ExporterFault):
    """The exporter never returns until rollback: ``export_timeout`` then ``queue_full``."""

    name = "telemetry.exporter_hangs"
    summary = "exporter blocks forever; the pipeline times out and its queue overflows"

    def misbehave(self, spans: Sequence[Any], nxt: Export) -> Any:
        # Blocks its worker thread until rollback; the pipeline gives up after its timeout.
        self.release.wait()
        return SpanExportResult.FAILURE


@register
@dataclass
class ExporterSlow(_ExporterFault):
    """Each export keeps the pipeline busy ``latency`` simulated seconds: the queue backs up."""

    latency: float = 5.0
    name = "telemetry.exporter_slow"
    summary = "each export takes `latency` simulated seconds; backlog overflows the queue"
    intercepts = False

    def validate(self) -> None:
        super().validate()
        positive(self.latency, "latency")

    def latency_now(self) -> float:
        return self.latency if self.strikes() else 0.0


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
        batch = max(1, min(layers.base(pipeline, "max_batch"), self.max_queue // 2 or 1))
        self._base_queue = layers.base(pipeline, "max_queue")
        # a hit per span or log record offered to the shrunk queue (it reads the limit)
        counted_push(self, pipeline, "max_queue", self.max_queue, self._read)
        layers.push(pipeline, "max_batch", self, batch)

    def _read(self) -> None:
        if self.max_queue < self._base_queue:
            self.struck()

    def revert(self, target: Any) -> None:
        pipeline = _pipeline(target)
        layers.pop(pipeline, "max_queue", self)
        layers.pop(pipeline, "max_batch", self)


def _pipeline(target: Any) -> ExportPipeline:
    if not isinstance(target, ExportPipeline):
        raise FaultError(f"telemetry faults act on an ExportPipeline, got {type(target).__name__}")
    return target
