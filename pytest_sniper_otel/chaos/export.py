"""A non-blocking telemetry export path whose exporter chaos can break.

:class:`ExportPipeline` is a span processor (and a log record processor) with a bounded
queue and a swappable exporter, attached once to the session's SDK providers. Ending a span
never waits: it is queued, or dropped when the queue is full. Queued items are exported by
:meth:`ExportPipeline.pump`, which the chaos runner calls on every simulated step; the
exporter runs in a worker thread (the default counting sink, which can neither hang nor
fail, runs inline) and ``pump`` waits at most ``export_timeout`` *real*
seconds for it (freezegun leaves ``threading`` alone, so that timeout is wall time, and the
pipeline reads real time from the clock it is given, never from the patched ``time``). So an
exporter that raises, hangs or crawls costs the bot nothing but telemetry, and every lost
item is counted in ``telemetry_dropped_total{signal, reason}``:

* ``queue_full``: the bounded queue overflowed (a slow or stuck exporter behind it);
* ``export_failed``: the exporter raised or returned failure;
* ``export_timeout``: the exporter did not answer within ``export_timeout``;
* ``shutdown``: still queued when :meth:`drain`'s budget ran out.

Conservation holds between pumps: ``accepted == exported + dropped + queued`` (a batch
that timed out counts as dropped even if the stuck exporter finishes it later).
A slow exporter is modelled on the simulated clock: an exporter with an
``export_latency`` attribute (seconds) keeps the pipeline busy that long after each batch.

The pipeline only records while :meth:`enabled` (a chaos run); other tests pay one
attribute check per span.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from .. import real_monotonic

SIGNALS = ("traces", "logs")
REASONS = ("queue_full", "export_failed", "export_timeout", "shutdown")


class CountingExporter(SpanExporter):
    """The default sink: counts what it receives and keeps nothing (no memory growth)."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS


@dataclass
class PipelineStats:
    """What happened to the items the pipeline accepted, per signal."""

    accepted: Counter[str] = field(default_factory=Counter)
    exported: Counter[str] = field(default_factory=Counter)
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    max_queued: int = 0
    pumps: int = 0
    longest_pump: float = 0.0

    def dropped_total(self, signal: str | None = None) -> int:
        return sum(n for (s, _), n in self.dropped.items() if signal in (None, s))

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": dict(self.accepted),
            "exported": dict(self.exported),
            "dropped": {f"{s}/{r}": n for (s, r), n in sorted(self.dropped.items())},
            "max_queued": self.max_queued,
            "longest_pump_wall_s": round(self.longest_pump, 4),
        }


class _Job:
    def __init__(self, signal: str, exporter: Any, items: list[Any]) -> None:
        self.signal = signal
        self.exporter = exporter
        self.items = items
        self.done = threading.Event()
        self.ok = False

    def run(self) -> None:
        try:
            result = self.exporter.export(self.items)
            # span and log exporters answer with enums of their own: compare by name
            self.ok = result is None or result is True or getattr(result, "name", "") == "SUCCESS"
        except Exception:
            self.ok = False


class _ExportThreads:
    """The threads exports run in: a job goes to an idle one, or to a new one when all are
    busy (an exporter that hangs keeps its thread until it returns). A thread per export
    cost more than the export itself."""

    def __init__(self) -> None:
        self._idle: list[queue.SimpleQueue[_Job]] = []
        self._lock = threading.Lock()

    def start(self, job: _Job) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=self._serve, args=(inbox,), name="sniper-otel-export", daemon=True
            ).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[_Job]) -> None:
        while True:
            job = inbox.get()
            try:
                job.run()
            except BaseException:  # this thread ends: the job is over, the thread not idle
                job.done.set()
                raise
            with self._lock:  # idle again before anyone sees the job done
                self._idle.append(inbox)
            job.done.set()


