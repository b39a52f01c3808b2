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

        provider: Any = trace.get_tracer_provider()
        action, detail = _assess("traces", provider)
        if action == "install":
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        if action == "unavailable":
            self.traces_problem = detail
        else:
            provider.add_span_processor(_SpanRouter())
        self.setup["traces"] = _done(action, "traces", provider)
        self.tracer_provider = provider

    def _install_metrics(self) -> None:
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider

        provider: Any = metrics.get_meter_provider()
        action, detail = _assess("metrics", provider)
        if action == "install":
            provider = MeterProvider(metric_readers=[metric_reader()])
            metrics.set_meter_provider(provider)
        if action == "unavailable":
            self.metrics_problem = detail
        else:
            self.reader = metric_reader()
        self.setup["metrics"] = _done(action, "metrics", provider)

    def _install_logs(self) -> None:
        from opentelemetry import _logs

        from .logs import new_logger_provider, routing_processor

        def sink(record: Any) -> None:
            window = self.current
            if window is not None:
                window._log_emitted(record)

        provider: Any = _logs.get_logger_provider()
        action, detail = _assess("logs", provider)
        if action == "install":
            provider = new_logger_provider()
            _logs.set_logger_provider(provider)
        self.setup["logs"] = _done(action, "logs", provider)
        if action == "unavailable":
            self.logs_problem = detail
            provider = None
        else:
            provider.add_log_record_processor(routing_processor(sink))
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
        verbose: bool = False,
    ) -> Iterator[Telemetry]:
        """Route everything recorded inside the block to a fresh :class:`Telemetry`
        (``verbose``: it prints every span in failures and report sections)."""
        from .telemetry import Telemetry

        if self.current is not None:
            raise RuntimeError("a telemetry capture window is already open in this process")
        window = Telemetry(self, color=color, clock=clock, verbose=verbose)
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

    providers = {
        "traces": trace.get_tracer_provider(),
        "metrics": metrics.get_meter_provider(),
        "logs": _logs.get_logger_provider(),
    }
    plan = {
        signal: _PLANNED[action].format(**_wording(signal, provider))
        for signal, provider in providers.items()
        for action in [_assess(signal, provider)[0]]
    }
    return "on first use of the telemetry fixture: " + "; ".join(
        f"{k}: {v}" for k, v in plan.items()
    )


# signal -> (SDK module, provider class, what is installed when the global is still a proxy)
_SDK = {
    "traces": ("opentelemetry.sdk.trace", "TracerProvider", "SDK TracerProvider"),
    "metrics": ("opentelemetry.sdk.metrics", "MeterProvider", "SDK MeterProvider (DELTA reader)"),
    "logs": ("opentelemetry.sdk._logs", "LoggerProvider", "SDK LoggerProvider + logging bridge"),
}
# How each decision reads in the report header, before and after it was carried out.
_PLANNED = {
    "install": "install {installs}",
    "attach": "attach to {provider}",
    "read": "read {provider} via metric_reader()",
    "unavailable": "UNAVAILABLE ({foreign}{provider})",
}
_DONE = {
    "install": "installed {installs}",
    "attach": "attached to {provider}",
    "read": "reading {provider} via metric_reader()",
    "unavailable": "UNAVAILABLE ({foreign}{provider})",
}


def _wording(signal: str, provider: object) -> dict[str, str]:
    module, name, installs = _SDK[signal]
    foreign = "foreign " if _is_loaded_instance(provider, module, name) else ""
    return {"provider": _describe(provider), "installs": installs, "foreign": foreign}


def _done(action: str, signal: str, provider: object) -> str:
    return _DONE[action].format(**_wording(signal, provider))


def _assess(signal: str, provider: object) -> tuple[str, str]:
    """What the plugin can do with a global provider, decided without importing the SDK.

    ``("install", "")`` while the API's proxy is in place; ``("attach", "")`` to an SDK
    tracer or logger provider; ``("read", "")`` an SDK MeterProvider built with
    :func:`metric_reader`; otherwise ``("unavailable", why)``.
    """
    if "Proxy" in type(provider).__name__:
        return "install", ""
    module, name, _ = _SDK[signal]
    described = _describe(provider)
    if not _is_loaded_instance(provider, module, name):
        why = {
            "traces": f"the global TracerProvider is {described}, not an SDK TracerProvider; "
            "the plugin cannot attach a span processor to it",
            "metrics": f"the global MeterProvider is {described}, which the plugin cannot read",
            "logs": f"the global LoggerProvider is {described}",
        }[signal]
        return "unavailable", why
    if signal != "metrics":
        return "attach", ""
    if _READER is not None and getattr(_READER, "_collect", None) is not None:
        return "read", ""
    return "unavailable", (
        f"a {described} was installed before the plugin, and readers can't be added to a "
        "MeterProvider after it is built. Let the plugin install it, or pass "
        "pytest_sniper_otel.capture.metric_reader() in its metric_readers=[...]"
    )


def _is_loaded_instance(obj: object, module: str, name: str) -> bool:
    # Without importing the SDK: if it isn't imported, nothing is an instance of its classes.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))
