"""Micro-benchmarks, measured side by side in one process: the SDK cost floor, what our
telemetry wrappers add above it, and the seed's logging claim.

* floor: a no-op span, a bare SDK span, ``counter.add`` and ``histogram.record`` on the SDK.
* wrappers: each telemetry component of the reference bot against raw SDK calls that
  produce the same spans and metrics (same names, attributes, instruments).
* logging: the seed's structured logging (our ``StructuredLogger`` over the OTel bridge)
  against print/f-string logging and stdlib logging with and without the OTel bridge,
  including the disabled-level path.

Every case runs in every round, in a rotated order, and comparisons are per-round ratios
(median over rounds), so machine noise hits both sides of a ratio alike. Absolute
nanoseconds are reported for orientation only.

    python load/bench.py [--rounds 15] [--batch-ms 5] [--json out.json]
    python load/bench.py --gevent --only floor    # the floor as locust's processes pay it
"""

from __future__ import annotations

import sys

if __name__ == "__main__" and "--gevent" in sys.argv[1:]:
    # As under locust: the standard library patched before anything imports threading.
    from gevent import monkey

    monkey.patch_all()

import argparse
import gc
import io
import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

SECTIONS = ("floor", "wrappers", "logging")

# Seed section 7: "40-60% reduction in logging overhead through structured logging".
SEED_LOGGING_CLAIM = (0.40, 0.60)
WRAPPER_BUDGET = 0.10  # goal: our wrappers add at most 10% over the raw SDK calls


@dataclass(frozen=True)
class Case:
    name: str
    section: str
    fn: Callable[[], object]
    help: str


@dataclass(frozen=True)
class Comparison:
    """``case`` relative to ``baseline``: median per-round ratio and added ns/op."""

    section: str
    case: str
    baseline: str
    ratio: float
    added_ns: float
    case_ns: float
    baseline_ns: float


# -- timing ---------------------------------------------------------------------------------
# CPU time of this process, not wall time: on a shared machine another process taking the
# core mid-batch does not count (the batch processor's export thread still does).
_clock = time.process_time_ns
BATCHES_PER_SAMPLE = 3  # a sample is the fastest of 3 short batches: spikes filtered out


def _time_batch(fn: Callable[[], object], n: int) -> float:
    t0 = _clock()
    for _ in range(n):
        fn()
    return (_clock() - t0) / n


