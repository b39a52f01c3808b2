"""``sniper-otel run``: the reference bot on simulated time, with its telemetry captured.

Prints what the bot did (orders by outcome, PnL, halts, reconciliation) and what it
recorded (spans, logs, metric series). Bad input exits 2; a run whose ledger does not
reconcile with the exchange exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .. import SpecError, parse_duration, real_monotonic
from ..interrupts import handled, raise_if_interrupted


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
    parser.add_argument("--otlp-timeout", metavar="DURATION",
                        help="real time an OTLP export may take before it counts as failed: "
                        "500ms, 2s, 1m... (default 2s); shutdown waits at most "
                        f"{_Otlp.SHUTDOWN_BUDGET_PER_TIMEOUT:g}x it to drain spans and logs "
                        "plus 1x for the last metric export")
    return parser


MAX_DURATION = 86_400.0  # a day of simulated time is about 45 s of wall time
MAX_OTLP_TIMEOUT = 300.0  # shutdown could otherwise wait hours on a hung collector


def _positive_duration(parser: argparse.ArgumentParser, option: str, text: str,
                       maximum: float, maximum_text: str, given: str | None = None) -> float:
    """``text`` in seconds, or a usage error naming ``option`` (``given``: what the user
    typed, when ``text`` is a default standing in for it)."""
    shown = text if given is None else given
    try:
        seconds = parse_duration(text, what=option)
    except SpecError as exc:
        parser.error(str(exc))
    if seconds <= 0:
        parser.error(f"{option} must be positive, got {shown!r}")
    if seconds > maximum:
        parser.error(f"{option}: at most {maximum_text}, got {shown!r}")
    return seconds


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
        duration = _positive_duration(parser, "--duration", args.duration, MAX_DURATION,
                                      f"{MAX_DURATION / 3600:g}h of simulated time")
        if args.otlp_timeout is not None and args.otlp_endpoint is None:
            parser.error("--otlp-timeout bounds OTLP exports: it needs --otlp-endpoint")
        otlp_timeout = _positive_duration(parser, "--otlp-timeout", args.otlp_timeout or "2s",
                                          MAX_OTLP_TIMEOUT, f"{MAX_OTLP_TIMEOUT / 60:g}m",
                                          given=args.otlp_timeout)
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
    return _run(args.seed, duration, args.redis_url, args.json, args.otlp_endpoint, otlp_timeout)


def _run(seed: int, duration: float, redis_url: str | None, json_path: Path | None,
         otlp_endpoint: str | None, otlp_timeout: float) -> int:
    from ..capture import install_session
    from ..catalog import METRICS
    from ..cli import connect_redis, redact_url
    from ..clock import SimClock
    from .bot import SniperBot
    from .telemetry import unregister_source

    redis_client = None
    if redis_url:
        try:
            # short timeouts and no client retries: a hung server (SIGSTOP) costs the run a
            # quarter second per cache operation, which then falls through to the exchange
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            redis_client = connect_redis(redis_url, socket_connect_timeout=1.0,
                                         socket_timeout=0.25, retry=Retry(NoBackoff(), 0))
        except ValueError as exc:
            print(f"sniper-otel run: --redis-url: {exc}", file=sys.stderr)
            return 2
    otlp: _Otlp | None = None
    if otlp_endpoint:
        try:
            # before the session: the OTLP metric reader must be in the MeterProvider it reads
            otlp = _Otlp(otlp_endpoint.rstrip("/"), otlp_timeout)
        except ImportError:
            print("sniper-otel run: --otlp-endpoint needs opentelemetry-exporter-otlp-proto-http "
                  "(pip install 'pytest-sniper-otel[otlp]')", file=sys.stderr)
            return 2
    session = install_session()
    if otlp is not None:
        otlp.attach(session)
    wall_start = time.perf_counter()
    with SimClock() as clock, session.capture() as telemetry, \
            (otlp.recording() if otlp is not None else contextlib.nullcontext()):
        bot = SniperBot.create(seed=seed, clock=clock, redis=redis_client)
        start = clock.time()
        interrupted: BaseException | None = None
        try:
            # in steps: telemetry goes to the exporter between them (the run never waits
            # on a collector), and an interrupt stops at a step
            progress = _Progress(duration, sys.stderr)
            while (left := start + duration - clock.time()) > 0:
                raise_if_interrupted()  # one dropped by a finaliser during the last step
                bot.run_for(min(OTLP_STEP, left))
                if otlp is not None:
                    otlp.pump(clock.time() - start)
                progress.update(clock.time() - start)
            raise_if_interrupted()
            bot.settle()
        except KeyboardInterrupt as exc:  # SIGINT/SIGTERM: a partial, marked summary
            interrupted = exc
            interrupted_by = handled(exc)
        except BaseException:
            # The bot crashed: still deliver what it recorded, which is what explains it.
            if otlp is not None:
                otlp.finish(clock.time() - start)
            raise
        summary = bot.summary()
        problems = bot.reconcile()
        recorded = set(telemetry.metric_names())  # while the bot still reports its gauges
        if interrupted is None:
            bot.close()
        else:  # no settling: remove the bot's keys and stop its gauges, nothing more
            bot.cache.close()
            unregister_source(bot)
            summary["interrupted"] = interrupted_by
        if otlp is not None:
            # before reading metrics again: what it failed to deliver is counted in them
            otlp.finish(clock.time() - start)
            recorded |= set(telemetry.metric_names())
        summary["telemetry"] = {
            "spans": len(telemetry.spans),
            "logs": len(telemetry.logs),
            "metric_series": len(list(telemetry.metrics_snapshot())),
            "metrics": sorted(recorded),
            "catalogue_metrics_not_recorded": sorted(set(METRICS) - recorded),
        }
    if otlp is not None:
        summary["otlp"] = {"endpoint": redact_url(otlp.endpoint), **otlp.accounting()}
    summary["reconcile"] = problems
    summary["wall_seconds"] = round(time.perf_counter() - wall_start, 3)
    print(_render(summary))
    if json_path is not None:
        json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    if interrupted is not None:
        from ..interrupts import interrupt_status

        print(f"sniper-otel run: interrupted by {summary['interrupted']}; the bot's keys "
              "removed; the summary is partial", file=sys.stderr)
        return interrupt_status(interrupted)
    return 1 if problems else 0


def _render(s: dict[str, Any]) -> str:
    tel = s["telemetry"]
    lines = [
        f"sniper-otel run: seed {s['seed']}, {s['simulated_seconds']:g} simulated seconds "
        f"in {s['wall_seconds']:g} s of wall time"
        + (f" (INTERRUPTED by {s['interrupted']})" if "interrupted" in s else ""),
        "orders: " + (", ".join(f"{k} {v}" for k, v in s["orders"].items()) or "none"),
        f"PnL: {s['pnl_usd']:+.2f} USD (realized {s['realized_pnl_usd']:+.2f}, "
        f"unrealized {s['unrealized_pnl_usd']:+.2f}), open positions {s['open_positions']}",
        f"success rate: {s['success_rate_percent']:g}%   workflows: {s['workflows']} "
        f"({s['workflow_errors']} failed)   circuit breaker: {s['circuit_breaker']}",
        f"cache: {s['cache']['hits']} hits, {s['cache']['misses']} misses, "
        f"{s['cache']['errors']} errors   failed API attempts: {s['api_failed_attempts']}",
    ]
    if s["cache_breaker"]["opens"]:
        lines.append(f"cache breaker: opened {s['cache_breaker']['opens']} time(s) as Redis hung; "
                     f"{s['cache_breaker']['bypassed']} operations skipped it for the exchange")
    lines += [f"halt at +{h['at']:.0f}: {h['reason']}" for h in s["halts"]]
    lines.append(f"telemetry: {tel['spans']} spans, {tel['logs']} log records, "
                 f"{tel['metric_series']} metric series over {len(tel['metrics'])} metrics")
    if tel["catalogue_metrics_not_recorded"]:
        lines.append("not recorded (no such event in this run): "
                     + ", ".join(tel["catalogue_metrics_not_recorded"]))
    if "otlp" in s:
        o = s["otlp"]
        lines.append(f"OTLP export to {o['endpoint']} (shutdown budget "
                     f"{o['shutdown_budget_s']:g} s, took {o['shutdown_s']:g} s):")
        for signal, n in o["signals"].items():
            dropped = ", ".join(f"{r} {k}" for r, k in n["dropped"].items())
            lines.append(f"  {signal}: {n['accepted']} accepted = {n['exported']} exported + "
                         f"{sum(n['dropped'].values())} dropped" + (f" ({dropped})" if dropped
                                                                    else ""))
    lines.append("reconcile: " + ("ledger and exchange agree" if not s["reconcile"]
                                  else f"{len(s['reconcile'])} discrepancies"))
    lines += [f"  {p}" for p in s["reconcile"][:20]]
    return "\n".join(lines)


OTLP_STEP = 5.0  # simulated seconds between hand-overs to the exporter (and interrupts)


class _Progress:
    """On long runs, a line on stderr every ``every`` real seconds: how far the simulated
    run got, so a run slowed by a hung dependency is visibly alive."""

    def __init__(self, duration: float, stream: Any, every: float = 5.0) -> None:
        self.duration, self.stream, self.every = duration, stream, every
        self._real = real_monotonic
        self._next = self._real() + every

    def update(self, simulated: float) -> None:
        now = self._real()
        if now >= self._next:
            self._next = now + self.every
            print(f"sniper-otel run: {simulated:.0f}/{self.duration:.0f} simulated seconds "
                  f"({simulated / self.duration:.0%})", file=self.stream, flush=True)


class _Otlp:
    """OTLP/HTTP export of all three signals, beside the in-memory capture, with every item
    that is not delivered counted (``telemetry_dropped_total{signal,reason}`` and the summary).

    Spans and log records go through the chaos harness's :class:`ExportPipeline`: a bounded
    queue, one export at a time in a worker thread that the run never waits on (an export
    still unanswered after ``export_timeout`` + 0.5 real seconds is given up), drops counted
    as ``queue_full``, ``export_failed``, ``export_timeout`` or ``shutdown``. Metric points
    go through a periodic reader whose exporter counts what it
    could not deliver. Shutdown takes at most ``SHUTDOWN_BUDGET_PER_TIMEOUT`` export timeouts
    for spans and logs plus one for the last metric export.

    A MeterProvider takes readers only when it is built, so this builds the global one with
    both the plugin's reader and the OTLP reader before the session is installed.
    """

    # 5 s at the default 2 s timeout: the span and log exports in flight and a few more
    SHUTDOWN_BUDGET_PER_TIMEOUT = 2.5

    def __init__(self, endpoint: str, export_timeout: float = 2.0) -> None:
        from opentelemetry import metrics
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        from ..capture import metric_reader

        self.endpoint = endpoint
        self.export_timeout = export_timeout
        self.shutdown_budget = self.SHUTDOWN_BUDGET_PER_TIMEOUT * export_timeout
        self.metric_points = _counting_metric_exporter(OTLPMetricExporter(
            endpoint=f"{endpoint}/v1/metrics", timeout=export_timeout))
        # exported at the end of the run; the interval only bounds a long run's gaps
        self._metrics = PeriodicExportingMetricReader(
            self.metric_points, export_interval_millis=60_000,
            export_timeout_millis=export_timeout * 1000)
        # no atexit shutdown: finish() shuts the OTLP reader down within the budget, and a
        # second shutdown at exit would only log "Can't shutdown multiple times"
        metrics.set_meter_provider(MeterProvider(
            metric_readers=[metric_reader(), self._metrics], shutdown_on_exit=False))
        self.shutdown_seconds = 0.0

    def attach(self, session: Any) -> None:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from ..chaos.export import ExportPipeline, _LogAdapter

        timeout = self.export_timeout
        self.pipeline = ExportPipeline(
            exporter=OTLPSpanExporter(endpoint=f"{self.endpoint}/v1/traces", timeout=timeout),
            log_exporter=OTLPLogExporter(endpoint=f"{self.endpoint}/v1/logs", timeout=timeout),
            # the HTTP request gives up first; the margin covers encoding the batch
            export_timeout=timeout + 0.5, max_queue=8192, blocking=False)
        session.require("traces")
        session.tracer_provider.add_span_processor(self.pipeline)
        if session.logger_provider is not None:
            session.logger_provider.add_log_record_processor(_LogAdapter(self.pipeline))

    def recording(self) -> Any:
        return self.pipeline.enabled()

    def pump(self, now: float) -> None:
        self.pipeline.pump(now)

    def finish(self, now: float) -> None:
        real = real_monotonic
        started = real()
        self.pipeline.drain(now, rounds=1024, budget=self.shutdown_budget)
        self._metrics.shutdown(timeout_millis=self.export_timeout * 1000)
        self.shutdown_seconds = real() - started

    def accounting(self) -> dict[str, Any]:
        stats = self.pipeline.stats
        signals: dict[str, Any] = {}
        for signal in ("traces", "logs"):
            signals[signal] = {
                "accepted": stats.accepted[signal], "exported": stats.exported[signal],
                "dropped": {r: n for (s, r), n in sorted(stats.dropped.items())
                            if s == signal and n}}
        m = self.metric_points
        signals["metrics"] = {"accepted": m.accepted, "exported": m.exported,
                              "dropped": {"export_failed": m.failed} if m.failed else {}}
        return {"signals": signals, "shutdown_budget_s": self.shutdown_budget
                + self.export_timeout, "shutdown_s": round(self.shutdown_seconds, 3)}


def _counting_metric_exporter(inner: Any) -> Any:
    """Wraps a metric exporter: data points handed to it, delivered, and not delivered (also
    counted in ``telemetry_dropped_total{signal="metrics"}``)."""
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    from .telemetry import add

    class CountingMetricExporter(MetricExporter):
        def __init__(self) -> None:
            super().__init__(preferred_temporality=inner._preferred_temporality,
                             preferred_aggregation=inner._preferred_aggregation)
            self.accepted = self.exported = self.failed = 0

        def export(self, metrics_data: Any, timeout_millis: float = 10_000,
                   **kwargs: Any) -> MetricExportResult:
            points = sum(len(m.data.data_points) for rm in metrics_data.resource_metrics
                         for sm in rm.scope_metrics for m in sm.metrics)
            self.accepted += points
            try:
                result = inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            except Exception:
                result = MetricExportResult.FAILURE
            if result == MetricExportResult.SUCCESS:
                self.exported += points
            elif points:
                self.failed += points
                add("telemetry_dropped_total", points, signal="metrics", reason="export_failed")
            return MetricExportResult.SUCCESS if result == MetricExportResult.SUCCESS \
                else MetricExportResult.FAILURE

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return bool(inner.force_flush(timeout_millis=timeout_millis))

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            inner.shutdown(timeout_millis=timeout_millis, **kwargs)

    return CountingMetricExporter()
