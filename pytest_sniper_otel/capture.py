"""Session-wide OpenTelemetry providers and per-test capture windows.

The SDK's global providers can be set once per process, and tracers or instruments that
code obtained at import time stay bound to them. So providers are installed once (or our
processors attached to an SDK provider someone else installed) and every finished span,
metric delta and log record is routed to the *current* window: the test being run. A
session-level "current" (not a contextvar) also catches spans ended in other threads.

A span belongs to the window in which it started: one that outlives its test (a
background thread, a task) is listed in that test's ``open_spans`` and never lands in a
later test, and neither do log records written inside it.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .environment import environment_notes
from .errors import CaptureUnavailable, SniperOtelWarning

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, Span

    from .telemetry import Telemetry

_LOCK = threading.Lock()
_ENV_LOCK = threading.Lock()
_INSTALL_LOCK = threading.Lock()
_SESSION: SessionTelemetry | None = None
_Telemetry: type[Telemetry] | None = None  # imported by the first window
_NOT_A_WRAPPER = object()
_READER: InMemoryMetricReader | None = None
# (level before, level set) while the root logger is left lowered for the next window (a
# window closed with keep_log_level=True, or lower_root_level()); process-wide like the root.
_KEPT_ROOT_LEVEL: tuple[int, int] | None = None
# The logging bridge, left on the root logger by the same windows for the next one (it
# bridges nothing while no window is open); restore_root_level() takes it off.
_KEPT_BRIDGE: logging.Handler | None = None

SIGNALS = ("traces", "metrics", "logs")
# Instrumentation scopes that trace the test run itself, not the code under test.
HARNESS_SCOPES = frozenset({"pytest-opentelemetry"})
# How many closed windows are remembered, so a late log record written in the context of
# one of their spans is not mistaken for the current test's.
_REMEMBERED_WINDOWS = 4


def metric_reader() -> InMemoryMetricReader:
    """The reader the plugin reads metrics from.

    Readers can't be added to a MeterProvider after it is built. If your code builds its
    own SDK MeterProvider, pass this reader in ``metric_readers=[...]`` (logfire:
    ``logfire.MetricsOptions(additional_readers=[...])``) and the plugin will read from it.
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

    def __init__(self, *, metric_views: Sequence[Any] = ()) -> None:
        self.current: Telemetry | None = None
        # The window opened last: once closed, it may still read the metric deltas recorded
        # before its close, until another window opens and discards them.
        self.last_window: Telemetry | None = None
        self.setup: dict[str, str] = {}
        self.metrics_problem: str | None = None
        self.traces_problem: str | None = None
        self.logs_problem: str | None = None
        # Set when the tracer provider we attached to drops spans (sampler, disabled SDK).
        self.traces_dropped: str | None = None
        self._warned_dropped = False
        self.reader: InMemoryMetricReader | None = None
        # The SDK providers our processors sit on (behind a wrapper such as logfire's).
        self.logger_provider: Any = None
        self.tracer_provider: Any = None
        self._metric_views = tuple(metric_views)
        self._views_warned = False
        self._metrics_sdk: Any = None
        # The exemplar filter of a MeterProvider the plugin built: it notices measurements.
        self._measurements: Any = None
        # What each global provider was when we last looked, to notice a reset or a swap.
        self._globals: dict[str, Any] = {}
        self._bridge: logging.Handler | None = None  # one stdlib -> OTel handler, reused
        self._seq = itertools.count()
        # span id -> the window it started in, while the span is open.
        self._open_owner: dict[int, Telemetry] = {}
        # The span ids that started in the last closed windows (their start sequences):
        # the ids only, so a closed window's spans and trees are freed with the window.
        self._closed_windows: deque[dict[int, int]] = deque(maxlen=_REMEMBERED_WINDOWS)
        # span id -> scope of the open spans that trace the test run itself
        self.harness_spans: dict[int, str] = {}
        # (read the global, provider seen, its .provider if a wrapper): what
        # _follow_global_providers compares against before doing any real work.
        self._watched: tuple[tuple[Callable[[], Any], Any, Any], ...] = ()
        for signal in SIGNALS:
            self._setup(signal)
        self._watch_globals()

    # installation --------------------------------------------------------------------
    def _setup(self, signal: str) -> None:
        """Install, attach to or read the global provider of ``signal`` as it is now."""
        provider = _global_provider(signal)
        action, detail = _assess(signal, provider)
        if action == "install":
            provider = self._new_provider(signal)
            _set_global_provider(signal, provider)
        elif action == "fill":
            # A wrapper (logfire's ProxyMeterProvider) around a MeterProvider without any
            # reader: nothing reads it, so the wrapper gets one like it that has ours.
            inner = _sdk_provider(signal, provider)
            provider.set_meter_provider(self._new_provider(signal, like=inner))
        self._globals[signal] = provider
        sdk = _sdk_provider(signal, provider)
        setattr(self, f"{signal}_problem", detail if action == "unavailable" else None)
        if signal == "traces":
            self.traces_dropped = None
            if action != "unavailable":
                sdk.add_span_processor(_span_router(self))
                self.traces_dropped = None if action == "install" else _trace_drops(sdk)
            self.tracer_provider = sdk
        elif signal == "metrics":
            self.reader = None if action == "unavailable" else metric_reader()
            self._metrics_sdk = sdk
            if action not in ("install", "fill"):
                self._measurements = None
        else:
            from .logs import routing_processor

            if action != "unavailable":
                sdk.add_log_record_processor(routing_processor(self._route_log))
            self.logger_provider = sdk
            self._bridge = None
        self.setup[signal] = _done(action, signal, provider, self._install_notes(signal))

    def _new_provider(self, signal: str, *, like: Any = None) -> Any:
        # A test that asks for telemetry gets all of it: the providers the plugin installs
        # ignore OTEL_SDK_DISABLED and sample every span whatever OTEL_TRACES_SAMPLER says.
        with _sdk_enabled():
            if signal == "traces":
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.sampling import ALWAYS_ON

                return TracerProvider(sampler=ALWAYS_ON)
            if signal == "metrics":
                from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider

                # Views and resource of the provider it replaces, read where the SDK keeps
                # them (no public accessor), so its histograms keep their aggregation.
                config = getattr(like, "_sdk_config", None)
                views = (*getattr(config, "views", ()), *self._metric_views)
                resource = getattr(config, "resource", None)
                # No exemplars: no view of a capture shows them, and sampling them costs
                # every measurement a reservoir offer and every collection a bucket walk.
                watch = self._measurements = _measurement_watch(AlwaysOffExemplarFilter())
                return MeterProvider(
                    metric_readers=[metric_reader()], views=views, resource=resource,
                    exemplar_filter=watch,
                )
            from .logs import new_logger_provider

            return new_logger_provider()

    def _install_notes(self, signal: str) -> str:
        return _install_notes(signal, len(self._metric_views))

    def _watch_globals(self) -> None:
        from opentelemetry import _logs, metrics, trace

        read = {"traces": trace.get_tracer_provider, "metrics": metrics.get_meter_provider,
                "logs": _logs.get_logger_provider}
        watched = []
        for signal in SIGNALS:
            provider = self._globals[signal]
            inner = getattr(provider, "provider", _NOT_A_WRAPPER)
            watched.append((read[signal], provider, inner))
        self._watched = tuple(watched)

    def _follow_global_providers(self) -> None:
        """Notice a global provider that was reset or replaced since we last looked.

        opentelemetry-test-utils' ``TestBase`` resets the globals in ``tearDown``: later
        tests would get no-op tracers and an empty capture. The provider we used is set
        back (public ``set_*_provider``, allowed again after a reset); a new provider
        someone installed is attached to or read like at the start.
        """
        # Every window asks: nothing changed (the same globals, and the same provider inside
        # a wrapper) is answered with three reads and identity checks, without the lock.
        for read, seen, inner in self._watched:
            now = read()
            if now is not seen or (
                inner is not _NOT_A_WRAPPER and getattr(now, "provider", None) is not inner
            ):
                break
        else:
            return
        with _INSTALL_LOCK:
            self._follow_changed_providers()

    def _follow_changed_providers(self) -> None:
        for signal in SIGNALS:
            before = self._globals[signal]
            now = _global_provider(signal)
            if now is before:
                sdk = _sdk_provider(signal, now)
                ours = {"traces": self.tracer_provider, "metrics": self._metrics_sdk,
                        "logs": self.logger_provider}[signal]
                if sdk is None or ours is None or sdk is ours:
                    continue
                if signal == "metrics" and self.reader is not None:
                    # The reader belongs to the replaced provider; a reader joins one only.
                    self.reader = None
                    self.metrics_problem = (
                        f"the SDK MeterProvider inside {_describe(now)} was replaced after "
                        "the plugin read it (logfire.configure() called again?); configure "
                        "it once, with logfire.MetricsOptions(additional_readers="
                        "[metric_reader()])"
                    )
                    self.setup[signal] = f"UNAVAILABLE ({self.metrics_problem})"
                    self._metrics_sdk = sdk
                else:
                    self._setup(signal)
                _warn(f"the SDK {_KIND[signal]} inside {_describe(now)} was replaced; "
                      f"sniper-otel {self.setup[signal]}")
            elif _is_api_placeholder(signal, now) and not _is_api_placeholder(signal, before):
                _set_global_provider(signal, before)
                _warn(f"the global {_KIND[signal]} was reset (opentelemetry-test-utils' "
                      f"TestBase does this in tearDown); sniper-otel set {_describe(before)} "
                      "back")
            else:
                self._setup(signal)
                _warn(f"the global {_KIND[signal]} changed to {_describe(now)}; "
                      f"sniper-otel {self.setup[signal]}")
        self._watch_globals()

    # routing (called by the processors, from any thread) -------------------------------
    def _route_log(self, record: Any) -> None:
        window = self.current
        if window is None:
            return
        span_id = record.log_record.span_id
        if span_id and span_id not in window._start_seq:
            owner = self._open_owner.get(span_id)
            if (owner is not None and owner is not window) or any(
                span_id in started for started in self._closed_windows
            ):
                return  # written inside a span of another test
        window._log_emitted(record)

    def warn_if_dropping(self) -> None:
        """Once per session: the provider we attached to drops spans before we see them."""
        if self.traces_dropped and not self._warned_dropped:
            self._warned_dropped = True
            _warn(f"{self.traces_dropped}: spans it does not record are not captured",
                  stacklevel=4)

    # windows -------------------------------------------------------------------------
    def collect_metrics(self) -> Any:
        """One collection from the reader (DELTA since the previous one), or None."""
        reader = self.reader
        if reader is None:
            return None
        watch = self._measurements
        if watch is not None:
            watch.recorded = False  # before: one recorded during the collection is new
        return reader.get_metrics_data()

    def discard_metrics(self) -> None:
        """Drop what was recorded so far (a window opens): collected (DELTA) and not kept.

        Skipped when the collection would return nothing: no measurement reached the
        MeterProvider the plugin built since the last collection, and it has no
        asynchronous instrument (their callbacks run at collection time). A collection
        costs as much as the rest of a window, more with every instrument created.
        """
        watch = self._measurements
        if watch is not None and not watch.recorded and not self._has_observables():
            return
        self.collect_metrics()

    def _has_observables(self) -> bool:
        # Where SDK 1.45 keeps them: no public accessor. Unreadable counts as "yes".
        consumer = getattr(self._metrics_sdk, "_measurement_consumer", None)
        return bool(getattr(consumer, "_async_instruments", True))

    @contextmanager
    def capture(
        self,
        *,
        log_level: int = logging.INFO,
        color: bool = False,
        clock: Callable[[], int] | None = None,
        verbose: bool = False,
        nested: bool = False,
    ) -> Iterator[Telemetry]:
        """Route everything recorded inside the block to a fresh :class:`Telemetry`
        (``verbose``: it prints every span in failures and report sections).

        One window is open at a time. ``nested=True`` opens one inside another (a control
        run inside a test, say): the outer window keeps the metrics recorded so far, gets
        nothing recorded inside the block, and resumes, with its log level, afterwards.
        """
        opened = self.open_window(
            log_level=log_level, color=color, clock=clock, verbose=verbose, nested=nested
        )
        try:
            yield opened.window
        finally:
            opened.close()

    def open_window(
        self,
        *,
        log_level: int = logging.INFO,
        color: bool = False,
        clock: Callable[[], int] | None = None,
        verbose: bool = False,
        nested: bool = False,
        keep_log_level: bool = False,
    ) -> OpenWindow:
        """:meth:`capture` without the ``with`` block: the caller closes the returned
        window (``.close()``), as the pytest plugin does after a test's last teardown.

        ``keep_log_level=True``: closing leaves the root logger at the level the window
        lowered it to, for the next window to reuse; :meth:`restore_log_level` sets it back.
        Setting a logger's level empties the level cache of every logger in the process,
        which costs more than the rest of a window (the plugin keeps it across consecutive
        tests that use ``telemetry`` and restores it before any other test).
        """
        global _Telemetry, _KEPT_ROOT_LEVEL, _KEPT_BRIDGE
        outer = self.current
        if outer is not None and not nested:
            raise RuntimeError(
                "a telemetry capture window is already open in this process; "
                "open another inside it with capture(nested=True)"
            )
        if outer is not None:
            outer._collect_pending_metrics()
        self._follow_global_providers()
        if _Telemetry is None:
            from .telemetry import Telemetry

            _Telemetry = Telemetry
        window = _Telemetry(self, color=color, clock=clock, verbose=verbose)
        self.discard_metrics()
        opened = OpenWindow(self, window, outer, keep_log_level)
        root = logging.root
        kept, _KEPT_ROOT_LEVEL = _KEPT_ROOT_LEVEL, None
        kept_bridge, _KEPT_BRIDGE = _KEPT_BRIDGE, None
        # Lowered by a window that closed since: what to restore is what it found.
        old_level = kept[0] if kept is not None and root.level == kept[1] else root.level
        opened.old_level = old_level
        if self.logs_problem is None:
            if self._bridge is None:
                from .logs import bridge_handler

                self._bridge = bridge_handler(
                    self.logger_provider, active=lambda: self.current is not None
                )
            handler = opened.handler = self._bridge
            if handler is kept_bridge and handler in root.handlers:
                pass  # left attached by the window before: this one's to take off
            else:
                opened.attached = handler in root.handlers  # by the outer window
                opened.handler_level = handler.level
                root.addHandler(handler)
            # The handler's own level enforces log_level: the root logger may already be
            # lower (pytest --log-level=DEBUG, a conftest's basicConfig).
            if handler.level != log_level:
                handler.setLevel(log_level)
            # Records below the root's level never reach a handler: lower it for the test
            # (NOTSET, 0, already lets everything through).
            wanted = log_level if old_level > log_level else old_level
            if root.level != wanted:
                root.setLevel(wanted)
            opened.set_level = wanted
        elif kept is not None and root.level == kept[1]:
            root.setLevel(old_level)
        if kept_bridge is not None and kept_bridge is not opened.handler:
            root.removeHandler(kept_bridge)  # the bridge of a provider replaced since
        self.current = window
        self.last_window = window
        return opened

    def restore_log_level(self) -> None:
        """Set the root logger's level back where a window closed with
        ``keep_log_level=True`` left it lowered (unless someone changed it since)."""
        restore_root_level()

    @property
    def keeps_log_level(self) -> bool:
        """Whether the root logger's level is still lowered by a closed window."""
        return _KEPT_ROOT_LEVEL is not None

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


