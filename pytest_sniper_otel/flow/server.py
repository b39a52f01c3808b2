"""The exchange simulator served as MEXC's spot REST API v3 over HTTP, on loopback.

:class:`ExchangeServer` answers every request through its ``transport`` attribute, the
same seam the in-process :class:`~.client.ExchangeClient` has: by default the simulator's
:meth:`~.exchange.ExchangeSimulator.handle`. The chaos harness wraps that seam, so each
exchange fault acts on both paths, and the server turns what the seam returns into bytes on
a socket: a :class:`~.exchange.WireFault` becomes a reset connection, a short body, a slow
body or a request that is never answered; a :class:`~.exchange.TransportTimeout` raised in
the seam is an answer that never comes, a :class:`~.exchange.TransportError` a reset.

Time: the server charges latency (faults, the optional latency model, slow bytes) on its
``clock``. On a :class:`~pytest_sniper_otel.clock.SimClock` (a test's ``clock``) that moves
simulated time, which a client in the same process sees in its spans at no wall-time
cost; on a :class:`~pytest_sniper_otel.clock.RealClock` (``sniper-otel exchange serve``,
or any server a client in another process talks to) it is a real delay. A request that is
never answered is held in real time either way, until the client gives up, the server
closes, or ``hold_limit`` seconds pass.

The stdlib's threaded HTTP server is used rather than aiohttp.web: its blocking sockets do
not depend on an event loop's clock (which a simulated clock freezes), it shares no loop
with the code under test, and a wire fault needs the raw socket, which it hands over.
"""

from __future__ import annotations

import contextlib
import ipaddress
import select
import socket
import socketserver
import struct
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from ..clock import Clock, RealClock, real_monotonic
from .exchange import (
    ApiRequest,
    ApiResponse,
    ExchangeSimulator,
    LatencyModel,
    ListingSpec,
    SimulatedTransport,
    Transport,
    TransportError,
    TransportTimeout,
    WireFault,
    endpoint_of,
)

DEFAULT_API_KEY = "sniper-otel-key"
DEFAULT_API_SECRET = "sniper-otel-secret"  # a well-known test secret: the simulator holds no money


@dataclass(frozen=True)
class ServedCall:
    """One request the server answered (or broke): for assertions in tests."""

    method: str
    path: str
    endpoint: str
    status: int | None  # None: no status line went out (reset, never answered)
    wire: str | None = None


