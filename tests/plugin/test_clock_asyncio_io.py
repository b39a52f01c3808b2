"""Real I/O on an event loop that runs on the simulated clock: the real aiohttp client
against a loopback server (a plain socket in a thread, so nothing tells the loop when it
answers) that takes real time to answer.

The rule under test: while a socket of the loop is waiting for an answer, the loop polls
it in real time and the clock moves with real time; timers jump only once no I/O is in
flight, so a client timeout fires in simulated time only for an answer that stays away.
The clock moves by the time spent waiting in select(), not by the loop's own CPU time, so
it trails real time a little; the bounds leave room for that and for a loaded machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import threading
from collections.abc import Callable, Iterator

import aiohttp
import pytest

from pytest_sniper_otel.clock import SimClock, real_monotonic
from pytest_sniper_otel.clock_asyncio import _in_transit, _tcp_counts

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
BODY = b'{"last": 1.5}'
SERVER_BOUND = 5.0  # real seconds any server thread lives at most


def real_seconds() -> float:
    return real_monotonic()


def read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def wait_for_close(conn: socket.socket, seconds: float) -> None:
    """Send nothing until the client hangs up or ``seconds`` pass."""
    conn.settimeout(seconds)
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass


@contextlib.contextmanager
def loopback_server(answer: Callable[[socket.socket], None]) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every connection with ``answer(conn)``."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        deadline = real_seconds() + SERVER_BOUND
        while not stop.is_set() and real_seconds() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(SERVER_BOUND)
                with contextlib.suppress(OSError):
                    read_request(conn)
                    answer(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/ticker"
    finally:
        stop.set()
        thread.join(SERVER_BOUND)
        listener.close()


def head_then_body(gap: float) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.sendall(HEAD)
        threading.Event().wait(gap)  # a real pause: time.sleep is the clock's in its thread
        conn.sendall(BODY)
    return answer


def after(delay: float) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        threading.Event().wait(delay)
        conn.sendall(HEAD + BODY)
    return answer


def never(conn: socket.socket) -> None:
    wait_for_close(conn, SERVER_BOUND)


def at_once_keeping_the_connection(conn: socket.socket) -> None:
    conn.sendall(HEAD + BODY)
    wait_for_close(conn, SERVER_BOUND)


class Outcome:
    def __init__(self) -> None:
        self.result = ""
        self.loop_seconds = 0.0
        self.real_seconds = 0.0


def get_on_the_clock(url: str, timeout: float | None) -> Outcome:
    """GET ``url`` with aiohttp on a loop that runs on a fresh SimClock."""
    outcome = Outcome()

    async def fetch() -> None:
        loop = asyncio.get_running_loop()
        start, real_start = loop.time(), real_seconds()
        try:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=timeout)
            ) as session, session.get(url) as response:
                outcome.result = await response.text()
        except TimeoutError:
            outcome.result = "TimeoutError"
        outcome.loop_seconds = loop.time() - start
        outcome.real_seconds = real_seconds() - real_start

    with SimClock():
        asyncio.run(fetch())
    return outcome


def test_a_body_written_after_the_head_is_read() -> None:
    with loopback_server(head_then_body(0.2)) as url:
        outcome = get_on_the_clock(url, timeout=300)
    assert outcome.result == BODY.decode()
    # the clock moved with the real wait for the body (never ahead of it), not to aiohttp's
    # 300 s timeout; only the waits in select count, so a loaded machine sees less than 0.2 s
    assert 0 < outcome.loop_seconds <= outcome.real_seconds < 5


def test_a_select_without_timers_blocks_on_real_io_and_the_clock_follows() -> None:
    with loopback_server(head_then_body(0.2)) as url:
        outcome = get_on_the_clock(url, timeout=None)
    assert outcome.result == BODY.decode()
    assert 0 < outcome.loop_seconds <= outcome.real_seconds


def test_a_slow_exchange_within_the_timeout_answers() -> None:
    with loopback_server(after(0.3)) as url:
        outcome = get_on_the_clock(url, timeout=10)
    assert outcome.result == BODY.decode()
    assert 0 < outcome.loop_seconds <= outcome.real_seconds < 5


def test_a_slow_exchange_beyond_the_timeout_times_out_when_its_time_comes() -> None:
    # the answer is in flight: simulated time moves with real time, up to the timeout
    with loopback_server(after(0.6)) as url:
        outcome = get_on_the_clock(url, timeout=0.2)
    assert outcome.result == "TimeoutError"
    assert outcome.loop_seconds == pytest.approx(0.2, abs=0.01)


def test_a_silent_exchange_times_out_in_simulated_time() -> None:
    # no byte within the answer wait: nothing is in flight any more, the clock jumps
    with loopback_server(never) as url:
        outcome = get_on_the_clock(url, timeout=30)
    assert outcome.result == "TimeoutError"
    assert outcome.loop_seconds == pytest.approx(30, abs=0.01)
    assert outcome.real_seconds < 4


def test_timers_do_not_run_away_while_an_answer_is_in_flight() -> None:
    """A 10 ms heartbeat keeps timers pending the whole time: the body still arrives, and
    the heartbeat counts real time, not thousands of jumps."""
    beats = 0

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(0.01)
            beats += 1

    async def with_heartbeat(url: str) -> tuple[str, float, float]:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(heartbeat())
        start, real_start = loop.time(), real_seconds()
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5)
        ) as session, session.get(url) as response:
            text = await response.text()
        task.cancel()
        return text, loop.time() - start, real_seconds() - real_start

    with loopback_server(head_then_body(0.2)) as url, SimClock():
        text, elapsed, real = asyncio.run(with_heartbeat(url))
    assert text == BODY.decode()
    # the real waits, never more (a wait that overshoots a beat's due time is cut back to it;
    # time outside select does not count, so a loaded machine sees less than the server's 0.2 s)
    assert 0 < elapsed <= real < 5
    assert beats <= round(elapsed / 0.01) + 1


def test_a_sleep_after_the_answer_jumps() -> None:
    """An idle keep-alive connection stays registered with the loop: it must not hold the
    clock to real time for a bot's sleep between polls."""

    async def poll_then_sleep(url: str) -> tuple[str, float, float]:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                text = await response.text()
            start, real_start = loop.time(), real_seconds()
            await asyncio.sleep(3600)
            return text, loop.time() - start, real_seconds() - real_start

    with loopback_server(at_once_keeping_the_connection) as url, SimClock():
        text, slept, real = asyncio.run(poll_then_sleep(url))
    assert text == BODY.decode()
    assert slept == 3600
    assert real < 2.5