class OpenWindow:
    """A window opened by :meth:`SessionTelemetry.open_window`: ``window`` receives the
    telemetry until :meth:`close`, which puts the logging set-up back as it found it."""

    __slots__ = ("_closed", "_keep_log_level", "_outer", "_session", "attached", "handler",
                 "handler_level", "old_level", "set_level", "window")

    def __init__(
        self, session: SessionTelemetry, window: Telemetry, outer: Telemetry | None,
        keep_log_level: bool,
    ) -> None:
        self._session = session
        self.window = window
        self._outer = outer
        self._keep_log_level = keep_log_level
        self._closed = False
        self.handler: logging.Handler | None = None
        self.attached = False
        self.handler_level = logging.NOTSET
        self.old_level = self.set_level = logging.NOTSET

    def close(self) -> None:
        global _KEPT_ROOT_LEVEL, _KEPT_BRIDGE
        if self._closed:
            return
        self._closed = True
        session, window, outer = self._session, self.window, self._outer
        if outer is not None:
            # What the block recorded is the inner window's, not the resumed outer's.
            window._collect_pending_metrics()
            session.last_window = outer
        session.current = outer
        session._closed_windows.append(window._start_seq)
        # Its spans that never ended can't be captured any more: don't keep it alive.
        if window._open:
            for span_id in list(window._open):
                session._open_owner.pop(span_id, None)
        handler = self.handler
        if handler is not None:
            root = logging.root
            if self.attached:
                handler.setLevel(self.handler_level)
            elif self._keep_log_level and outer is None:
                # Left attached for the next window, as the root's level is left lowered:
                # adding and removing a handler take logging's module lock.
                _KEPT_BRIDGE = handler
            else:
                root.removeHandler(handler)
            level = root.level
            if level != self.old_level:
                if self._keep_log_level and outer is None and level == self.set_level:
                    _KEPT_ROOT_LEVEL = (self.old_level, level)
                else:
                    root.setLevel(self.old_level)
        window._closed = True


