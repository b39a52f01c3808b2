"""A minimal OTLP/HTTP receiver on loopback: accepts and counts exports, keeps nothing.

It stands in for a local collector, so the ``all-otlp`` variant pays the real client-side
cost of encoding and sending. Standalone (for ``locust -f load/locustfile.py
--sniper-variant all-otlp``):

    python load/receiver.py            # listens on 127.0.0.1:4318
"""

from __future__ import annotations

import argparse
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/v1/traces", "/v1/metrics", "/v1/logs")


class Receiver:
    """Counts requests and bytes per OTLP path; 200 with an empty (valid) protobuf reply."""

    def __init__(self, port: int = 0) -> None:
        self.requests: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector would

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                known = self.path in PATHS
                with receiver._lock:
                    receiver.requests[self.path] += 1
                    receiver.bytes[self.path] += length
                self.send_response(200 if known else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per export would swamp the run's output

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {"requests": dict(self.requests), "bytes": dict(self.bytes)}

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    p = argparse.ArgumentParser(description="OTLP/HTTP receiver on loopback that counts exports")
    p.add_argument("--port", type=int, default=4318)
    args = p.parse_args()
    receiver = Receiver(args.port)
    print(f"receiving OTLP/HTTP on {receiver.endpoint} (Ctrl-C to stop)", flush=True)
    try:
        receiver.server.serve_forever()
    except KeyboardInterrupt:
        print(receiver.snapshot())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
