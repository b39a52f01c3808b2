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

I/O in flight: a socket whose transport wrote (a request) less than ``ANSWER_WAIT`` real
seconds ago with nothing read since, or that received bytes less than ``READ_SETTLE`` real
seconds ago (more of the answer may follow). While one is, the loop waits for real I/O,
bounded by the next timer, and the clock moves by the real time waited: an answer that
takes real time arrives, and a client timeout fires when its time comes in real time. Once
every socket is quiet, timers jump: an answer that stays away is a simulated timeout, and
an idle keep-alive connection does not hold the clock. A socket whose peer is another
socket of the same loop (a test server on it) is never in flight: its answer comes from
the loop's own callbacks and timers. looptime instead jumps to the next
timer whenever nothing is readable at once (after a few no-op cycles), whatever the
sockets are waiting for.

A server running in this process (another thread) that a loop's sockets talk to registers
with :func:`register_in_process_server`: while it is answering, or while bytes between it and
the loop are still inside the kernel (a loaded machine can deliver loopback bytes after the
send returned), the loop waits for them without moving the clock (the server charges its
own latency on the clock), and a socket connected to it is in flight exactly then.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import selectors
import socket
import sys
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import real_monotonic_ns

if TYPE_CHECKING:
    from .clock import SimClock

_NS = 1_000_000_000
ANSWER_WAIT = 1.0  # real seconds a written request waits for its answer's first byte
READ_SETTLE = 0.25  # real seconds after received bytes that more of the answer may follow
_SERVER_POLL = 0.005  # real seconds between looks at a busy in-process server


@dataclass
class _Flight:
    """A socket in flight until ``until_ns`` (real monotonic time), talking to ``peer``."""

    until_ns: int
    peer: Any