def lower_root_level(level: int) -> None:
    """Lower the root logger to ``level`` now (never raise it), as a window closed with
    ``keep_log_level=True`` leaves it: the next window finds it lowered and knows the level
    to put back; :func:`restore_root_level` puts it back.

    The pytest plugin calls it before a test's phases: pytest's own log capture
    (``--log-level``) saves the root's level when each phase starts and sets it back when it
    ends, so a lowering done inside the setup phase would be gone for the test's call.
    """
    global _KEPT_ROOT_LEVEL
    root = logging.root
    kept = _KEPT_ROOT_LEVEL
    if kept is not None and root.level == kept[1]:
        return
    _KEPT_ROOT_LEVEL = None  # someone set the level since: theirs is the one to keep
    if root.level > level:  # NOTSET (0) already lets everything through
        _KEPT_ROOT_LEVEL = (root.level, level)
        root.setLevel(level)


def restore_root_level() -> None:
    """Put the root logger's level back where :func:`lower_root_level` or a window closed
    with ``keep_log_level=True`` found it (unless someone changed it since), and take the
    logging bridge such a window left attached off it."""
    global _KEPT_ROOT_LEVEL, _KEPT_BRIDGE
    kept, _KEPT_ROOT_LEVEL = _KEPT_ROOT_LEVEL, None
    if kept is not None and logging.root.level == kept[1]:
        logging.root.setLevel(kept[0])
    bridge, _KEPT_BRIDGE = _KEPT_BRIDGE, None
    if bridge is not None:
        logging.root.removeHandler(bridge)