def _sample(fn: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(BATCHES_PER_SAMPLE):
        best = min(best, _time_batch(fn, n))
        # Under gevent the export worker is a greenlet: let it drain the queue between
        # batches, or spans would be dropped (a cheaper path) once the queue is full.
        time.sleep(0)
    return best


def _calibrate(fn: Callable[[], object], batch_ns: float) -> int:
    n = 16
    while True:
        per_op = _time_batch(fn, n)
        if per_op * n >= batch_ns / 4 or n >= 1 << 22:
            return max(16, int(batch_ns / max(per_op, 1.0)))
        n *= 4


def _noop() -> None:
    pass


def measure(
    cases: Sequence[Case],
    *,
    rounds: int,
    batch_ms: float,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, list[float]]:
    """ns/op of every case in every round (call overhead of an empty function removed).

    Cases run interleaved, starting one later each round, so slow drift and position in
    the round spread evenly over all cases.
    """
    all_cases = [Case("_call", "-", _noop, "empty call"), *cases]
    batch_ns = batch_ms * 1e6
    sizes = {c.name: _calibrate(c.fn, batch_ns) for c in all_cases}
    samples: dict[str, list[float]] = {c.name: [] for c in all_cases}
    k = len(all_cases)
    for r in range(rounds):
        for i in range(k):
            c = all_cases[(r + i) % k]
            gc.collect()
            samples[c.name].append(_sample(c.fn, sizes[c.name]))
        if progress is not None:
            progress(r + 1, rounds)
    call = samples.pop("_call")
    return {
        name: [max(s - o, 0.0) for s, o in zip(xs, call, strict=True)]
        for name, xs in samples.items()
    }


def compare(samples: dict[str, list[float]], section: str, case: str, baseline: str) -> Comparison:
    a, b = samples[case], samples[baseline]
    return Comparison(
        section=section,
        case=case,
        baseline=baseline,
        ratio=statistics.median(x / y for x, y in zip(a, b, strict=True) if y > 0),
        added_ns=statistics.median(x - y for x, y in zip(a, b, strict=True)),
        case_ns=statistics.median(a),
        baseline_ns=statistics.median(b),
    )


# -- the cases ------------------------------------------------------------------------------
@contextmanager
def _sdk_process() -> Iterator[Any]:
    """Install SDK providers for this process: batch processors with null exporters, as in
    the load test's ``all`` variant; the metric reader never fires during the benchmark."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from otel_setup import VARIANTS, install

    installed = install(VARIANTS["all"], metric_interval_ms=3_600_000)
    try:
        yield installed
    finally:
        installed.shutdown()


def build_cases(sink: io.TextIOBase) -> tuple[list[Case], list[tuple[str, str, str]]]:
    """Cases and the (section, case, baseline) comparisons to report."""
    from opentelemetry import context, metrics, trace
    from opentelemetry.trace import NoOpTracer, SpanKind, Status, StatusCode

    from pytest_sniper_otel.flow import telemetry as t

    cases: list[Case] = []
    comps: list[tuple[str, str, str]] = []

    def case(section: str, name: str, help_: str) -> Callable[[Callable[[], object]], None]:
        def register(fn: Callable[[], object]) -> None:
            cases.append(Case(name, section, fn, help_))

        return register

    # floor ---------------------------------------------------------------------------
    noop_tracer = NoOpTracer()
    sdk_tracer = trace.get_tracer("bench-floor")
    meter = metrics.get_meter("bench-floor")
    counter = meter.create_counter("bench_floor_total")
    histogram = meter.create_histogram("bench_floor_ms")
    from opentelemetry.metrics import NoOpMeter

    noop_counter = NoOpMeter("noop").create_counter("noop_total")
    two = {"trading.symbol": "BTCUSDT", "trading.operation": "execution"}
    three = {"symbol": "BTCUSDT", "pattern_type": "ready_state", "confidence_tier": "high"}

    @case("floor", "noop_span", "no-op API span, 2 attributes")
    def _() -> None:
        with noop_tracer.start_as_current_span("op", attributes=two):
            pass

    @case("floor", "sdk_span", "SDK span, 2 attributes, start_as_current_span")
    def _() -> None:
        with sdk_tracer.start_as_current_span("op", attributes=two):
            pass

    @case("floor", "noop_counter_add", "no-op counter.add, 3 attributes")
    def _() -> None:
        noop_counter.add(1, three)

    @case("floor", "sdk_counter_add", "SDK counter.add, 3 attributes")
    def _() -> None:
        counter.add(1, three)

    @case("floor", "sdk_histogram_record", "SDK histogram.record, 2 attributes")
    def _() -> None:
        histogram.record(12.5, two)

    comps += [("floor", "sdk_span", "noop_span"), ("floor", "sdk_counter_add", "noop_counter_add")]

    # wrappers: ours vs raw SDK producing the same telemetry ----------------------------
    tracer = t.TradingOperationTracer()
    raw_tracer = trace.get_tracer(t.TRACER_TRADING, t.INSTRUMENTATION_VERSION)
    collector = t.TradingMetricsCollector()
    cache = t.RedisCacheObservability()
    ml = t.MLModelObservability()
    inst = t.instruments()
    c_detect, h_conf = (
        inst.counters["pattern_detections_total"],
        inst.histograms["pattern_confidence_score"],
    )
    h_exec = inst.histograms["execution_latency_ms"]
    c_hits = inst.counters["cache_hits_total"]
    h_model_conf = inst.histograms["model_confidence_distribution"]
    c_by_type = inst.counters["detected_patterns_by_type"]

    @dataclass(frozen=True)
    class _Exec:
        ok: bool = True
        error_description: str = ""

        def span_attributes(self) -> dict[str, t.AttrValue]:
            return {"order.status": "FILLED", "order.quantity": 10.0}

    exec_result = _Exec()

    @case("wrappers", "ours_span", "TradingOperationTracer.span(name, 2 attributes)")
    def _() -> None:
        with tracer.span("risk-assessment", two):
            pass

    @case("wrappers", "raw_span", "the same span through the SDK tracer")
    def _() -> None:
        with raw_tracer.start_as_current_span(
            "risk-assessment", kind=SpanKind.INTERNAL, attributes=dict(two)
        ):
            pass

    @case("wrappers", "ours_execution_flow", "TradingOperationTracer.trace_execution_flow")
    def _() -> None:
        tracer.trace_execution_flow("BTCUSDT", lambda: exec_result)

    @case("wrappers", "raw_execution_flow", "the same span, attributes and status, raw")
    def _() -> None:
        with raw_tracer.start_as_current_span(
            "trading-execution-flow",
            kind=SpanKind.INTERNAL,
            attributes={
                "trading.symbol": "BTCUSDT",
                "trading.operation": "execution",
                "trading.phase": "live_trading",
            },
        ) as span:
            result = exec_result
            span.set_attributes(result.span_attributes())
            span.set_status(Status(StatusCode.OK))

    @case("wrappers", "ours_pattern_detection", "TradingMetricsCollector.record_pattern_detection")
    def _() -> None:
        collector.record_pattern_detection("BTCUSDT", 0.87, "ready_state")

    @case("wrappers", "raw_pattern_detection", "the same counter add + histogram record, raw")
    def _() -> None:
        c_detect.add(
            1, {"symbol": "BTCUSDT", "pattern_type": "ready_state", "confidence_tier": "high"}
        )
        h_conf.record(0.87, {"symbol": "BTCUSDT", "pattern_type": "ready_state"})

    @case("wrappers", "ours_execution_latency", "TradingMetricsCollector.record_execution_latency")
    def _() -> None:
        collector.record_execution_latency("BTCUSDT", 42.0, True)

    @case("wrappers", "raw_execution_latency", "the same histogram record, raw")
    def _() -> None:
        h_exec.record(42.0, {"symbol": "BTCUSDT", "execution_result": "success"})

    @case("wrappers", "ours_cache_lookup", "RedisCacheObservability.record_lookup")
    def _() -> None:
        cache.record_lookup("listing:BTCUSDT", True)

    @case("wrappers", "raw_cache_lookup", "the same counter add (key pattern computed), raw")
    def _() -> None:
        prefix, sep, _ = "listing:BTCUSDT".partition(":")
        c_hits.add(1, {"key_pattern": f"{prefix}:*" if sep else "*"})

    @case("wrappers", "ours_ml_pattern", "MLModelObservability.record_pattern")
    def _() -> None:
        ml.record_pattern("ready_state", 0.87, "low")

    @case("wrappers", "raw_ml_pattern", "the same histogram record + counter add, raw")
    def _() -> None:
        h_model_conf.record(0.87, {"pattern_type": "ready_state", "risk_level": "low"})
        c_by_type.add(1, {"pattern_type": "ready_state", "confidence_tier": "high"})

    for pair in (
        "span",
        "execution_flow",
        "pattern_detection",
        "execution_latency",
        "cache_lookup",
        "ml_pattern",
    ):
        comps.append(("wrappers", f"ours_{pair}", f"raw_{pair}"))

    # logging ---------------------------------------------------------------------------
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")

    def quiet_logger(name: str, *handlers: logging.Handler) -> logging.Logger:
        lg = logging.getLogger(name)
        lg.propagate = False
        lg.setLevel(logging.INFO)
        for h in handlers:
            lg.addHandler(h)
        return lg

    stream = logging.StreamHandler(sink)
    stream.setFormatter(fmt)
    plain = quiet_logger("bench.stdlib", stream)
    # The bot's logger tree already carries the OTel bridge (installed by otel_setup).
    bridged = logging.getLogger("sniper.bench-stdlib")
    slog = t.StructuredLogger("bench-structured")
    slog_off = t.StructuredLogger("bench-structured-off")
    slog_off.logger.setLevel(logging.WARNING)
    ctx = t.LogContext(component="DataFetcher", operation="fetchCalendar", symbol="BTCUSDT")
    sym, attempt = "BTCUSDT", 3
    debug_enabled = False

    @case("logging", "print_fstring", "print(f'...') to a line-buffered sink (console.log)")
    def _() -> None:
        print(f"[DataFetcher] Fetching calendar data for {sym} (attempt {attempt})", file=sink)

    @case("logging", "stdlib_fstring", "logging.info(f'...') to a stream handler")
    def _() -> None:
        plain.info(f"[DataFetcher] Fetching calendar data for {sym} (attempt {attempt})")

    @case("logging", "stdlib_lazy", "logging.info('%s', args) to a stream handler")
    def _() -> None:
        plain.info("[DataFetcher] Fetching calendar data for %s (attempt %d)", sym, attempt)

    @case("logging", "stdlib_otel_bridge", "logging.info('%s', args) -> OTel bridge only")
    def _() -> None:
        bridged.info("Fetching calendar data for %s (attempt %d)", sym, attempt)

    @case("logging", "structured_otel", "seed StructuredLogger.info(msg, context) -> OTel")
    def _() -> None:
        slog.info("Fetching calendar data from MEXC API", ctx, attempt=attempt)

    @case("logging", "print_guarded_off", "if DEBUG: print(...), flag off")
    def _() -> None:
        if debug_enabled:
            print(f"[DataFetcher] debug {sym}", file=sink)

    @case("logging", "stdlib_disabled", "logging.debug('%s', args) below the level")
    def _() -> None:
        bridged.debug("Fetching calendar data for %s (attempt %d)", sym, attempt)

    @case("logging", "structured_disabled", "StructuredLogger.info below the logger's level")
    def _() -> None:
        slog_off.info("Fetching calendar data from MEXC API", ctx, attempt=attempt)

    raw_slog = slog.logger

    @case("wrappers", "ours_structured_log", "StructuredLogger.info(msg, context, attempt=3)")
    def _() -> None:
        slog.info("Fetching calendar data from MEXC API", ctx, attempt=attempt)

    @case("wrappers", "raw_structured_log", "the same record: logger.info(msg, extra={...})")
    def _() -> None:
        raw_slog.info(
            "Fetching calendar data from MEXC API",
            extra={
                "component": "DataFetcher",
                "operation": "fetchCalendar",
                "symbol": "BTCUSDT",
                "attempt": attempt,
            },
        )

    comps.append(("wrappers", "ours_structured_log", "raw_structured_log"))

    for name in (
        "stdlib_fstring",
        "stdlib_lazy",
        "stdlib_otel_bridge",
        "structured_otel",
        "stdlib_disabled",
        "structured_disabled",
    ):
        comps.append(("logging", name, "print_fstring"))
    comps.append(("logging", "structured_otel", "stdlib_lazy"))

    # Logs are emitted inside an active span, as the bot's are (the bridge stamps its ids).
    span = sdk_tracer.start_span("bench-logging-parent")
    context.attach(trace.set_span_in_context(span))
    return cases, comps


def run(
    rounds: int, batch_ms: float, progress: bool = True, sections: Sequence[str] = SECTIONS
) -> dict[str, Any]:
    with open(os.devnull, "w", buffering=1) as sink, _sdk_process() as installed:
        cases, comps = build_cases(sink)
        cases = [c for c in cases if c.section in sections]
        comps = [c for c in comps if c[0] in sections]

        def show(done: int, total: int) -> None:
            if progress:
                print(
                    f"\r  micro-benchmarks: round {done}/{total}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )

        samples = measure(cases, rounds=rounds, batch_ms=batch_ms, progress=show)
        if progress:
            print(file=sys.stderr)
        exported = installed.exported()
    comparisons = [compare(samples, *c) for c in comps]
    return {
        "gevent": "gevent.monkey" in sys.modules and _patched(),
        "sections": list(sections),
        "rounds": rounds,
        "batch_ms": batch_ms,
        "cases": {
            c.name: {
                "section": c.section,
                "help": c.help,
                "median_ns": statistics.median(samples[c.name]),
                "samples_ns": samples[c.name],
            }
            for c in cases
        },
        "comparisons": [asdict(c) for c in comparisons],
        "exported": exported,
        "seed_logging_claim": list(SEED_LOGGING_CLAIM),
        "wrapper_budget": WRAPPER_BUDGET,
    }


def _patched() -> bool:
    from gevent import monkey

    return bool(monkey.is_module_patched("threading"))


# -- report ---------------------------------------------------------------------------------
def _us(ns: float) -> str:
    return f"{ns / 1000:8.2f}"


def render(result: dict[str, Any]) -> str:
    sections = result["sections"]
    parts = [
        f(result)
        for name, f in (("floor", _render_floor), ("wrappers", _render_wrappers),
                        ("logging", _render_logging))
        if name in sections
    ]  # fmt: skip
    return "\n\n".join(parts)


def _render_floor(result: dict[str, Any]) -> str:
    where = "gevent-patched, as under locust" if result.get("gevent") else "plain threads"
    out = [f"SDK cost floor (median of {result['rounds']} interleaved rounds, {where})"]
    for name, c in result["cases"].items():
        if c["section"] == "floor":
            out.append(f"  {name:<22} {_us(c['median_ns'])} us/op   {c['help']}")
    return "\n".join(out)


def _render_wrappers(result: dict[str, Any]) -> str:
    out = [
        f"Our wrappers vs raw SDK calls producing the same telemetry "
        f"(goal: <= +{WRAPPER_BUDGET:.0%})",
        f"  {'wrapper':<24} {'ours us':>8} {'raw us':>8} {'ratio':>7} {'added us':>9}",
    ]
    worst = 0.0
    for c in (Comparison(**c) for c in result["comparisons"]):
        if c.section == "wrappers":
            worst = max(worst, c.ratio)
            verdict = "ok" if c.ratio <= 1 + WRAPPER_BUDGET else "OVER BUDGET"
            out.append(
                f"  {c.case.removeprefix('ours_'):<24} {_us(c.case_ns)} {_us(c.baseline_ns)}"
                f" {c.ratio:7.3f} {_us(c.added_ns)}  {verdict}"
            )
    out.append(f"  worst ratio {worst:.3f}")
    return "\n".join(out)


def _render_logging(result: dict[str, Any]) -> str:
    cases = result["cases"]
    lo, hi = result["seed_logging_claim"]
    base = cases["print_fstring"]["median_ns"]
    out = [
        f"Logging: cost per call relative to print(f'...') "
        f"(seed claims a {lo:.0%}-{hi:.0%} reduction)",
        f"  {'path':<22} {'us/call':>8} {'vs print':>9} {'reduction':>10}",
        f"  {'print_fstring':<22} {_us(base)} {1.0:9.3f} {'-':>10}",
    ]
    comps = [Comparison(**c) for c in result["comparisons"] if c["section"] == "logging"]
    for c in comps:
        if c.baseline == "print_fstring":
            out.append(f"  {c.case:<22} {_us(c.case_ns)} {c.ratio:9.3f} {1 - c.ratio:10.0%}")
    guarded = cases["print_guarded_off"]["median_ns"]
    out.append(f"  {'print_guarded_off':<22} {_us(guarded)}   (if-flag around print, flag off)")
    for c in comps:
        if c.baseline == "stdlib_lazy":
            out.append(f"  structured_otel vs stdlib_lazy (stream handler): ratio {c.ratio:.3f}")
    on = next(c.ratio for c in comps if c.case == "structured_otel" and c.baseline != "stdlib_lazy")
    off = next(c.ratio for c in comps if c.case == "structured_disabled")
    for target in (lo, hi):
        # Share of former print() calls that must fall below the level for structured
        # logging to cost (1 - target) of print overall: (1-f)*on + f*off = 1 - target.
        f = (on - (1 - target)) / (on - off) if on > off else float("nan")
        out.append(f"  a {target:.0%} reduction needs {f:.1%} of the calls below the active level")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batch-ms", type=float, default=5.0, help="CPU time per batch")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON ('-' for stdout)")
    p.add_argument("--quiet", action="store_true", help="no progress, no table")
    p.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections")
    p.add_argument(
        "--gevent",
        action="store_true",
        help="gevent-patch the standard library first, as locust does",
    )
    args = p.parse_args(argv)
    if args.rounds < 3:
        p.error("--rounds must be at least 3 (medians of ratios need several rounds)")
    if args.batch_ms <= 0:
        p.error("--batch-ms must be positive")
    sections = ("floor", "wrappers", "logging") if args.only is None else tuple(args.only)
    result = run(args.rounds, args.batch_ms, progress=not args.quiet, sections=sections)
    if args.json == "-":
        print(json.dumps(result))
    elif args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if not args.quiet:
        print(render(result), file=sys.stderr if args.json == "-" else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