class _LoopOnClock:
    """The state of one adopted loop. ``time()`` is ``offset + clock ns`` while a clock is
    attached, ``offset + real monotonic ns`` after: continuous, never backwards."""

    def __init__(self, loop: asyncio.BaseEventLoop) -> None:
        self.clock: SimClock | None = None
        self.offset_ns = 0
        self.executor_futures: weakref.WeakSet[asyncio.Future[Any]] = weakref.WeakSet()
        self.in_flight: dict[int, _Flight] = {}
        self.transit_since_ns: int | None = None  # real ns bytes in transit were first seen
        self.loop = weakref.ref(loop)
        self_pipe = getattr(loop, "_ssock", None)  # call_soon_threadsafe's wake-up socket
        self.self_pipe_fd = self_pipe.fileno() if self_pipe is not None else -1
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

    # I/O in flight ----------------------------------------------------------------------
    def sent(self, fd: int, peer: Any) -> None:
        """A transport of this loop wrote bytes on ``fd``: an answer may be on its way."""
        self.in_flight[fd] = _Flight(real_monotonic_ns() + round(ANSWER_WAIT * _NS), peer)

    def received(self, ready: list[Any]) -> None:
        for key, events in ready:
            if events & selectors.EVENT_READ and key.fd != self.self_pipe_fd:
                peer = self._peer_of(key.fd)
                if peer is not None:  # None: a listening socket, or one with no transport
                    settle_ns = round(READ_SETTLE * _NS)
                    self.in_flight[key.fd] = _Flight(real_monotonic_ns() + settle_ns, peer)

    def _peer_of(self, fd: int) -> Any:
        transport = getattr(self.loop(), "_transports", {}).get(fd)
        return transport.get_extra_info("peername") if transport is not None else None

    def quiet_at_ns(self) -> int | None:
        """When (real ns) the last socket in flight goes quiet; None if none is in flight.
        A socket talking to an in-process server is left to that server's ``is_busy``; one
        talking to another socket of this loop (a test server on the same loop) is not
        waited for: its answer comes from this loop's own callbacks and timers."""
        now = real_monotonic_ns()
        latest: int | None = None
        own: set[Any] | None = None
        for fd, flight in list(self.in_flight.items()):
            if flight.until_ns <= now:
                del self.in_flight[fd]
                continue
            if _served_in_process(flight.peer):
                continue
            if own is None:
                own = self._own_addresses()
            if flight.peer not in own:
                latest = max(latest or 0, flight.until_ns)
        return latest

    def _bytes_in_transit_to_servers(self) -> bool:
        """Whether a connection between this loop and an in-process server has bytes one
        side wrote that the other side's kernel has not received yet. Waited for at most
        ``ANSWER_WAIT`` real seconds until none is, should the counts never meet."""
        servers = [s for s in list(_SHARED.in_process_servers) if s.connections is not None]
        transports = list(getattr(self.loop(), "_transports", {}).values()) if servers else []
        for transport in transports:
            server = _in_process_server_at(transport.get_extra_info("peername"), servers)
            if server is None or server.connections is None:
                continue
            ours = transport.get_extra_info("socket")
            if ours is not None and _in_transit(ours, server.connections(),
                                                transport.get_extra_info("sockname")):
                now = real_monotonic_ns()
                if self.transit_since_ns is None:
                    self.transit_since_ns = now
                return now - self.transit_since_ns < round(ANSWER_WAIT * _NS)
        self.transit_since_ns = None
        return False

    def _own_addresses(self) -> set[Any]:
        transports = getattr(self.loop(), "_transports", {})
        return {t.get_extra_info("sockname") for t in list(transports.values())} - {None}

    def select(self, timeout: float | None) -> list[Any]:
        clock = self.clock
        if clock is None:
            return self.original_select(timeout)
        ready = self.original_select(0)
        if ready or timeout == 0:
            self.received(ready)
            return ready
        if (any(server.is_busy() for server in list(_SHARED.in_process_servers))
                or self._bytes_in_transit_to_servers()):
            # An in-process server is answering, or bytes between it and this loop are
            # still inside the kernel (on a loaded machine loopback delivery can lag the
            # send): poll for them without moving time; the loop calls select() again.
            ready = self.original_select(_SERVER_POLL if timeout is None
                                         else min(timeout, _SERVER_POLL))
            self.received(ready)
            return ready
        if _SHARED.in_process_servers:
            # What arrived after the first look: a kernel makes bytes readable before its
            # counters show them received, so this look sees every byte they counted.
            ready = self.original_select(0)
            if ready:
                self.received(ready)
                return ready
        if timeout is None or any(not f.done() for f in self.executor_futures):
            # Waiting on the outside world with no timer pending, or on another thread:
            # simulated time moves with real time, so a timeout keeps its real meaning.
            return self._wait_for_real(timeout, clock)
        quiet_at = self.quiet_at_ns()
        timer_ns = _ns_from_seconds(timeout)
        if quiet_at is not None:
            # I/O in flight: wait for it in real time, up to the timer or until it is quiet.
            wait_ns = max(0, min(timer_ns, quiet_at - real_monotonic_ns()))
            return self._wait_for_real(wait_ns / _NS, clock, at_most_ns=timer_ns)
        # Only timers are pending: jump to the earliest.
        clock.advance_ns(timer_ns)
        return []

    def _wait_for_real(self, timeout: float | None, clock: SimClock,
                       at_most_ns: int | None = None) -> list[Any]:
        """select() for real; the clock moves by the time waited, never past a timer
        ``at_most_ns`` ahead."""
        started = real_monotonic_ns()
        ready = self.original_select(timeout)
        waited = real_monotonic_ns() - started
        if not ready and timeout is not None:
            waited = max(waited, _ns_from_seconds(timeout))
        if at_most_ns is not None:
            waited = min(waited, at_most_ns)
        clock.advance_ns(waited)
        self.received(ready)
        return ready


@dataclass(frozen=True)
class _InProcessServer:
    is_busy: Callable[[], bool]
    address: tuple[str, int] | None
    connections: Callable[[], Iterable[socket.socket]] | None = None


