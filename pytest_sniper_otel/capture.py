"""Session-wide OpenTelemetry providers and per-test capture windows.

The SDK's global providers can be set once per process, and tracers or instruments that
code obtained at import time stay bound to them. So providers are installed once (or our
processors attached to an SDK provider someone else installed) and every finished span,
metric delta and log record is routed to the *current* window: the test being run. A
session-level "current" (not a contextvar) also catches spans ended in other threads.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import CaptureUnavailable

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, Span

    from .telemetry import Telemetry

_LOCK = threading.Lock()
_INSTALL_LOCK = threading.Lock()
_SESSION: SessionTelemetry | None = None
_READER: InMemoryMetricReader | None = None


def metric_reader() -> InMemoryMetricReader:
    """The reader the plugin reads metrics from.

    Readers can't be added to a MeterProvider after it is built. If your code builds its
    own SDK MeterProvider, pass this reader in ``metric_readers=[...]`` and the plugin will
    read from it.
    """
    global _READER
    with _LOCK:
        if _READER is None:
            from opentelemetry.sdk.metrics import (
                Counter,
                Histogram,
                ObservableCounter,
                ObservableUpDownCounter,
                UpDownCounter,
                _Gauge,
            )
            from opentelemetry.sdk.metrics.export import (
                AggregationTemporality,
                InMemoryMetricReader,
            )

            # DELTA: each collection returns only what changed since the last one, so a
            # test starts from zero instead of inheriting the previous tests' counts. A
            # synchronous gauge under CUMULATIVE repeats its last value on every collection:
            # a gauge set in one test would show up in every later test.
            delta = AggregationTemporality.DELTA
            _READER = InMemoryMetricReader(
                preferred_temporality={
                    _Gauge: delta,
                    Counter: delta,
                    UpDownCounter: delta,
                    Histogram: delta,
                    ObservableCounter: delta,
                    ObservableUpDownCounter: delta,
                }
            )
        return _READER


class SessionTelemetry:
    """Providers for this process and the window that currently receives telemetry."""

    def __init__(self) -> None:
        self.current: Telemetry | None = None
        # The window opened last: once closed, it may still read the metric deltas recorded
        # before its close, until another window opens and discards them.
        self.last_window: Telemetry | None = None
        self.setup: dict[str, str] = {}
        self.metrics_problem: str | None = None
        self.traces_problem: str | None = None
        self.logs_problem: str | None = None
        self.reader: InMemoryMetricReader | None = None
        self.logger_provider: Any = None
        self.tracer_provider: Any = None
        self._bridge: logging.Handler | None = None  # one stdlib -> OTel handler, reused
        self._seq = itertools.count()
        self._install_traces()
        self._install_metrics()
        self._install_logs()

    # installation --------------------------------------------------------------------
    def _install_traces(self) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

        session = self

        class _SpanRouter(SpanProcessor):
            def on_start(self, span: Span, parent_context: Any = None) -> None:
                window = session.current
                if window is not None:
                    window._span_started(span, next(session._seq))

            def on_end(self, span: ReadableSpan) -> None:
                window = session.current
                if window is not None:
                    window._span_ended(span)

        provider = trace.get_tracer_provider()
        if isinstance(provider, trace.ProxyTracerProvider):
            provider = TracerProvider()
            provider.add_span_processor(_SpanRouter())
            trace.set_tracer_provider(provider)
            self.setup["traces"] = "installed SDK TracerProvider"
        elif isinstance(provider, TracerProvider):
            provider.add_span_processor(_SpanRouter())
            self.setup["traces"] = f"attached to {_describe(provider)}"
        else:
            self.traces_problem = (
                f"the global TracerProvider is {_describe(provider)}, not an SDK TracerProvider; "
                "the plugin cannot attach a span processor to it"
            )
            self.setup["traces"] = f"UNAVAILABLE ({_describe(provider)})"
        self.tracer_provider = provider

    def _install_metrics(self) -> None:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider

        provider = metrics.get_meter_provider()
        if isinstance(provider, MeterProvider):
            reader = _READER
            if reader is not None and getattr(reader, "_collect", None) is not None:
                self.reader = reader
                self.setup["metrics"] = f"reading {_describe(provider)} via metric_reader()"
            else:
                self.metrics_problem = (
                    f"a {_describe(provider)} was installed before the plugin, and readers "
                    "can't be added to a MeterProvider after it is built. Let the plugin "
                    "install it, or pass pytest_sniper_otel.capture.metric_reader() in its "
                    "metric_readers=[...]"
                )
                self.setup["metrics"] = f"UNAVAILABLE (foreign {_describe(provider)})"
        elif type(provider).__name__.startswith("_Proxy") or "Proxy" in type(provider).__name__:
            self.reader = metric_reader()
            metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))
            self.setup["metrics"] = "installed SDK MeterProvider (DELTA reader)"
        else:
            self.metrics_problem = (
                f"the global MeterProvider is {_describe(provider)}, which the plugin cannot read"
            )
            self.setup["metrics"] = f"UNAVAILABLE ({_describe(provider)})"

    def _install_logs(self) -> None:
        from opentelemetry import _logs

        from .logs import is_sdk_logger_provider, new_logger_provider, routing_processor

        def sink(record: Any) -> None:
            window = self.current
            if window is not None:
                window._log_emitted(record)

        provider: Any = _logs.get_logger_provider()
        if is_sdk_logger_provider(provider):
            provider.add_log_record_processor(routing_processor(sink))
            self.setup["logs"] = f"attached to {_describe(provider)}"
        elif "Proxy" in type(provider).__name__:
            provider = new_logger_provider()
            provider.add_log_record_processor(routing_processor(sink))
            _logs.set_logger_provider(provider)
            self.setup["logs"] = "installed SDK LoggerProvider + logging bridge"
        else:
            self.logs_problem = f"the global LoggerProvider is {_describe(provider)}"
            self.setup["logs"] = f"UNAVAILABLE ({_describe(provider)})"
            provider = None
        self.logger_provider = provider

    # windows -------------------------------------------------------------------------
    def collect_metrics(self) -> Any:
        """One collection from the reader (DELTA since the previous one), or None."""
        if self.reader is None:
            return None
        return self.reader.get_metrics_data()

    @contextmanager
    def capture(
        self,
        *,
        log_level: int = logging.INFO,
        color: bool = False,
        clock: Callable[[], int] | None = None,
    ) -> Iterator[Telemetry]:
        """Route everything recorded inside the block to a fresh :class:`Telemetry`."""
        from .telemetry import Telemetry

        if self.current is not None:
            raise RuntimeError("a telemetry capture window is already open in this process")
        window = Telemetry(self, color=color, clock=clock)
        window._discard_pending_metrics()
        root = logging.getLogger()
        old_level = root.level
        handler = None
        if self.logger_provider is not None:
            if self._bridge is None:
                from .logs import bridge_handler

                self._bridge = bridge_handler(self.logger_provider)
            handler = self._bridge
            # The handler's own level enforces log_level: the root logger may already be
            # lower (pytest --log-level=DEBUG, a conftest's basicConfig).
            handler.setLevel(log_level)
            root.addHandler(handler)
            # Records below the root's level never reach a handler: lower it for the test
            # (NOTSET, 0, already lets everything through).
            if old_level > log_level:
                root.setLevel(log_level)
        self.current = window
        self.last_window = window
        try:
            yield window
        finally:
            self.current = None
            if handler is not None:
                root.removeHandler(handler)
                if root.level != old_level:
                    root.setLevel(old_level)
            window._closed = True

    def require(self, signal: str) -> None:
        __tracebackhide__ = True
        problem = {
            "traces": self.traces_problem,
            "metrics": self.metrics_problem,
            "logs": self.logs_problem,
        }[signal]
        if problem:
            raise CaptureUnavailable(f"sniper-otel cannot capture {signal}: {problem}")

    def describe(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.setup.items())


def _describe(provider: object) -> str:
    cls = type(provider)
    return f"{cls.__module__}.{cls.__qualname__}"


def install_session() -> SessionTelemetry:
    """Install (once per process) the providers, or attach to SDK ones already installed."""
    global _SESSION
    with _INSTALL_LOCK:
        if _SESSION is None:
            _SESSION = SessionTelemetry()
    return _SESSION


def installed_session() -> SessionTelemetry | None:
    return _SESSION


def preview() -> str:
    """What the first capture will install or attach to, read from the global providers as
    they are now without touching them; once installed, what it did.

    The report header uses this. Installing at header time would pre-empt a provider that
    a session fixture installs later (the SDK ignores a second set_tracer_provider): the
    user's exporters would go dark, and only in runs that print a header.
    """
    if _SESSION is not None:
        return _SESSION.describe()
    from opentelemetry import _logs, metrics, trace

    from .logs import is_sdk_logger_provider

    plan: dict[str, str] = {}
    tracer_provider = trace.get_tracer_provider()
    if isinstance(tracer_provider, trace.ProxyTracerProvider):
        plan["traces"] = "install SDK TracerProvider"
    elif _is_loaded_instance(tracer_provider, "opentelemetry.sdk.trace", "TracerProvider"):
        plan["traces"] = f"attach to {_describe(tracer_provider)}"
    else:
        plan["traces"] = f"UNAVAILABLE ({_describe(tracer_provider)})"
    meter_provider = metrics.get_meter_provider()
    if _is_loaded_instance(meter_provider, "opentelemetry.sdk.metrics", "MeterProvider"):
        if _READER is not None and getattr(_READER, "_collect", None) is not None:
            plan["metrics"] = f"read {_describe(meter_provider)} via metric_reader()"
        else:
            plan["metrics"] = f"UNAVAILABLE (foreign {_describe(meter_provider)})"
    elif "Proxy" in type(meter_provider).__name__:
        plan["metrics"] = "install SDK MeterProvider (DELTA reader)"
    else:
        plan["metrics"] = f"UNAVAILABLE ({_describe(meter_provider)})"
    logger_provider = _logs.get_logger_provider()
    if is_sdk_logger_provider(logger_provider, load=False):
        plan["logs"] = f"attach to {_describe(logger_provider)}"
    elif "Proxy" in type(logger_provider).__name__:
        plan["logs"] = "install SDK LoggerProvider + logging bridge"
    else:
        plan["logs"] = f"UNAVAILABLE ({_describe(logger_provider)})"
    return "on first use of the telemetry fixture: " + "; ".join(
        f"{k}: {v}" for k, v in plan.items()
    )


def _is_loaded_instance(obj: object, module: str, name: str) -> bool:
    # Without importing the SDK: if it isn't imported, nothing is an instance of its classes.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))