class ExportPipeline(SpanProcessor):
    """Bounded, non-blocking export of spans and log records; see the module docs."""

    def __init__(
        self,
        *,
        max_queue: int = 2048,
        max_batch: int = 512,
        export_timeout: float = 0.2,
        exporter: SpanExporter | None = None,
        log_exporter: Any = None,
        blocking: bool = True,
        real_time: Callable[[], float] | None = None,
    ) -> None:
        self.max_queue = max_queue
        # real seconds for export deadlines and the drain budget: a simulated clock never
        # moves while a pump waits on an exporter
        self.real_time = real_time or real_monotonic
        self._threads = _ExportThreads()
        # blocking=False: pump starts an export and returns at once; the next pump settles
        # it (or counts it as export_timeout once export_timeout real seconds have passed)
        self.blocking = blocking
        self._inflight: tuple[_Job, float] | None = None
        self.max_batch = max_batch
        self.export_timeout = export_timeout
        self.exporter: Any = exporter or CountingExporter()
        self.log_exporter: Any = log_exporter or CountingExporter()
        self.stats = PipelineStats()
        self._queues: dict[str, deque[Any]] = {s: deque() for s in SIGNALS}
        self._lock = threading.Lock()
        self._enabled = False
        self._busy_until = -float("inf")
        self._stuck: _Job | None = None
        self._open_names: dict[int, str] = {}
        self.on_drop: Callable[[str, str, int], None] = _count_drop

    # recording ---------------------------------------------------------------------------
    @contextmanager
    def enabled(self) -> Iterator[ExportPipeline]:
        """Record (and start fresh statistics) inside the block."""
        with self._lock:
            was = self._enabled
            self._enabled = True
            self.stats = PipelineStats()
            for q in self._queues.values():
                q.clear()
            self._open_names.clear()
            self._busy_until = -float("inf")
            self._stuck = None  # a batch stuck in an earlier run was counted there
        try:
            yield self
        finally:
            with self._lock:
                self._enabled = was

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        context = span.context
        if self._enabled and context is not None:
            with self._lock:
                self._open_names[context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        if self._enabled:
            context = span.context
            with self._lock:  # once per span: it leaves the open ones and joins the queue
                if context is not None:
                    self._open_names.pop(context.span_id, None)
                queued = self._enqueue("traces", span)
            if not queued:
                self._dropped("traces", "queue_full", 1)

    def on_emit(self, log_record: Any) -> None:  # LogRecordProcessor
        if self._enabled:
            self._offer("logs", log_record)

    def emit(self, log_record: Any) -> None:  # older LogRecordProcessor name
        self.on_emit(log_record)

    def _offer(self, signal: str, item: Any) -> None:
        with self._lock:
            queued = self._enqueue(signal, item)
        if not queued:
            self._dropped(signal, "queue_full", 1)

    def _enqueue(self, signal: str, item: Any) -> bool:
        """Queue ``item`` unless the queue is full (the caller holds the lock)."""
        self.stats.accepted[signal] += 1
        queue = self._queues[signal]
        if len(queue) >= self.max_queue:
            return False
        queue.append(item)
        self.stats.max_queued = max(self.stats.max_queued, len(queue))
        return True

    def _dropped(self, signal: str, reason: str, n: int) -> None:
        with self._lock:
            self.stats.dropped[(signal, reason)] += n
        with contextlib.suppress(Exception):  # counting must not break the caller either
            self.on_drop(signal, reason, n)

    # exporting ---------------------------------------------------------------------------
    def queued(self, signal: str | None = None) -> int:
        with self._lock:
            return sum(len(q) for s, q in self._queues.items() if signal in (None, s))

    def open_spans(self) -> list[str]:
        """Names of spans started while enabled that have not ended."""
        with self._lock:
            return sorted(self._open_names.values())

    def pump(self, now: float) -> None:
        """Export what is queued, one batch per signal; ``now`` is simulated seconds."""
        if not self.blocking:
            self._pump_without_waiting()
            return
        if self._stuck is not None:
            if not self._stuck.done.is_set():
                return  # the exporter still hangs on an earlier batch: let the queue fill
            self._stuck = None
        if now < self._busy_until:
            return
        real = self.real_time
        t0 = real()
        for signal in SIGNALS:
            with self._lock:
                queue = self._queues[signal]
                batch = [queue.popleft() for _ in range(min(self.max_batch, len(queue)))]
            if not batch:
                continue
            exporter = self.exporter if signal == "traces" else self.log_exporter
            latency = float(getattr(exporter, "export_latency", 0.0) or 0.0)
            if not self._export(signal, exporter, batch):
                break
            if latency > 0:
                self._busy_until = now + latency
                break
        self.stats.pumps += 1
        self.stats.longest_pump = max(self.stats.longest_pump, real() - t0)

    def _export(self, signal: str, exporter: Any, batch: list[Any]) -> bool:
        if type(exporter) is CountingExporter:  # can neither hang nor fail: no thread needed
            job = _Job(signal, exporter, batch)
            job.run()
            self._settle(job)
            return True
        job = self._start(signal, exporter, batch)
        if not job.done.wait(self.export_timeout):
            self._stuck = job
            self._dropped(signal, "export_timeout", len(batch))
            return False
        self._settle(job)
        return True

    def _start(self, signal: str, exporter: Any, batch: list[Any]) -> _Job:
        job = _Job(signal, exporter, batch)
        self._threads.start(job)
        return job

    def _pump_without_waiting(self) -> None:
        real = self.real_time
        if self._inflight is not None:
            job, started = self._inflight
            if job.done.is_set():
                self._settle(job)
            elif real() - started >= self.export_timeout:
                self._stuck = job
                self._dropped(job.signal, "export_timeout", len(job.items))
            else:
                return
            self._inflight = None
        if self._stuck is not None:
            if not self._stuck.done.is_set():
                return
            self._stuck = None
        for signal in sorted(SIGNALS, key=lambda s: -len(self._queues[s])):
            with self._lock:
                queue = self._queues[signal]
                batch = [queue.popleft() for _ in range(min(self.max_batch, len(queue)))]
            if batch:
                exporter = self.exporter if signal == "traces" else self.log_exporter
                self._inflight = (self._start(signal, exporter, batch), real())
                self.stats.pumps += 1
                return

    def _settle(self, job: _Job) -> None:
        if job.ok:
            with self._lock:
                self.stats.exported[job.signal] += len(job.items)
        else:
            self._dropped(job.signal, "export_failed", len(job.items))

    def drain(self, now: float, *, rounds: int = 64, budget: float | None = None) -> None:
        """Pump until the queues are empty or the exporter stops taking batches. With a
        ``budget`` (real seconds), stop when it is spent and count whatever is still queued
        as dropped (``reason="shutdown"``): shutdown never waits longer than that (plus one
        ``export_timeout`` for a batch in flight)."""
        real = self.real_time
        deadline = None if budget is None else real() + budget
        if not self.blocking:
            while (self.queued() or self._inflight is not None) \
                    and (deadline is None or real() < deadline):
                self._pump_without_waiting()
                if self._inflight is not None:
                    self._inflight[0].done.wait(0.01)
            if self._inflight is not None:  # the budget ran out with a batch in flight
                job = self._inflight[0]
                self._inflight = None
                self._dropped(job.signal, "shutdown", len(job.items))
            rounds = 0
        for _ in range(rounds):
            before = self.queued()
            if before == 0 or (deadline is not None and real() >= deadline):
                break
            self.pump(now)
            if self.queued() >= before:
                break
        if budget is not None:
            for signal in SIGNALS:
                with self._lock:
                    left = len(self._queues[signal])
                    self._queues[signal].clear()
                if left:
                    self._dropped(signal, "shutdown", left)

    # SpanProcessor -------------------------------------------------------------------------
    def shutdown(self) -> None:
        self._enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _count_drop(signal: str, reason: str, n: int) -> None:
    from ..flow.telemetry import add

    add("telemetry_dropped_total", n, signal=signal, reason=reason)


_PIPELINE: ExportPipeline | None = None
_PIPELINE_LOCK = threading.Lock()


def export_pipeline() -> ExportPipeline:
    """The process's pipeline, attached once to the session's SDK tracer and logger providers."""
    global _PIPELINE
    with _PIPELINE_LOCK:
        if _PIPELINE is None:
            from ..capture import install_session

            session = install_session()
            session.require("traces")
            pipeline = ExportPipeline()
            session.tracer_provider.add_span_processor(pipeline)
            if session.logger_provider is not None:
                session.logger_provider.add_log_record_processor(_LogAdapter(pipeline))
            _PIPELINE = pipeline
        return _PIPELINE


class _LogAdapter:
    """Forwards log records to the pipeline with whichever method name the SDK calls."""

    def __init__(self, pipeline: ExportPipeline) -> None:
        self.pipeline = pipeline

    def on_emit(self, log_record: Any) -> None:
        self.pipeline.on_emit(log_record)

    def emit(self, log_record: Any) -> None:
        self.pipeline.on_emit(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