def test_an_answer_later_than_the_answer_wait_is_a_simulated_timeout() -> None:
    # the documented limit: 1 s of real silence after a request ends its flight
    with loopback_server(after(2.0)) as url:
        outcome = get_on_the_clock(url, timeout=30)
    assert outcome.result == "TimeoutError"
    assert outcome.loop_seconds == pytest.approx(30, abs=0.01)


# -- ccxt (async, on aiohttp) against a slow loopback MEXC -------------------------------------

SERVER_TIME = b'{"serverTime": 1767225600000}'


def mexc_time_after(delay: float | None) -> Callable[[socket.socket], None]:
    """MEXC's GET /api/v3/time, answered after ``delay`` real seconds (None: never)."""
    def answer(conn: socket.socket) -> None:
        if delay is None:
            wait_for_close(conn, SERVER_BOUND)
            return
        threading.Event().wait(delay)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(SERVER_TIME))
        conn.sendall(SERVER_TIME)
    return answer


def ccxt_fetch_time_on_the_clock(url: str, timeout_ms: int) -> Outcome:
    import ccxt.async_support as accxt

    outcome = Outcome()

    async def fetch() -> None:
        loop = asyncio.get_running_loop()
        exchange = accxt.mexc({"timeout": timeout_ms, "urls": {"api": {"spot": {"public": url}}},
                               "tokenBucket": {"delay": 0.05}})
        start, real_start = loop.time(), real_seconds()
        try:
            outcome.result = str(await exchange.fetch_time())
        except accxt.RequestTimeout:
            outcome.result = "RequestTimeout"
        finally:
            outcome.loop_seconds = loop.time() - start
            outcome.real_seconds = real_seconds() - real_start
            await exchange.close()

    with SimClock():
        asyncio.run(fetch())
    return outcome


