"""A loopback OTLP/HTTP collector that counts what it receives and can misbehave.

It is the other end of ``sniper-otel run --otlp-endpoint`` and of the load tests' ``all-otlp``
variant: a stand-in for a local collector, so the sender pays the real cost of encoding and
sending, and a collector that fails in the ways real ones do, so what the sender loses can be
checked against what it counted::

    from pytest_sniper_otel.flow.collector import OtlpCollector

    with OtlpCollector(mode="hung", count_items=True) as collector:
        ...  # export to collector.url
    collector.requests  # Counter: path -> requests that arrived
    collector.items     # Counter: signal -> spans, log records, metric points accepted

Modes (``mode`` may also be changed while it serves):

* ``ok``: every export is answered 200 with an empty (valid) protobuf body;
* ``slow``: the same, after ``delay`` real seconds (0.3);
* ``hung``: the request is read and never answered (held until the collector stops or
  ``hold_limit`` real seconds pass);
* ``reset``: the request is read and the connection is reset (TCP RST).

A path other than ``/v1/traces``, ``/v1/logs`` and ``/v1/metrics`` is answered 404. Counts:
``requests`` and ``bytes`` per path for every request that arrived, in any mode; with
``count_items=True`` (which decodes every export: ``opentelemetry-proto``, installed with
the ``otlp`` extra), ``items`` per signal for the exports answered 200, so in ``hung`` and
``reset`` modes nothing is counted there. Waits are real time (a simulated clock in the same
process does not shorten them).

The stdlib's threaded HTTP server, as for :mod:`.server`: no dependency, no event loop, and
the raw socket a reset needs.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import struct
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

MODES = ("ok", "slow", "hung", "reset")
# path -> signal
SIGNALS = {"/v1/traces": "traces", "/v1/logs": "logs", "/v1/metrics": "metrics"}
ITEMS = {"traces": "spans", "logs": "log records", "metrics": "metric points"}


class OtlpCollector:
    """OTLP/HTTP on ``127.0.0.1:port`` (0: a free port); see the module for the modes."""

    def __init__(self, port: int = 0, *, mode: str = "ok", delay: float = 0.3,
                 hold_limit: float = 60.0, count_items: bool = False) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if not delay >= 0:
            raise ValueError(f"delay must be >= 0 seconds, got {delay!r}")
        if not hold_limit > 0:
            raise ValueError(f"hold_limit must be > 0 seconds, got {hold_limit!r}")
        self.mode = mode
        self.delay = delay
        self.hold_limit = hold_limit
        self.requests: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self._count: Callable[[str, bytes], int] | None = _item_counter() if count_items else None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> OtlpCollector:
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        name="otlp-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops serving and releases held requests; idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread is not None:
            self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"requests": dict(self.requests), "bytes": dict(self.bytes),
                    "items": dict(self.items)}

    def __enter__(self) -> OtlpCollector:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector would

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                collector._received(self.path, length)
                mode = collector.mode
                if mode == "reset":
                    # linger 0: close() sends RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "hung":
                    collector._stopping.wait(collector.hold_limit)
                    self.close_connection = True
                    return
                if mode == "slow":
                    collector._stopping.wait(collector.delay)
                signal_name = SIGNALS.get(self.path)
                if signal_name is not None and collector._count is not None:
                    n = collector._count(signal_name, body)
                    with collector._lock:
                        collector.items[signal_name] += n
                self.send_response(200 if signal_name else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per export would swamp the output

        return Handler

    def _received(self, path: str, length: int) -> None:
        with self._lock:
            self.requests[path] += 1
            self.bytes[path] += length


def _item_counter() -> Callable[[str, bytes], int]:
    """Counts the spans, log records or metric points in an export request body."""
    try:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError as exc:
        raise RuntimeError("count_items needs opentelemetry-proto "
                           "(pip install 'pytest-sniper-otel[otlp]')") from exc

    def count(signal_name: str, body: bytes) -> int:
        if signal_name == "traces":
            spans = ExportTraceServiceRequest.FromString(body)
            return sum(len(ss.spans) for rs in spans.resource_spans for ss in rs.scope_spans)
        if signal_name == "logs":
            logs = ExportLogsServiceRequest.FromString(body)
            return sum(len(sl.log_records) for rl in logs.resource_logs for sl in rl.scope_logs)
        points = 0
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    points += len(getattr(m, kind).data_points) if kind else 0
        return points

    return count


def main(argv: Sequence[str] | None = None) -> int:
    """``sniper-otel collector``: serve until interrupted or for ``--duration`` seconds, then
    print what arrived. Exit status 0, or 2 for bad input."""
    p = argparse.ArgumentParser(
        prog="sniper-otel collector",
        description="An OTLP/HTTP collector on loopback that counts what it receives and "
                    "can misbehave.")
    p.add_argument("--port", type=int, default=4318, help="port on 127.0.0.1 (4318; 0: free)")
    p.add_argument("--mode", choices=MODES, default="ok",
                   help="ok, slow (answers after --delay), hung (never answers), "
                        "reset (resets the connection)")
    p.add_argument("--delay", type=float, default=0.3, metavar="SECONDS",
                   help="the slow mode's delay per request (0.3)")
    p.add_argument("--count-items", action="store_true",
                   help="decode exports and count spans, log records and metric points")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds (default: until interrupted)")
    args = p.parse_args(argv)
    if not 0 <= args.port <= 65535:
        p.error(f"--port must be 0-65535, got {args.port}")
    if not args.delay >= 0:
        p.error(f"--delay must be >= 0 seconds, got {args.delay:g}")
    if args.duration is not None and not args.duration > 0:
        p.error(f"--duration must be > 0 seconds, got {args.duration:g}")
    try:
        collector = OtlpCollector(args.port, mode=args.mode, delay=args.delay,
                                  count_items=args.count_items)
    except OSError as exc:
        print(f"sniper-otel collector: cannot listen on 127.0.0.1:{args.port}: {exc}",
              file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"sniper-otel collector: --count-items: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        with collector:
            print(f"OTLP/HTTP collector on {collector.url} (mode {args.mode})", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait(args.duration)
    finally:
        signal.signal(signal.SIGTERM, previous)
    for path in sorted(collector.requests):
        n = collector.requests[path]
        line = f"{path}: {n} request{'s' if n != 1 else ''}, {collector.bytes[path]} bytes"
        signal_name = SIGNALS.get(path)
        if args.count_items and signal_name:
            line += f", {collector.items[signal_name]} {ITEMS[signal_name]}"
        print(line)
    if not collector.requests:
        print("no requests")
    return 0
