"""A simulated clock that OpenTelemetry timestamps follow.

The SDK stamps spans and log records with ``time.time_ns``; freezegun patches it (and
``time.monotonic``/``perf_counter``), so under a frozen clock a span lasts exactly the
simulated time ticked inside it, in no wall time. The SDK modules that stamp spans, metric
points and log records read the running SimClock directly instead (the same values, without
freezegun's per-call stack inspection, which costs more than the rest of a ``time_ns()``),
so every OTel timestamp follows the simulated clock, in whichever thread it is taken. Pass
``otel_follows=False`` to leave OpenTelemetry on the real clock (real span durations) while
the code under test sees simulated time.

While it runs, asyncio event loops in its thread run on it (see ``clock_asyncio``), and
``time.sleep`` in its thread advances it and returns at once. pytest's own timing
(``--durations``, junit-xml, the session's duration) stays on the real clock.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time as _time
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

DEFAULT_START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# pytest measures durations through _pytest.timing; freezegun's own default list names
# "_pytest.runner." (with a dot), which does not cover it.
# OTLP exporters compute their retry and request deadlines from time.time(): on the
# simulated clock they would never expire (a flush against a hung collector took ~100 s).
_REAL_TIME_MODULES = ["_pytest.timing", "opentelemetry.exporter"]
# Where the SDK (and the logging instrumentation) stamps spans, span events, metric points
# and log records with a module-level ``time_ns``. A module missing here (renamed in a later
# SDK) still follows the clock, through freezegun.
_OTEL_STAMPING_MODULES = (
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.metrics._internal.instrument",
    "opentelemetry.sdk.metrics._internal.measurement_consumer",
    "opentelemetry.sdk.metrics._internal.metric_reader_storage",
    "opentelemetry.sdk.metrics._internal._view_instrument_match",
    "opentelemetry.sdk._logs._internal",
    "opentelemetry.instrumentation.logging.handler",
)
_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)


@runtime_checkable
class Clock(Protocol):
    """What code driven by the harness needs from a clock: :class:`SimClock` in tests and
    chaos runs, :class:`RealClock` in load tests, where latency must cost real time."""

    def now(self) -> dt.datetime: ...

    def time(self) -> float: ...

    def tick(self, seconds: float) -> None: ...


class RealClock:
    """The real clock: ``tick`` sleeps (cooperatively under gevent, which patches sleep)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def time(self) -> float:
        return _time.time()

    def tick(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"tick() takes a non-negative duration, got {seconds!r}")
        _time.sleep(seconds)

    def __repr__(self) -> str:
        return "<RealClock>"