def _measurement_watch(wrapped: Any) -> Any:
    """An exemplar filter that notes each measurement (the SDK asks its filter about every
    one) and leaves the sampling decision to ``wrapped``."""
    from opentelemetry.sdk.metrics import ExemplarFilter

    sample = wrapped.should_sample

    class MeasurementWatch(ExemplarFilter):
        def __init__(self) -> None:
            self.recorded = True  # until the first collection

        def should_sample(
            self, value: float, time_unix_nano: int, attributes: Any, context: Any
        ) -> bool:
            self.recorded = True
            return bool(sample(value, time_unix_nano, attributes, context))

    return MeasurementWatch()


def _span_router(session: SessionTelemetry) -> Any:
    from opentelemetry.sdk.trace import SpanProcessor

    # Called for every span: the session's maps are bound once, here.
    open_owner = session._open_owner
    harness_spans = session.harness_spans
    seq = session._seq

    class SpanRouter(SpanProcessor):
        def on_start(self, span: Span, parent_context: Any = None) -> None:
            window = session.current
            context = span.context
            if window is None or context is None:
                return
            span_id = context.span_id
            scope = span.instrumentation_scope
            if scope is not None and scope.name in HARNESS_SCOPES:
                harness_spans[span_id] = scope.name
                return
            open_owner[span_id] = window
            window._span_started(span, next(seq), span_id)

        def on_end(self, span: ReadableSpan) -> None:
            context = span.context
            if context is None:
                return
            span_id = context.span_id
            # Only the window it started in, and only while that window is open: not one
            # started outside any window or by the test harness.
            owner = open_owner.pop(span_id, None)
            if owner is None:
                harness_spans.pop(span_id, None)
            elif owner is session.current:
                owner._span_ended(span, span_id)

    return SpanRouter()