class ExchangeServer:
    """The simulator on ``http://127.0.0.1:<port>``; see the module docs.

    Use it as a context manager (or :meth:`start` and :meth:`close`)::

        with ExchangeServer.create(seed=1) as server:
            exchange = ccxt.mexc(server.ccxt_config())
            exchange.load_markets()
    """

    def __init__(
        self,
        exchange: ExchangeSimulator,
        *,
        api_key: str,
        api_secret: str,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: LatencyModel | None = None,
        seed: int = 0,
        hold_limit: float = 30.0,
    ) -> None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the exchange server listens on loopback only, got host {host!r}")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ValueError(f"port must be 0 (a free port) or 1-65535, got {port!r}")
        if hold_limit <= 0:
            raise ValueError(f"hold_limit must be > 0 seconds, got {hold_limit!r}")
        self.exchange = exchange
        self.clock = clock if clock is not None else exchange.clock
        self.api_key, self.api_secret = api_key, api_secret
        self.host, self.port = host, port
        self.hold_limit = hold_limit
        self.transport: Transport = (
            exchange.handle if latency is None
            else SimulatedTransport(exchange, self.clock, seed=seed, latency=latency)
        )
        self.calls: list[ServedCall] = []
        self.closing = threading.Event()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        # open connections -> answering a request now
        self._connections: dict[socket.socket, bool] = {}
        self._accepting = 0
        self._lock = threading.Lock()
        self._unregister: Callable[[], None] | None = None

    @classmethod
    def create(
        cls,
        *,
        seed: int = 0,
        clock: Clock | None = None,
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        listings: Sequence[ListingSpec] | None = None,
        initial_balance: float = 10_000.0,
        latency: LatencyModel | None = None,
        hold_limit: float = 30.0,
    ) -> ExchangeServer:
        """A server over a fresh simulator (on ``clock``, the real clock by default)."""
        clock = clock if clock is not None else RealClock()
        exchange = ExchangeSimulator(seed=seed, clock=clock, api_key=api_key,
                                     api_secret=api_secret, listings=listings,
                                     initial_balance=initial_balance)
        return cls(exchange, api_key=api_key, api_secret=api_secret, clock=clock, port=port,
                   latency=latency, seed=seed, hold_limit=hold_limit)

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> ExchangeServer:
        if self._httpd is not None:
            raise RuntimeError("the exchange server is already running")
        self.closing.clear()
        httpd = _HttpServer((self.host, self.port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"sniper-otel-exchange:{self.port}", daemon=True,
        )
        self._thread.start()
        from ..clock_asyncio import register_in_process_server

        self._unregister = register_in_process_server(self.busy, (self.host, self.port),
                                                      self._open_sockets)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, drop open connections, and wait (at most ``timeout`` s) for
        every handler thread. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        if self._unregister is not None:
            self._unregister()
            self._unregister = None
        self.closing.set()
        httpd.shutdown()
        with self._lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        httpd.join_handlers(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def __enter__(self) -> ExchangeServer:
        return self.start() if self._httpd is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # what clients need ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the exchange server is not running: start() it first")
        return f"http://{self.host}:{self.port}"

    def ccxt_config(self, **extra: Any) -> dict[str, Any]:
        """Constructor options pointing ``ccxt.mexc`` (sync or async) at this server, with
        its credentials. ccxt's mexc also loads swap markets from the contract API; this
        server answers that with none, so only spot markets appear.

        On a simulated clock ccxt's async rate limiter looks at its token bucket every 50 ms
        of simulated time instead of every 1 ms: each look costs an event-loop turn of real
        CPU time, and waits of seconds are common (``exchangeInfo`` costs 25 tokens)."""
        url = self.url
        config: dict[str, Any] = {
            "apiKey": self.api_key,
            "secret": self.api_secret,
            **({} if isinstance(self.clock, RealClock) else {"tokenBucket": {"delay": 0.05}}),
            "urls": {"api": {
                "spot": {"public": url, "private": url},
                "contract": {"public": f"{url}/api/v1/contract",
                             "private": f"{url}/api/v1/private"},
            }},
        }
        config.update(extra)
        return config

    def chaos_targets(self) -> Mapping[str, Any]:
        """What ``chaos.bind(exchange=server)`` binds: the server's seam for call and wire
        faults, its simulator for market faults (``market.partial_fills``)."""
        return {"exchange": self, "market": self.exchange}

    @property
    def open_connections(self) -> int:
        """Connections a handler is still serving (0 after :meth:`close` returned)."""
        with self._lock:
            return len(self._connections)

    def endpoints(self) -> list[str]:
        """The logical endpoint of every call served so far, in order."""
        with self._lock:
            return [c.endpoint for c in self.calls]

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<ExchangeServer {where}>"

    def busy(self) -> bool:
        """Whether a request has reached the server and its answer is not on the wire yet:
        a connection waiting to be accepted, a request being answered, or request bytes
        not read yet. A withheld answer (``no_answer``) is not busy: the client waits."""
        httpd = self._httpd
        if httpd is None:
            return False
        with self._lock:
            if self._accepting or any(self._connections.values()):
                return True
            # a handler marks its connection before it reads: unread bytes are visible here
            sockets = [s for s in (httpd.socket, *self._connections) if s.fileno() != -1]
        try:
            return bool(select.select(sockets, [], [], 0)[0])
        except (OSError, ValueError):  # a socket closed meanwhile
            return False

    def _open_sockets(self) -> list[socket.socket]:
        with self._lock:
            return [conn for conn in self._connections if conn.fileno() != -1]

    # used by the handler -----------------------------------------------------------------
    def _record(self, call: ServedCall) -> None:
        with self._lock:
            self.calls.append(call)

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections[conn] = False
            else:
                self._connections.pop(conn, None)

    def _answering(self, conn: socket.socket, answering: bool) -> None:
        with self._lock:
            if conn in self._connections:
                self._connections[conn] = answering

    def _accept(self, delta: int) -> None:
        with self._lock:
            self._accepting += delta


class _HttpServer(ThreadingHTTPServer):
    # not daemons: ThreadingMixIn only keeps track of (and close() waits for) the others
    daemon_threads = False
    allow_reuse_address = True
    owner: ExchangeServer

    def get_request(self) -> tuple[socket.socket, Any]:
        # counted as busy from before accept() until the handler tracks the connection
        self.owner._accept(1)
        try:
            return super().get_request()
        except BaseException:
            self.owner._accept(-1)
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        self.owner._track(request, True)
        self.owner._accept(-1)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        # called once per connection whatever happened in its handler, even if setup failed
        try:
            super().shutdown_request(request)
        finally:
            self.owner._track(request, False)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-request is not the server's error: stay quiet."""

    def server_close(self) -> None:
        # ThreadingMixIn joins handler threads without a bound; join_handlers bounds it
        socketserver.TCPServer.server_close(self)

    def join_handlers(self, timeout: float) -> None:
        threads = list(getattr(self, "_threads", None) or ())
        deadline = real_monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - real_monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # busy() ends once an answer is written, so it must be on the wire by then: with Nagle's
    # algorithm a body written after its head waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server: _HttpServer
    server_version = "sniper-otel-mexc"

    def handle_one_request(self) -> None:
        # Wait for the next request without reading it, then mark the connection as
        # answering before its first byte is consumed (see ExchangeServer.busy).
        owner = self.server.owner
        try:
            select.select([self.connection], [], [])
        except (OSError, ValueError):
            self.close_connection = True
            return
        owner._answering(self.connection, True)
        try:
            super().handle_one_request()
            with contextlib.suppress(OSError, ValueError):
                self.wfile.flush()
        finally:
            owner._answering(self.connection, False)

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every call is in ``ExchangeServer.calls``."""

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        owner = self.server.owner
        split = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        endpoint = endpoint_of(method, split.path)
        request = ApiRequest(method, split.path, endpoint, params, dict(self.headers.items()),
                             query=split.query, body=body)
        try:
            response = owner.transport(request)
        except TransportTimeout:
            owner._record(ServedCall(method, split.path, endpoint, None, "no_answer"))
            self._hold(owner.hold_limit)
            return
        except TransportError:
            owner._record(ServedCall(method, split.path, endpoint, None, "reset"))
            self._reset()
            return
        wire = response.wire
        owner._record(ServedCall(
            method, split.path, endpoint,
            None if wire is not None and wire.kind == "no_answer" else response.status,
            wire.kind if wire is not None else None,
        ))
        if wire is not None and wire.kind == "no_answer":
            self._hold(min(wire.seconds or owner.hold_limit, owner.hold_limit))
            return
        if wire is None:
            self._send_head(response, close=False, body=response.body)
        elif wire.kind == "slow":
            self._send_head(response, close=True)
            self._trickle(response.body, wire)
        else:
            self._send_head(response, close=True, body=response.body[: wire.cut(response.body)])
            if wire.kind == "reset":
                self._reset()

    def _send_head(self, response: ApiResponse, *, close: bool, body: bytes = b"") -> None:
        """The status line and headers, then ``body`` (what there is of it yet)."""
        self.send_response(response.status)
        for key, value in response.headers.items():
            if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _trickle(self, body: bytes, wire: WireFault) -> None:
        chunks = max(1, min(wire.chunks, len(body)))
        size = -(-len(body) // chunks)
        clock = self.server.owner.clock
        for i in range(0, len(body), size):
            clock.tick(wire.seconds / chunks)
            self.wfile.write(body[i:i + size])

    def _reset(self) -> None:
        """Abort the connection: SO_LINGER 0 makes close() send a TCP RST."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()

    def _hold(self, limit: float) -> None:
        """Never answer: keep the connection until the client leaves, the server closes or
        ``limit`` real seconds pass, then close it without a word."""
        self.close_connection = True
        owner = self.server.owner
        owner._answering(self.connection, False)  # the client's own timeout decides now
        deadline = real_monotonic() + limit
        while not owner.closing.is_set() and real_monotonic() < deadline:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0.05)
                if readable and not self.connection.recv(4096):
                    return  # the client gave up
            except (OSError, ValueError):
                return


@contextlib.contextmanager
def serve_exchange(**options: Any) -> Iterator[ExchangeServer]:
    """``with serve_exchange(seed=1) as server:`` a running :class:`ExchangeServer` (the
    options of :meth:`ExchangeServer.create`), closed on exit."""
    with ExchangeServer.create(**options) as server:
        yield server


__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "ExchangeServer", "ServedCall",
           "serve_exchange"]