class SimClock:
    """Simulated wall and monotonic time, backed by freezegun.

    Use it as a context manager, or through the ``clock`` fixture which starts it for one
    test. Time only moves when told to: :meth:`tick`, :meth:`jump` or :meth:`move_to`.

    freezegun gives real time to a call of a frozen ``time`` function made from a module
    it ignores (pytest's timing, OTLP exporters, ``threading``, ``queue``...), which it
    tells by inspecting the caller's stack on every call. ``real_time_callers=False`` skips
    that inspection, so every such call reads the simulated clock: for a run that takes
    real time only from clocks it is given (as :func:`real_monotonic`), like the chaos
    runner, whose export worker does. Those modules still keep the real functions they
    imported by name (``from time import monotonic``).
    """

    def __init__(
        self,
        start: dt.datetime | str | None = None,
        *,
        otel_follows: bool = True,
        real_time_callers: bool = True,
    ) -> None:
        if isinstance(start, str):
            start = dt.datetime.fromisoformat(start)
        self._start = start or DEFAULT_START
        if self._start.tzinfo is None:
            self._start = self._start.replace(tzinfo=dt.UTC)
        self.otel_follows = otel_follows
        self.real_time_callers = real_time_callers
        self._freezer: Any = None
        self._factory: Any = None
        self._thread = 0
        self._monotonic_ns = 0
        # freezegun's current datetime, its microseconds since the epoch and time_ns()
        # and time.monotonic() (freezegun's: the frozen wall time in seconds)
        self._reading: tuple[dt.datetime | None, int, int, float] = (None, 0, 0, 0.0)
        self._stamping: list[tuple[Any, Any]] = []  # (module, freezegun's time_ns there)

    # lifecycle -------------------------------------------------------------------
    def start(self) -> SimClock:
        if self._factory is not None:
            raise RuntimeError("SimClock is already running")
        from freezegun import freeze_time

        from . import clock_asyncio

        ignore = [*_REAL_TIME_MODULES, *([] if self.otel_follows else ["opentelemetry"])]
        # tick=False: freezegun's ticking time_ns is float-based and rounds; we want exact.
        # real_asyncio: loops of other threads keep real time rather than hang; the loops
        # of this thread follow this clock (clock_asyncio).
        self._freezer = freeze_time(self._start, tick=False, ignore=ignore, real_asyncio=True)
        self._factory = self._freezer.start()
        if not self.real_time_callers:
            # freezegun inspects the stack only while its innermost ignore list is not
            # empty; its stop() drops the list, whatever it holds
            sys.modules["freezegun.api"].ignore_lists[-1] = ()
        self._thread = threading.get_ident()
        self._monotonic_ns = 0
        self._stamp_otel()
        _SLEEP.clock_started(self)
        clock_asyncio.clock_started(self)
        return self

    def stop(self) -> None:
        if self._factory is not None:
            from freezegun import api as freezegun_api

            from . import clock_asyncio

            # freezegun stops whichever freezer started last, so stopping out of order would
            # leave the later clock's time in force and break its own stop() later on
            started = freezegun_api.freeze_factories
            if self._factory in started and started[-1] is not self._factory:
                raise RuntimeError(
                    "SimClock.stop(): a clock or freeze_time started after this one is still "
                    "running; stop clocks in reverse order of start (nest them)"
                )

            clock_asyncio.clock_stopped(self)
            _SLEEP.clock_stopped(self)
            self._unstamp_otel()
        if self._freezer is not None:
            self._freezer.stop()
        self._freezer = None
        self._factory = None

    def _stamp_otel(self) -> None:
        """The stamping modules read this clock (or, for ``otel_follows=False``, go back to
        freezegun, which then gives them real time) until it stops; a clock started inside
        another takes over from it and hands back when it stops."""
        frozen = _time.time_ns  # freezegun's, now that it has started
        for name in _OTEL_STAMPING_MODULES:
            module: Any = sys.modules.get(name)
            if module is None:
                continue
            current = getattr(module, "time_ns", None)
            if current is frozen or isinstance(getattr(current, "__self__", None), SimClock):
                module.time_ns = self.time_ns if self.otel_follows else frozen
                self._stamping.append((module, current))

    def _unstamp_otel(self) -> None:
        # freezegun's stop() puts the real time_ns back where it finds its own
        mine = self.time_ns if self.otel_follows else _time.time_ns
        for module, previous in reversed(self._stamping):
            if getattr(module, "time_ns", None) == mine:
                module.time_ns = previous
        self._stamping = []

    @property
    def running(self) -> bool:
        return self._factory is not None

    def __enter__(self) -> SimClock:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # reading ---------------------------------------------------------------------
    def now(self) -> dt.datetime:
        """The simulated time as an aware UTC datetime."""
        self._require_running()
        return dt.datetime.now(dt.UTC)

    def time(self) -> float:
        """The simulated time as seconds since the epoch (``now().timestamp()``)."""
        return self._read()[1] / 1_000_000

    def time_ns(self) -> int:
        """The simulated time as ``time.time_ns()`` reads it under freezegun (through a
        float: a multiple of about 256 ns, not exact)."""
        return self._read()[2]

    def _read(self) -> tuple[dt.datetime | None, int, int, float]:
        factory = self._factory
        if factory is None:
            self._require_running()
        now = factory()
        reading = self._reading
        if reading[0] is not now:  # time moved since the last reading
            us = (now - _EPOCH) // _MICROSECOND
            seconds, micros = divmod(us, 1_000_000)
            # freezegun's fake_time_ns(), step by step: int((timegm + us / 1e6) * 1e9), and
            # its fake_monotonic(): timegm + us / 1e6
            frozen_seconds = seconds + micros / 1000000.0
            reading = self._reading = (now, us, int(frozen_seconds * 1e9), frozen_seconds)
        return reading

    def monotonic_ns(self) -> int:
        """Simulated nanoseconds ticked since the clock started: what asyncio loops on this
        clock read. Unlike wall time, :meth:`jump` and :meth:`move_to` don't move it."""
        return self._monotonic_ns

    def elapsed(self) -> float:
        """Simulated seconds since the clock started (negative after a backward jump)."""
        return (self.now() - self._start).total_seconds()

    # moving ----------------------------------------------------------------------
    def tick(self, seconds: float) -> None:
        """Advance time by ``seconds`` (>= 0). Spans open now get that much longer."""
        if seconds < 0:
            raise ValueError(f"tick() takes a non-negative duration, got {seconds!r}; use jump()")
        self.advance_ns(round(seconds * 1_000_000_000))

    def advance_ns(self, nanoseconds: int) -> None:
        """:meth:`tick` in integer nanoseconds. Wall time (freezegun) moves in whole
        microseconds: the sum of the ticks, never drifting from :meth:`monotonic_ns`."""
        if nanoseconds < 0:
            raise ValueError(f"advance_ns() takes a non-negative duration, got {nanoseconds!r}")
        self._require_running()
        before_us = self._monotonic_ns // 1000
        self._monotonic_ns += nanoseconds
        delta_us = self._monotonic_ns // 1000 - before_us
        if delta_us:
            self._factory.tick(dt.timedelta(microseconds=delta_us))

    def jump(self, seconds: float) -> None:
        """Move wall time forward or backward, as an NTP step or a VM resume would."""
        self._require_running()
        self._factory.move_to(self.now() + dt.timedelta(seconds=seconds))

    def move_to(self, when: dt.datetime | str) -> None:
        self._require_running()
        self._factory.move_to(when)

    def _require_running(self) -> None:
        if self._factory is None:
            raise RuntimeError("SimClock is not running: use it as a context manager or start()")

    def __repr__(self) -> str:
        state = self.now().isoformat() if self.running else "stopped"
        return f"<SimClock {state}>"