def _warn(message: str, *, stacklevel: int = 2) -> None:
    warnings.warn(SniperOtelWarning(f"sniper-otel: {message}"), stacklevel=stacklevel)


@contextmanager
def _sdk_enabled() -> Iterator[None]:
    # The SDK reads OTEL_SDK_DISABLED in each provider's constructor.
    with _ENV_LOCK:
        saved = os.environ.pop("OTEL_SDK_DISABLED", None)
        try:
            yield
        finally:
            if saved is not None:
                os.environ["OTEL_SDK_DISABLED"] = saved


def _describe(provider: object) -> str:
    cls = type(provider)
    return f"{cls.__module__}.{cls.__qualname__}"


def install_session(*, metric_views: Sequence[Any] = ()) -> SessionTelemetry:
    """Install (once per process) the providers, or attach to SDK ones already installed.

    ``metric_views`` (SDK ``View`` objects) go to the MeterProvider the plugin installs;
    they are used by the first call only.
    """
    global _SESSION
    with _INSTALL_LOCK:
        if _SESSION is None:
            _SESSION = SessionTelemetry(metric_views=metric_views)
        elif metric_views and not _SESSION._metric_views and not _SESSION._views_warned:
            _SESSION._views_warned = True
            _warn(
                f"{len(metric_views)} metric view(s) arrived after the providers were set up "
                f"({_SESSION.setup['metrics']}) and do not apply; install_session() was "
                "called before the first test that uses telemetry",
                stacklevel=3,
            )
    return _SESSION


