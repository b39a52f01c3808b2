"""``sniper-otel run``: the reference bot on simulated time, with its telemetry captured.

Prints what the bot did (orders by outcome, PnL, halts, reconciliation) and what it
recorded (spans, logs, metric series). Bad input exits 2; a run whose ledger does not
reconcile with the exchange exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .. import SpecError, parse_duration


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sniper-otel run",
        description="Run the instrumented reference sniper bot on simulated time.",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (>= 0), default 0")
    parser.add_argument("--duration", default="10m",
                        help="simulated time to run: 10m, 90s, 1h30m... (default 10m)")
    parser.add_argument("--redis-url", help="a real Redis (redis://host:port/db); "
                        "default: an in-process fakeredis")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the summary as JSON to PATH")
    parser.add_argument("--otlp-endpoint", metavar="URL",
                        help="export spans, logs and metrics over OTLP/HTTP to URL "
                        "(needs opentelemetry-exporter-otlp-proto-http)")
    return parser


MAX_DURATION = 86_400.0  # a day of simulated time is about 45 s of wall time


def check_otlp_endpoint(url: str) -> str | None:
    """What is wrong with an ``--otlp-endpoint``, or None."""
    from ..cli import redact_url

    shown = redact_url(url)
    try:
        parts = urlparse(url)
        port = parts.port
    except ValueError as exc:
        return f"{shown}: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"must be an http(s) URL, got {shown!r}"
    if not parts.hostname:
        return f"{shown!r} names no host (use e.g. http://127.0.0.1:4318)"
    if port == 0:
        return f"{shown}: port 0 is not a port a collector listens on"
    return None


def main(argv: Sequence[str]) -> int:
    from ..cli import check_redis_url, unwritable

    parser = _parser()
    try:
        args = parser.parse_args(list(argv))
        if args.seed < 0:
            parser.error(f"--seed must be >= 0, got {args.seed}")
        try:
            duration = parse_duration(args.duration, what="--duration")
        except SpecError as exc:
            parser.error(str(exc))
        if duration <= 0:
            parser.error(f"--duration must be positive, got {args.duration!r}")
        if duration > MAX_DURATION:
            parser.error(f"--duration: at most {MAX_DURATION / 3600:g}h of simulated time, "
                         f"got {args.duration!r}")
        problem = args.otlp_endpoint is not None and check_otlp_endpoint(args.otlp_endpoint)
        if problem:
            parser.error(f"--otlp-endpoint: {problem}")
        problem = args.redis_url is not None and check_redis_url(args.redis_url)
        if problem:
            parser.error(f"--redis-url: {problem}")
        problem = args.json is not None and unwritable(args.json)
        if problem:
            parser.error(f"--json: {problem}")
    except SystemExit as exc:  # argparse reports usage errors (2) and --help (0) this way
        return int(exc.code or 0)
    return _run(args.seed, duration, args.redis_url, args.json, args.otlp_endpoint)


def _run(seed: int, duration: float, redis_url: str | None, json_path: Path | None,
         otlp_endpoint: str | None) -> int:
    from ..capture import install_session
    from ..catalog import METRICS
    from ..cli import connect_redis, redact_url
    from ..clock import SimClock
    from .bot import SniperBot

    redis_client = None
    if redis_url:
        try:
            redis_client = connect_redis(redis_url, socket_connect_timeout=2, socket_timeout=2)
        except ValueError as exc:
            print(f"sniper-otel run: --redis-url: {exc}", file=sys.stderr)
            return 2
    otlp: _Otlp | None = None
    if otlp_endpoint:
        try:
            # before the session: the OTLP metric reader must be in the MeterProvider it reads
            otlp = _Otlp(otlp_endpoint.rstrip("/"))
        except ImportError:
            print("sniper-otel run: --otlp-endpoint needs opentelemetry-exporter-otlp-proto-http "
                  "(pip install 'pytest-sniper-otel[otlp]')", file=sys.stderr)
            return 2
    session = install_session()
    if otlp is not None:
        otlp.attach(session)
    wall_start = time.perf_counter()
    with SimClock() as clock, session.capture() as telemetry:
        bot = SniperBot.create(seed=seed, clock=clock, redis=redis_client)
        bot.run_for(duration)
        bot.settle()
        if otlp is not None:
            otlp.flush()  # before reading metrics: spans it failed to send are counted
        summary = bot.summary()
        problems = bot.reconcile()
        recorded = set(telemetry.metric_names())
        summary["telemetry"] = {
            "spans": len(telemetry.spans),
            "logs": len(telemetry.logs),
            "metric_series": len(list(telemetry.metrics_snapshot())),
            "metrics": sorted(recorded),
            "catalogue_metrics_not_recorded": sorted(set(METRICS) - recorded),
        }
        bot.close()
    if otlp is not None:
        summary["otlp"] = {"endpoint": redact_url(otlp.endpoint),
                           "spans_dropped": otlp.spans.dropped}
    summary["reconcile"] = problems
    summary["wall_seconds"] = round(time.perf_counter() - wall_start, 3)
    print(_render(summary))
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return 1 if problems else 0


def _render(s: dict[str, Any]) -> str:
    tel = s["telemetry"]
    lines = [
        f"sniper-otel run: seed {s['seed']}, {s['simulated_seconds']:g} simulated seconds "
        f"in {s['wall_seconds']:g} s of wall time",
        "orders: " + (", ".join(f"{k} {v}" for k, v in s["orders"].items()) or "none"),
        f"PnL: {s['pnl_usd']:+.2f} USD (realized {s['realized_pnl_usd']:+.2f}, "
        f"unrealized {s['unrealized_pnl_usd']:+.2f}), open positions {s['open_positions']}",
        f"success rate: {s['success_rate_percent']:g}%   workflows: {s['workflows']} "
        f"({s['workflow_errors']} failed)   circuit breaker: {s['circuit_breaker']}",
        f"cache: {s['cache']['hits']} hits, {s['cache']['misses']} misses, "
        f"{s['cache']['errors']} errors   failed API attempts: {s['api_failed_attempts']}",
    ]
    lines += [f"halt at +{h['at']:.0f}: {h['reason']}" for h in s["halts"]]
    lines.append(f"telemetry: {tel['spans']} spans, {tel['logs']} log records, "
                 f"{tel['metric_series']} metric series over {len(tel['metrics'])} metrics")
    if tel["catalogue_metrics_not_recorded"]:
        lines.append("not recorded (no such event in this run): "
                     + ", ".join(tel["catalogue_metrics_not_recorded"]))
    if "otlp" in s:
        lines.append(f"OTLP export to {s['otlp']['endpoint']}: "
                     f"{s['otlp']['spans_dropped']} spans could not be delivered")
    lines.append("reconcile: " + ("ledger and exchange agree" if not s["reconcile"]
                                  else f"{len(s['reconcile'])} discrepancies"))
    lines += [f"  {p}" for p in s["reconcile"][:20]]
    return "\n".join(lines)


class _Otlp:
    """OTLP/HTTP export of all three signals, beside the in-memory capture.

    A MeterProvider takes readers only when it is built, so this builds the global one with
    both the plugin's reader and an OTLP reader before the session is installed; span and
    log processors are added to the session's providers afterwards (:meth:`attach`).
    """

    def __init__(self, endpoint: str) -> None:
        from opentelemetry import metrics
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        from ..capture import metric_reader

        self.endpoint = endpoint
        self._processors: list[Any] = []
        # exported at the end of the run (flush); the interval only bounds a long run's gaps
        self._metrics = PeriodicExportingMetricReader(
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", timeout=5),
            export_interval_millis=60_000)
        metrics.set_meter_provider(
            MeterProvider(metric_readers=[metric_reader(), self._metrics]))
        self._processors.append(self._metrics)

    def attach(self, session: Any) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from .telemetry import DropCountingSpanExporter

        self.spans = DropCountingSpanExporter(
            OTLPSpanExporter(endpoint=f"{self.endpoint}/v1/traces", timeout=5))
        if session.tracer_provider is not None:
            self._processors.append(BatchSpanProcessor(self.spans))
            session.tracer_provider.add_span_processor(self._processors[-1])
        if session.logger_provider is not None:
            self._processors.append(BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=f"{self.endpoint}/v1/logs", timeout=5)))
            session.logger_provider.add_log_record_processor(self._processors[-1])

    def flush(self) -> None:
        for processor in self._processors:
            processor.force_flush(10_000)