class _SleepOnClock:
    """``time.sleep`` while a SimClock runs: in the clock's thread it advances the clock and
    returns at once (a retry back-off costs simulated time, not wall time); in other threads
    it really sleeps."""

    def __init__(self) -> None:
        self._clocks: list[SimClock] = []
        self._real: Any = None

    def clock_started(self, clock: SimClock) -> None:
        if not self._clocks:
            self._real = _time.sleep
            _time.sleep = self.sleep  # type: ignore[assignment]
        self._clocks.append(clock)

    def clock_stopped(self, clock: SimClock) -> None:
        self._clocks = [c for c in self._clocks if c is not clock]
        if not self._clocks and self._real is not None:
            _time.sleep = self._real
            self._real = None

    def sleep(self, seconds: float) -> None:
        __tracebackhide__ = True
        me = threading.get_ident()
        clock = next((c for c in reversed(self._clocks) if c._thread == me), None)
        if clock is None or seconds == 0:
            self._real(seconds)  # 0: still yields the GIL, as callers expect
            return
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        clock.tick(seconds)


_SLEEP = _SleepOnClock()


def monotonic() -> float:
    """``time.monotonic()`` as code frozen by the running SimClock reads it (freezegun's
    value: the simulated wall time in seconds, which jumps move too), without freezegun's
    stack inspection on each call; ``time.monotonic()`` itself when no SimClock runs, or
    when something else froze time inside it."""
    clocks = _SLEEP._clocks
    if clocks:
        clock = clocks[-1]
        factories = sys.modules["freezegun.api"].freeze_factories
        if factories and factories[-1] is clock._factory:
            return clock._read()[3]
    return _time.monotonic()


def real_monotonic_ns() -> int:
    """Real monotonic nanoseconds, whatever clock is frozen or moved: for how long a test
    really waits (deadlines, export budgets, progress lines), unlike :func:`monotonic`,
    which reads the simulated clock. Read through ``freezegun.api`` at each call: freezegun
    swaps its saved real functions for fakes in every other module it scans when it starts,
    a name imported from it included."""
    api: Any = sys.modules.get("freezegun.api")
    if api is None:  # freezegun not loaded: nothing froze time
        return _time.monotonic_ns()
    ns: int = api.real_monotonic_ns()
    return ns


def real_monotonic() -> float:
    """:func:`real_monotonic_ns` in seconds, as ``time.monotonic()`` reads when unfrozen."""
    return real_monotonic_ns() / 1_000_000_000