def test_ccxt_gets_the_answer_of_a_slow_exchange() -> None:
    with loopback_server(mexc_time_after(0.3)) as url:
        outcome = ccxt_fetch_time_on_the_clock(url.removesuffix("/ticker"), timeout_ms=10_000)
    assert outcome.result == "1767225600000"
    assert 0 < outcome.loop_seconds <= outcome.real_seconds < 5


def test_ccxt_times_out_in_simulated_time_on_a_silent_exchange() -> None:
    with loopback_server(mexc_time_after(None)) as url:
        outcome = ccxt_fetch_time_on_the_clock(url.removesuffix("/ticker"), timeout_ms=30_000)
    assert outcome.result == "RequestTimeout"
    assert outcome.loop_seconds == pytest.approx(30, abs=0.1)
    assert outcome.real_seconds < 4


def test_a_server_on_the_same_loop_answers_in_simulated_time() -> None:
    """aiohttp's own server on the test's loop: its answers come from the loop itself, so
    nothing waits in real time for them, and a handler's sleep is simulated."""
    from aiohttp import web

    async def slow_ticker(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"last": 1.5})

    async def three_polls() -> tuple[list[float], float]:
        app = web.Application()
        app.router.add_get("/ticker", slow_ticker)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        loop = asyncio.get_running_loop()
        real_start, durations = real_seconds(), []
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(3):
                    start = loop.time()
                    async with session.get(f"http://127.0.0.1:{port}/ticker") as response:
                        assert await response.json() == {"last": 1.5}
                    durations.append(loop.time() - start)
                await asyncio.sleep(60)
        finally:
            await runner.cleanup()
        return durations, real_seconds() - real_start

    with SimClock():
        durations, real = asyncio.run(three_polls())
    assert durations == [5.0, 5.0, 5.0]
    assert real < 2.0  # waiting for its own sockets would cost 1 s a poll and the sleep


@pytest.mark.skipif(sys.platform != "linux", reason="Linux's TCP_INFO counts")
def test_bytes_held_by_a_full_receive_window_are_in_transit_until_read() -> None:
    """The loop keeps simulated time still while bytes between it and an in-process server
    are inside the kernel: a peer that reads nothing holds them in the sender's queue."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the accepted one's too
    with listener, socket.socket() as ours:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        ours.connect(listener.getsockname())
        theirs, _ = listener.accept()
        with theirs:
            assert not _in_transit(ours, [theirs], ours.getsockname())
            ours.setblocking(False)
            written = 0
            with contextlib.suppress(BlockingIOError):
                while written < 10_000_000:
                    written += ours.send(b"x" * 4096)
            assert _tcp_counts(ours) == (written + 1, 0)  # its SYN counts as a byte
            assert _in_transit(ours, [theirs], ours.getsockname())
            assert not _in_transit(ours, [theirs], ("127.0.0.1", 1))  # not its peer
            theirs.settimeout(SERVER_BOUND)
            received = 0
            while received < written:
                received += len(theirs.recv(1 << 20))
            deadline = real_seconds() + SERVER_BOUND  # the last ACK is on its way back
            while _in_transit(ours, [theirs], ours.getsockname()) and real_seconds() < deadline:
                threading.Event().wait(0.001)
            assert not _in_transit(ours, [theirs], ours.getsockname())
            assert _tcp_counts(theirs) == (0, written)