def installed_session() -> SessionTelemetry | None:
    return _SESSION


def preview(*, metric_views: int = 0) -> str:
    """What the first capture will install or attach to, read from the global providers as
    they are now without touching them; once installed, what it did.

    The report header uses this. Installing at header time would pre-empt a provider that
    a session fixture installs later (the SDK ignores a second set_tracer_provider): the
    user's exporters would go dark, and only in runs that print a header.
    """
    if _SESSION is not None:
        return _SESSION.describe()
    plan = {}
    for signal in SIGNALS:
        provider = _global_provider(signal)
        action = _assess(signal, provider)[0]
        plan[signal] = _PLANNED[action].format(
            **_wording(signal, provider, _install_notes(signal, metric_views))
        )
    return "on first use of the telemetry fixture: " + "; ".join(
        f"{k}: {v}" for k, v in plan.items()
    )


# signal -> (SDK module, provider class, what is installed when the global is still a proxy)
_SDK = {
    "traces": ("opentelemetry.sdk.trace", "TracerProvider", "SDK TracerProvider"),
    "metrics": ("opentelemetry.sdk.metrics", "MeterProvider", "SDK MeterProvider"),
    "logs": ("opentelemetry.sdk._logs", "LoggerProvider", "SDK LoggerProvider + logging bridge"),
}
_KIND = {"traces": "TracerProvider", "metrics": "MeterProvider", "logs": "LoggerProvider"}
# The API's stand-in until a provider is set, which is also what a reset leaves behind. The
# metrics one is underscore-private: no public name says "nothing was set yet".
_PLACEHOLDER = {
    "traces": ("opentelemetry.trace", "ProxyTracerProvider"),
    "metrics": ("opentelemetry.metrics._internal", "_ProxyMeterProvider"),
    "logs": ("opentelemetry._logs._internal", "ProxyLoggerProvider"),
}
# How each decision reads in the report header, before and after it was carried out.
_PLANNED = {
    "install": "install {installs}",
    "attach": "attach to {provider}{drops}",
    "read": "read {provider} via metric_reader()",
    "fill": "give {provider} (no reader) one with metric_reader()",
    "unavailable": "UNAVAILABLE ({foreign}{provider}{why})",
}
_DONE = {
    "install": "installed {installs}",
    "attach": "attached to {provider}{drops}",
    "read": "reading {provider} via metric_reader()",
    "fill": "gave {wrapper} a MeterProvider with metric_reader() (its own had no reader)",
    "unavailable": "UNAVAILABLE ({foreign}{provider}{why})",
}


def _install_notes(signal: str, metric_views: int) -> str:
    """What a provider the plugin installs holds, and where it differs from what the
    environment asks for."""
    parts = []
    if signal == "metrics":
        parts.append("DELTA reader")
        if metric_views:
            parts.append(f"{metric_views} view{'' if metric_views == 1 else 's'}")
    parts += environment_notes(signal)
    return f" ({', '.join(parts)})" if parts else ""


def _wording(signal: str, provider: object, installs_note: str = "") -> dict[str, str]:
    installs = _SDK[signal][2]
    sdk = _sdk_provider(signal, provider)
    described = _describe(provider)
    if sdk is not None and sdk is not provider:
        described += f" wrapping {_describe(sdk)}"
    drops = ""
    if signal == "traces" and sdk is not None and not _is_api_placeholder(signal, provider):
        dropped = _trace_drops(sdk)
        drops = f", which {dropped.split(', which ', 1)[1]}" if dropped else ""
    why = ""
    if signal == "metrics" and sdk is not None and _has_no_reader(sdk):
        why = " without a metric reader"
    return {
        "wrapper": _describe(provider),
        "provider": described,
        "installs": installs + installs_note,
        "foreign": "foreign " if sdk is not None else "",
        "drops": drops,
        "why": why,
    }


