"""asyncio event loops on the simulated clock.

Modelled on looptime (nolar/looptime): the loop's ``time()`` is replaced and its selector's
``select(timeout)`` no longer sleeps when only timers are pending; it moves time to the
next timer instead. Unlike looptime, the loop keeps no time of its own: it reads and moves
the :class:`~pytest_sniper_otel.clock.SimClock`, so ``await asyncio.sleep(5)`` inside a span
makes the span last 5 s, and ``clock.tick(5)`` inside a coroutine makes timers due.

Loop time is the clock's monotonic time counted from zero in integer nanoseconds: asyncio
fires a timer when ``when < loop.time() + 1e-9``, a resolution that freezegun's epoch-sized
``time.monotonic()`` (about 1.8e9) cannot hold, so a timer due exactly at a tick would
never fire there.

Which loops: every loop of asyncio's own classes (``BaseEventLoop``) that runs, or is
running, in the thread that started the clock. Loops in other threads keep real time.

A server running in this process (another thread) that a loop's sockets talk to registers
with :func:`register_in_process_server`: while it is answering, the loop waits for its bytes
instead of jumping to the next timer (a client timeout would otherwise fire before a
loopback answer could arrive), and the clock does not move by the wait: the server charges
its own latency on the clock.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from freezegun.api import real_monotonic_ns

if TYPE_CHECKING:
    from .clock import SimClock

_NS = 1_000_000_000


class _LoopOnClock:
    """The state of one adopted loop. ``time()`` is ``offset + clock ns`` while a clock is
    attached, ``offset + real monotonic ns`` after: continuous, never backwards."""

    def __init__(self, loop: asyncio.BaseEventLoop) -> None:
        self.clock: SimClock | None = None
        self.offset_ns = 0
        self.executor_futures: weakref.WeakSet[asyncio.Future[Any]] = weakref.WeakSet()
        selector: Any = loop._selector  # type: ignore[attr-defined]
        self.original_select: Callable[[float | None], list[Any]] = selector.select
        run_in_executor = loop.run_in_executor

        def tracked_run_in_executor(executor: Any, func: Any, *args: Any) -> Any:
            future = run_in_executor(executor, func, *args)
            self.executor_futures.add(future)
            return future

        loop.time = self.time  # type: ignore[method-assign]
        loop.run_in_executor = tracked_run_in_executor  # type: ignore[method-assign,assignment]
        selector.select = self.select

    def now_ns(self) -> int:
        if self.clock is not None:
            return self.offset_ns + self.clock.monotonic_ns()
        return self.offset_ns + real_monotonic_ns()

    def time(self) -> float:
        return self.now_ns() / _NS

    def attach(self, clock: SimClock | None, *, fresh: bool = False) -> None:
        """Follow ``clock`` (None: real time again) from the loop's current time on; a
        ``fresh`` loop, with nothing scheduled, starts at zero."""
        now = 0 if fresh else self.now_ns()
        self.clock = clock
        source = clock.monotonic_ns() if clock is not None else real_monotonic_ns()
        self.offset_ns = now - source

    def select(self, timeout: float | None) -> list[Any]:
        clock = self.clock
        if clock is None or timeout == 0:
            return self.original_select(timeout)
        ready = self.original_select(0)
        if ready:
            return ready
        if any(is_busy() for is_busy in list(_IN_PROCESS_SERVERS)):
            # An in-process server is answering: poll for its bytes without moving time;
            # the loop calls select() again with the same timeout.
            return self.original_select(_SERVER_POLL if timeout is None
                                        else min(timeout, _SERVER_POLL))
        if timeout is None or any(not f.done() for f in self.executor_futures):
            # Waiting on the outside world (a socket, another thread): simulated time moves
            # with real time, so a timeout keeps its real meaning.
            started = real_monotonic_ns()
            ready = self.original_select(timeout)
            waited = real_monotonic_ns() - started
            if not ready and timeout is not None:
                waited = max(waited, _ns_from_seconds(timeout))
            clock.advance_ns(waited)
            return ready
        # Only timers are pending: jump to the earliest.
        clock.advance_ns(_ns_from_seconds(timeout))
        return []


_SERVER_POLL = 0.005  # real seconds between looks at a busy in-process server
_IN_PROCESS_SERVERS: list[Callable[[], bool]] = []


def register_in_process_server(is_busy: Callable[[], bool]) -> Callable[[], None]:
    """Tell loops on a simulated clock about a server in this process: ``is_busy()`` is true
    from the moment a request reaches it until its answer is on the wire (and false while
    it deliberately withholds one). Returns the function that unregisters it."""
    _IN_PROCESS_SERVERS.append(is_busy)

    def unregister() -> None:
        if is_busy in _IN_PROCESS_SERVERS:
            _IN_PROCESS_SERVERS.remove(is_busy)

    return unregister


def _ns_from_seconds(seconds: float) -> int:
    # At least 1 ns: a timer a rounding error away must still come due, not spin the loop.
    return max(1, round(seconds * _NS))


_ADOPTED: weakref.WeakKeyDictionary[asyncio.BaseEventLoop, _LoopOnClock] = (
    weakref.WeakKeyDictionary()
)
# SimClocks running, innermost last, with the thread that started each.
_CLOCKS: list[tuple[SimClock, int]] = []
_original_run_forever: Callable[[asyncio.BaseEventLoop], None] | None = None


def _clock_of_this_thread() -> SimClock | None:
    me = threading.get_ident()
    for clock, thread in reversed(_CLOCKS):
        if thread == me:
            return clock
    return None


def _adopt(loop: asyncio.BaseEventLoop, clock: SimClock) -> None:
    state = _ADOPTED.get(loop)
    if state is None:
        state = _ADOPTED[loop] = _LoopOnClock(loop)
        # A loop with timers pending keeps their due times (real-time based): it goes on
        # from its current real time. Otherwise it starts at zero, where the resolution is.
        state.attach(clock, fresh=not loop._scheduled)  # type: ignore[attr-defined]
    elif state.clock is not clock:
        state.attach(clock)


def _run_forever(loop: asyncio.BaseEventLoop) -> None:
    clock = _clock_of_this_thread()
    if clock is not None:
        _adopt(loop, clock)
    assert _original_run_forever is not None
    _original_run_forever(loop)


def clock_started(clock: SimClock) -> None:
    """Called by SimClock.start: loops run in this thread from now on follow ``clock``."""
    global _original_run_forever
    _CLOCKS.append((clock, threading.get_ident()))
    if _original_run_forever is None:
        _original_run_forever = asyncio.BaseEventLoop.run_forever
        asyncio.BaseEventLoop.run_forever = _run_forever  # type: ignore[method-assign,assignment]
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if isinstance(running, asyncio.BaseEventLoop):
        _adopt(running, clock)


def clock_stopped(clock: SimClock) -> None:
    """Called by SimClock.stop: loops that followed ``clock`` go on from where it left them,
    in real time (or on an outer clock of the same thread)."""
    global _original_run_forever
    _CLOCKS[:] = [entry for entry in _CLOCKS if entry[0] is not clock]
    for state in list(_ADOPTED.values()):
        if state.clock is clock:
            state.attach(None)
            outer = _clock_of_this_thread()
            if outer is not None:
                state.attach(outer)
    if not _CLOCKS and _original_run_forever is not None:
        asyncio.BaseEventLoop.run_forever = _original_run_forever  # type: ignore[method-assign,assignment]
        _original_run_forever = None
