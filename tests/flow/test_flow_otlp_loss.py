"""`sniper-otel run --otlp-endpoint` against collectors that misbehave, on loopback.

Every span, log record and metric point that does not arrive is counted, per signal and
reason, in the summary and in ``telemetry_dropped_total``: ``accepted == exported + dropped``
for all three signals, and what the collector received is what was counted as exported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SIGNALS = ("traces", "logs", "metrics")


def _items(path: str, body: bytes) -> tuple[str, int]:
    if path == "/v1/traces":
        req = ExportTraceServiceRequest.FromString(body)
        return "traces", sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
    if path == "/v1/logs":
        logs = ExportLogsServiceRequest.FromString(body)
        return "logs", sum(len(sl.log_records) for rl in logs.resource_logs
                           for sl in rl.scope_logs)
    points = 0
    for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                points += len(getattr(m, kind).data_points) if kind else 0
    return "metrics", points


class Collector:
    """A loopback OTLP/HTTP collector: ``ok``, ``slow`` (0.3 s per request), ``hung`` (never
    answers), ``reset`` (drops the connection)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.received: Counter[str] = Counter()
        self.released = threading.Event()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if collector.mode == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.connection.close()
                    return
                if collector.mode == "hung":
                    collector.released.wait(60)
                    return
                if collector.mode == "slow":
                    time.sleep(0.3)
                signal, n = _items(self.path, body)
                collector.received[signal] += n
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(params=["ok", "slow", "hung", "reset", "closed"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Collector | None]]:
    if request.param == "closed":
        yield "closed", _closed_port(), None
        return
    collector = Collector(request.param)
    try:
        yield request.param, collector.url, collector
    finally:
        collector.close()


def test_every_item_not_delivered_is_counted(
    endpoint: tuple[str, str, Collector | None], tmp_path: Path
) -> None:
    mode, url, collector = endpoint
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest_sniper_otel.cli", "run", "--seed", "1", "--duration",
         "2m", "--otlp-endpoint", url, "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = json.loads(out.read_text())
    signals = summary["otlp"]["signals"]
    received = collector.received if collector is not None else Counter()
    for signal in SIGNALS:
        n = signals[signal]
        assert n["accepted"] > 0, (signal, n)
        assert n["accepted"] == n["exported"] + sum(n["dropped"].values()), (signal, n)
        if mode in ("ok", "slow"):
            assert n["dropped"] == {}, (signal, n)
            assert received[signal] == n["exported"], (signal, n, received)
        else:
            assert n["exported"] == 0 and received[signal] == 0, (signal, n)
        line = (f"  {signal}: {n['accepted']} accepted = {n['exported']} exported + "
                f"{sum(n['dropped'].values())} dropped")
        assert line in done.stdout
    dropped_any = any(signals[s]["dropped"] for s in SIGNALS)
    assert ("telemetry_dropped_total" in summary["telemetry"]["metrics"]) == dropped_any
    # what the bot recorded does not depend on the collector
    assert summary["reconcile"] == []