def _done(action: str, signal: str, provider: object, installs_note: str = "") -> str:
    return _DONE[action].format(**_wording(signal, provider, installs_note))


def _assess(signal: str, provider: object) -> tuple[str, str]:
    """What the plugin can do with a global provider, decided without importing the SDK.

    ``("install", "")`` while the API's placeholder is in place; ``("attach", "")`` to an
    SDK tracer or logger provider (or a wrapper around one, like logfire's); ``("read",
    "")`` an SDK MeterProvider built with :func:`metric_reader`; otherwise
    ``("unavailable", why)``.
    """
    if _is_api_placeholder(signal, provider):
        return "install", ""
    described = _describe(provider)
    sdk = _sdk_provider(signal, provider)
    if sdk is None:
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
    if sdk is not provider and _has_no_reader(sdk) and callable(
        getattr(provider, "set_meter_provider", None)
    ):
        return "fill", ""
    readerless = _has_no_reader(sdk)
    what = f"a {_describe(sdk)}" + (" without any metric reader" if readerless else "")
    who = ""
    if readerless and "pytest_opentelemetry" in sys.modules:
        # the likely installer, named so the user need not hunt for it
        who = (". pytest-opentelemetry is loaded and installs one when pytest configures; "
               "a MeterProvider set in conftest.py comes first")
    return "unavailable", (
        f"{what} was installed before the plugin, and readers can't be added to a "
        "MeterProvider after it is built. Let the plugin install it, or pass "
        "pytest_sniper_otel.capture.metric_reader() in its metric_readers=[...] "
        "(logfire: logfire.configure(metrics=logfire.MetricsOptions("
        f"additional_readers=[metric_reader()]))){who}"
    )


def _trace_drops(sdk_provider: Any) -> str | None:
    """Why an SDK TracerProvider records fewer spans than the code starts, or None."""
    from opentelemetry.trace import NoOpTracer

    described = _describe(sdk_provider)
    if isinstance(sdk_provider.get_tracer("pytest_sniper_otel.probe"), NoOpTracer):
        return f"the global {described}, which records no spans (OTEL_SDK_DISABLED=true)"
    sampler = getattr(sdk_provider, "sampler", None)
    if sampler is None:
        return None
    description = sampler.get_description()
    if description == "AlwaysOnSampler" or description.startswith(
        "ParentBased{root:AlwaysOnSampler,"
    ):
        return None
    return f"the global {described}, which drops spans (sampler {description})"


def _has_no_reader(sdk_meter_provider: Any) -> bool:
    # No public accessor lists a MeterProvider's readers; read only to word the message.
    config = getattr(sdk_meter_provider, "_sdk_config", None)
    return config is not None and not tuple(getattr(config, "metric_readers", ()) or ())


def _global_provider(signal: str) -> Any:
    if signal == "traces":
        from opentelemetry import trace

        return trace.get_tracer_provider()
    if signal == "metrics":
        from opentelemetry import metrics

        return metrics.get_meter_provider()
    from opentelemetry import _logs

    return _logs.get_logger_provider()


def _set_global_provider(signal: str, provider: Any) -> None:
    if signal == "traces":
        from opentelemetry import trace

        trace.set_tracer_provider(provider)
    elif signal == "metrics":
        from opentelemetry import metrics

        metrics.set_meter_provider(provider)
    else:
        from opentelemetry import _logs

        _logs.set_logger_provider(provider)


def _is_api_placeholder(signal: str, provider: object) -> bool:
    return _is_loaded_instance(provider, *_PLACEHOLDER[signal])


def _sdk_provider(signal: str, provider: object) -> Any:
    """The SDK provider behind ``provider``: itself, or the one a wrapper holds in
    ``.provider`` (logfire's Proxy*Provider classes), else None."""
    module, name, _ = _SDK[signal]
    if _is_loaded_instance(provider, module, name):
        return provider
    inner = getattr(provider, "provider", None)
    if inner is not None and _is_loaded_instance(inner, module, name):
        return inner
    return None


def _is_loaded_instance(obj: object, module: str, name: str) -> bool:
    # Without importing the SDK: if it isn't imported, nothing is an instance of its classes.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))