def register_in_process_server(
    is_busy: Callable[[], bool], address: tuple[str, int] | None = None,
    connections: Callable[[], Iterable[socket.socket]] | None = None,
) -> Callable[[], None]:
    """Tell loops on a simulated clock about a server in this process: ``is_busy()`` is true
    from the moment a request reaches it until its answer is written (and false while it
    deliberately withholds one), so such a server sends with TCP_NODELAY. With its
    ``address`` (host, port), a socket connected to it is in flight only while it is busy;
    without, the loop waits ``ANSWER_WAIT`` real seconds for the answer to a request before
    a timer may jump. With ``connections()`` (its accepted sockets), the loop also waits
    while bytes written on one end have not reached the other end's kernel (Linux's TCP
    counters; elsewhere writing is taken as arrival). Returns the function that
    unregisters it."""
    server = _InProcessServer(is_busy, address, connections)
    servers = _SHARED.in_process_servers
    servers.append(server)

    def unregister() -> None:
        if server in servers:
            servers.remove(server)

    return unregister


def _in_process_server_at(peer: Any, servers: list[_InProcessServer]) -> _InProcessServer | None:
    if not isinstance(peer, tuple) or len(peer) < 2:
        return None
    for server in servers:
        if server.address is not None and server.address == (peer[0], peer[1]):
            return server
    return None


def _in_transit(ours: Any, theirs: Iterable[socket.socket], our_name: Any) -> bool:
    """Whether bytes between socket ``ours`` (which connected) and its peer among
    ``theirs`` (the one whose peer name is ``our_name``, which accepted) were written by one
    and not yet received by the other."""
    for peer in list(theirs):
        try:
            if peer.getpeername() != our_name:
                continue
        except OSError:  # closed meanwhile
            continue
        ours_counts, theirs_counts = _tcp_counts(ours), _tcp_counts(peer)
        if ours_counts is None or theirs_counts is None:
            return False
        # The connecting side's kernel counts its SYN as one acknowledged byte; where one
        # does not, a lone byte in transit goes unseen, never a wait for nothing.
        return (ours_counts[0] - 1 > theirs_counts[1]
                or theirs_counts[0] > ours_counts[1])
    return False


def _tcp_counts(sock: Any) -> tuple[int, int] | None:
    """(bytes written, bytes received) of a TCP socket as its kernel counts them: written
    is acknowledged plus still queued (TIOCOUTQ); None where Linux's TCP_INFO is missing."""
    if _TCP_INFO is None:
        return None
    import fcntl  # POSIX only, as _TCP_INFO is Linux only
    import struct
    import termios

    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
        queued = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return None
    if len(info) < _TCP_INFO_SIZE:  # a kernel older than 4.1: no byte counts
        return None
    acked, received = struct.unpack_from("=QQ", info, _TCP_BYTES_ACKED_AT)
    return acked + struct.unpack("=i", queued)[0], received


# struct tcp_info (linux/tcp.h): tcpi_bytes_acked and tcpi_bytes_received (Linux 4.1+)
_TCP_INFO: int | None = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_TCP_BYTES_ACKED_AT = 120
_TCP_INFO_SIZE = _TCP_BYTES_ACKED_AT + 16


def _served_in_process(peer: Any) -> bool:
    return _in_process_server_at(peer, list(_SHARED.in_process_servers)) is not None


def _ns_from_seconds(seconds: float) -> int:
    # At least 1 ns: a timer a rounding error away must still come due, not spin the loop.
    return max(1, round(seconds * _NS))


class _ProcessWide:
    """The state of the process, not of one copy of this module: pytester's in-process runs
    restore ``sys.modules`` and can load a second copy, which must see the clocks the first
    started and the originals it saved, not wrap its patch of ``run_forever`` again."""

    def __init__(self) -> None:
        # SimClocks running, innermost last, with the thread that started each
        self.clocks: list[tuple[SimClock, int]] = []
        self.adopted: weakref.WeakKeyDictionary[asyncio.BaseEventLoop, _LoopOnClock] = (
            weakref.WeakKeyDictionary()
        )
        self.in_process_servers: list[_InProcessServer] = []
        # BaseEventLoop.run_forever and the transport's sending methods (writelines: 3.12+)
        # as found before a clock started; None while no clock runs
        self.original_run_forever: Callable[[asyncio.BaseEventLoop], None] | None = None
        self.original_sends: dict[str, Callable[..., None]] = {}


def _process_wide() -> _ProcessWide:
    """The one ``_ProcessWide``, kept on the class this module patches."""
    shared: _ProcessWide | None = vars(asyncio.BaseEventLoop).get(_SHARED_ON_LOOP_CLASS)
    if shared is None:
        shared = _ProcessWide()
        setattr(asyncio.BaseEventLoop, _SHARED_ON_LOOP_CLASS, shared)
    return shared


_SHARED_ON_LOOP_CLASS = "_pytest_sniper_otel_clock_asyncio"
_SHARED = _process_wide()


_SOCKET_TRANSPORT: Any = asyncio.selector_events._SelectorSocketTransport  # type: ignore[attr-defined]


def _noting_what_is_sent(name: str, send: Callable[..., None]) -> Callable[..., None]:
    def sending(transport: Any, data: Any) -> None:
        send(transport, data)
        state = _SHARED.adopted.get(transport._loop)
        if state is not None and state.clock is not None and transport._sock is not None:
            state.sent(transport._sock_fd, transport.get_extra_info("peername"))

    sending.__name__ = name
    return sending


def _clock_of_this_thread() -> SimClock | None:
    me = threading.get_ident()
    for clock, thread in reversed(_SHARED.clocks):
        if thread == me:
            return clock
    return None


def _adopt(loop: asyncio.BaseEventLoop, clock: SimClock) -> None:
    state = _SHARED.adopted.get(loop)
    if state is None:
        state = _SHARED.adopted[loop] = _LoopOnClock(loop)
        # A loop with timers pending keeps their due times (real-time based): it goes on
        # from its current real time. Otherwise it starts at zero, where the resolution is.
        state.attach(clock, fresh=not loop._scheduled)  # type: ignore[attr-defined]
    elif state.clock is not clock:
        state.attach(clock)


def _run_forever(loop: asyncio.BaseEventLoop) -> None:
    clock = _clock_of_this_thread()
    if clock is not None:
        _adopt(loop, clock)
    original = _SHARED.original_run_forever
    assert original is not None
    original(loop)


def clock_started(clock: SimClock) -> None:
    """Called by SimClock.start: loops run in this thread from now on follow ``clock``."""
    shared = _SHARED
    shared.clocks.append((clock, threading.get_ident()))
    if shared.original_run_forever is None:
        shared.original_run_forever = asyncio.BaseEventLoop.run_forever
        asyncio.BaseEventLoop.run_forever = _run_forever  # type: ignore[method-assign,assignment]
        for name in ("write", "writelines"):
            if name in vars(_SOCKET_TRANSPORT):
                shared.original_sends[name] = getattr(_SOCKET_TRANSPORT, name)
                setattr(_SOCKET_TRANSPORT, name,
                        _noting_what_is_sent(name, shared.original_sends[name]))
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return
    if isinstance(running, asyncio.BaseEventLoop):
        _adopt(running, clock)


def clock_stopped(clock: SimClock) -> None:
    """Called by SimClock.stop: loops that followed ``clock`` go on from where it left them,
    in real time (or on an outer clock of the same thread)."""
    shared = _SHARED
    shared.clocks[:] = [entry for entry in shared.clocks if entry[0] is not clock]
    for state in list(shared.adopted.values()):
        if state.clock is clock:
            state.attach(None)
            outer = _clock_of_this_thread()
            if outer is not None:
                state.attach(outer)
    if not shared.clocks and shared.original_run_forever is not None:
        asyncio.BaseEventLoop.run_forever = shared.original_run_forever  # type: ignore[method-assign,assignment]
        shared.original_run_forever = None
        for name, send in shared.original_sends.items():
            setattr(_SOCKET_TRANSPORT, name, send)
        shared.original_sends.clear()
