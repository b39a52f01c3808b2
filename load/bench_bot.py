"""What the reference bot's telemetry adds per cycle, against the floor: the same number of
bare SDK operations. A benchmark, not a test.

One cycle is one safety interval of simulated time (``load/driver.py``), at zero exchange
latency: pure CPU. Arms, each in its own process (global providers are set once per
process), the order rotated every round:

* ``none``: no telemetry (the API's no-op providers), the bot unchanged;
* ``all``: traces, metrics and logs through the SDK, batch processors and null exporters,
  as the load test's ``all`` variant;
* ``all-redis-uninstrumented``: the same with ``BotConfig(instrument_redis=False)``: what
  the Redis command spans (``GET`` under ``redis.get``) cost;
* ``none+bare``: the ``none`` bot, with the bare operations of the second floor (below) run
  between its cycles at its rates, on SDK providers of its own (the ``all`` pipeline, not
  installed globally): what the same SDK work costs when it runs among the bot's work
  instead of back to back. A diagnostic, not the goal's floor.

A counting run (not timed) records what one cycle emits: spans (the bot's and the Redis
instrumentation's), counter adds, histogram records and log records, and their mean
attribute counts. In the ``all`` process the same number of bare SDK operations is timed
on the same providers, attributes given at once: spans (``start_as_current_span``),
``counter.add``, ``histogram.record``, stdlib ``logger.info`` bridged to OTel. Goal: the CPU
telemetry adds per cycle (``all`` - ``none``) <= 1.25x that floor, with the bot's attribute
counts (also shown with a fixed 3 attributes). CPU time: another process taking the core
does not count.

That floor is each operation's best of 7 runs of 2,000: it leaves out the garbage
collections the SDK's objects trigger (a span lives on, queued for export, so its objects
age into older generations, whose collections walk the whole heap, the bot's included).
The bot's run pays them. So a second floor times the same operations at the bot's rates
per cycle, over as many cycles, in the same process after the bot's run, collector on, as
a mean: the ratio against it is what the bot adds beyond the SDK's own cost, collections
included.

Where the rest goes: ``none+bare`` - ``none`` is that second floor's work done among the
bot's (its caches evicted by the bot's work and the other way round, collections walking
the bot's young objects); what ``all`` adds beyond it is the bot's telemetry doing more than
the bare operations (the Redis instrumentation's per-attribute calls, attributes and
statuses set after the work). Each arm also reports the CPU its garbage collections took
(``gc.callbacks``, thread CPU time) per cycle.

    python load/bench_bot.py [--rounds 5] [--bots 4] [--cycles 150] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OPS = ("span", "counter_add", "histogram_record", "log_record")
# all signals, BotConfig(instrument_redis=False): what the Redis command spans cost
REDIS_OFF = "all-redis-uninstrumented"
# no telemetry for the bot, the second floor's bare operations run between its cycles
INTERLEAVED = "none+bare"
ARMS = ("none", "all", REDIS_OFF, INTERLEAVED)
# The attribute counts of the floor operations when not matched to the bot's
FIXED_ATTRIBUTES = {"span": 3, "counter_add": 3, "histogram_record": 3, "log_record": 0}
GOAL = 1.25
WARMUP_CYCLES = 20


def _drivers(bots: int, *, instrument_redis: bool = True) -> list[Any]:
    sys.path.insert(0, str(HERE))
    from driver import BotDriver

    from pytest_sniper_otel.flow import BotConfig

    config = BotConfig(instrument_redis=instrument_redis)
    return [BotDriver(seed, scale=0.0, config=config) for seed in range(bots)]


def _run_cycles(drivers: list[Any], cycles: int,
                between: Callable[[], None] | None = None) -> None:
    for _ in range(cycles):
        for d in drivers:
            d.cycle()
            if between is not None:
                between()


def _install(variant: str) -> Any:
    sys.path.insert(0, str(HERE))
    from otel_setup import VARIANTS, install

    # The metric reader never fires during the run: its export is not per-cycle work.
    return install(VARIANTS[variant], metric_interval_ms=3_600_000)


class CollectorClock:
    """CPU time (of the thread that triggered each) spent in garbage collections while
    entered."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._started

    def __enter__(self) -> CollectorClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


def arm(
    variant: str, bots: int, cycles: int, attributes: dict[str, int], rates: dict[str, float]
) -> dict[str, Any]:
    """CPU seconds per cycle of ``bots`` bots run ``cycles`` cycles each (after a warm-up),
    and in the ``all`` arm the floors: bare SDK operations on the same providers, with the
    fixed attribute counts and with ``attributes`` (the bot's mean per operation), each
    operation alone, and all of them at ``rates`` (the bot's operations per cycle). In the
    ``none+bare`` arm, the latter run after each bot cycle, on providers of their own."""
    installed = _install({REDIS_OFF: "all", INTERLEAVED: "none"}.get(variant, variant))
    drivers = _drivers(bots, instrument_redis=variant != REDIS_OFF)
    between: Callable[[], None] | None = None
    private: Any = None
    if variant == INTERLEAVED:
        private = _PrivatePipeline()
        ops = _bare_operations(attributes, private.tracer, private.meter, private.logger)
        schedule = iter(_schedule(ops, rates, bots * (WARMUP_CYCLES + cycles)))

        def between() -> None:
            for operation in next(schedule):
                operation()

        # as in the all arm's floors: logs carry span ids, metrics offer exemplars
        private.enter_parent()
    _run_cycles(drivers, WARMUP_CYCLES, between)
    gc.collect()
    with CollectorClock() as collector:
        started = time.process_time()
        _run_cycles(drivers, cycles, between)
        cpu = (time.process_time() - started) / (bots * cycles)
    out: dict[str, Any] = {"variant": variant, "cpu_per_cycle_us": cpu * 1e6,
                           "collector_us": collector.seconds / (bots * cycles) * 1e6}
    if variant == "all":
        out["floor_us"] = _floor(FIXED_ATTRIBUTES)
        out["matched_floor_us"] = _floor(attributes)
        out["cycle_floor_us"], out["cycle_floor_collector_us"] = _cycle_floor(
            attributes, rates, bots * cycles)
    if private is not None:
        private.shutdown()
    installed.shutdown()
    return out


def _floor(attributes: dict[str, int]) -> dict[str, float]:
    """Each operation's CPU time, bare, with ``attributes[op]`` attributes (set at once)."""
    from opentelemetry import trace

    ops = _global_bare_operations(attributes)
    with trace.get_tracer("bench-floor").start_as_current_span("parent"):
        return {op: _per_op_us(ops[op]) for op in OPS}


def _schedule(ops: dict[str, Callable[[], None]], rates: dict[str, float],
              cycles: int) -> list[list[Callable[[], None]]]:
    """Per cycle, the operations to run: ``rates[op]`` of each (fractions spread evenly)."""
    return [
        [ops[op] for op in OPS for _ in range(int((i + 1) * rates[op]) - int(i * rates[op]))]
        for i in range(cycles)
    ]


def _cycle_floor(attributes: dict[str, int], rates: dict[str, float],
                 cycles: int) -> tuple[float, float]:
    """Mean CPU us per cycle of ``cycles`` cycles of bare operations, ``rates[op]`` of each
    per cycle, collector on as in the bot's timed run; and the collector's share of it."""
    from opentelemetry import trace

    schedule = _schedule(_global_bare_operations(attributes), rates, cycles)
    with trace.get_tracer("bench-floor").start_as_current_span("parent"):
        gc.collect()
        with CollectorClock() as collector:
            started = time.process_time()
            for operations in schedule:
                for operation in operations:
                    operation()
            cpu = time.process_time() - started
        return cpu / cycles * 1e6, collector.seconds / cycles * 1e6


def _global_bare_operations(attributes: dict[str, int]) -> dict[str, Callable[[], None]]:
    """The bare operations on the installed (global) providers; logs under the bot's
    logger, which the variant bridges to OTel."""
    from opentelemetry import metrics, trace

    return _bare_operations(attributes, trace.get_tracer("bench-floor"),
                            metrics.get_meter("bench-floor"),
                            logging.getLogger("sniper.bench-floor"))


class _PrivatePipeline:
    """The ``all`` variant's SDK pipeline (batch processors, null exporters, the stdlib
    bridge on a logger of its own), not installed globally: the bot in the same process
    keeps the API's no-op providers."""

    def __init__(self) -> None:
        sys.path.insert(0, str(HERE))
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from otel_setup import NullMetricExporter, NullSpanExporter, null_log_exporter

        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(NullSpanExporter()))
        self.meter_provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(
            NullMetricExporter(), export_interval_millis=3_600_000)])
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(null_log_exporter()))
        self.tracer = self.tracer_provider.get_tracer("bench-floor")
        self.meter = self.meter_provider.get_meter("bench-floor")
        # as the bot's loggers: a NullHandler and the bridge, INFO enabled, not propagated
        self.logger = logging.getLogger("bench-floor-private")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(logging.NullHandler())
        self.logger.addHandler(
            LoggingHandler(level=logging.NOTSET, logger_provider=self.logger_provider))
        self._parent: Any = None

    def enter_parent(self) -> None:
        self._parent = self.tracer.start_as_current_span("parent")
        self._parent.__enter__()

    def shutdown(self) -> None:
        if self._parent is not None:
            self._parent.__exit__(None, None, None)
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            provider.shutdown()


def _bare_operations(attributes: dict[str, int], tracer: Any, meter: Any,
                     log: logging.Logger) -> dict[str, Callable[[], None]]:
    """One bare SDK call per operation, with ``attributes[op]`` attributes given at once."""
    counter = meter.create_counter("bench_floor_total")
    histogram = meter.create_histogram("bench_floor_ms")

    def attrs(op: str) -> dict[str, str]:
        return {f"floor.attribute_{i}": "BTCUSDT" for i in range(attributes[op])}

    span_attrs, add_attrs, record_attrs = attrs("span"), attrs("counter_add"), attrs(
        "histogram_record")
    extra = attrs("log_record")

    def span() -> None:
        with tracer.start_as_current_span("op", attributes=span_attrs):
            pass

    def add() -> None:
        counter.add(1, add_attrs)

    def record() -> None:
        histogram.record(12.5, record_attrs)

    def log_record() -> None:
        log.info("order %s filled", "BTCUSDT", extra=extra)

    # callers run these under a parent span: logs carry span ids, as the bot's do
    return {"span": span, "counter_add": add, "histogram_record": record,
            "log_record": log_record}


def _per_op_us(fn: Callable[[], None], n: int = 2000, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - started) / n)
        time.sleep(0)  # let the batch processors' workers drain
    return best * 1e6


def count(bots: int, cycles: int) -> dict[str, float]:
    """Telemetry operations per cycle, counted on the ``all`` providers."""
    from opentelemetry.sdk._logs import LogRecordProcessor
    from opentelemetry.sdk.metrics._internal.instrument import (
        _Counter,
        _Histogram,
    )
    from opentelemetry.sdk.trace import SpanProcessor

    installed = _install("all")
    counts = dict.fromkeys((*OPS, *(f"{op}_attributes" for op in OPS)), 0)

    class Spans(SpanProcessor):
        def on_end(self, span: Any) -> None:
            counts["span"] += 1
            counts["span_attributes"] += len(span.attributes or ())

    class Logs(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            counts["log_record"] += 1
            counts["log_record_attributes"] += len(log_record.log_record.attributes or ())

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    from opentelemetry import _logs, trace

    trace.get_tracer_provider().add_span_processor(Spans())  # type: ignore[attr-defined]
    _logs.get_logger_provider().add_log_record_processor(Logs())  # type: ignore[attr-defined]
    counter_add, histogram_record = _Counter.add, _Histogram.record

    def add(self: Any, amount: Any, attributes: Any = None, *args: Any, **kwargs: Any) -> None:
        counts["counter_add"] += 1
        counts["counter_add_attributes"] += len(attributes or ())
        counter_add(self, amount, attributes, *args, **kwargs)

    def record(self: Any, amount: Any, attributes: Any = None, *args: Any, **kwargs: Any) -> None:
        counts["histogram_record"] += 1
        counts["histogram_record_attributes"] += len(attributes or ())
        histogram_record(self, amount, attributes, *args, **kwargs)

    _Counter.add, _Histogram.record = add, record  # type: ignore[method-assign]
    drivers = _drivers(bots)
    _run_cycles(drivers, WARMUP_CYCLES)
    for k in counts:
        counts[k] = 0
    _run_cycles(drivers, cycles)
    per_cycle = {k: v / (bots * cycles) for k, v in counts.items()}
    # The attributes the bridge gives any record (code location, thread...): the floor's
    # records get those too, and extra keys for the rest.
    before = counts["log_record_attributes"]
    logging.getLogger("sniper.bench-floor").info("plain")
    per_cycle["log_record_base_attributes"] = counts["log_record_attributes"] - before
    installed.shutdown()
    return per_cycle


def _child(*args: str) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench_bot child {args} failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run(rounds: int, bots: int, cycles: int) -> dict[str, Any]:
    sizes = ("--bots", str(bots), "--cycles", str(cycles))
    per_cycle = _child("count", *sizes)
    matched = {
        op: round(per_cycle[f"{op}_attributes"] / per_cycle[op]) if per_cycle[op] else 0
        for op in OPS
    }
    matched["log_record"] = max(0, matched["log_record"] - per_cycle["log_record_base_attributes"])
    rates = json.dumps({op: per_cycle[op] for op in OPS})
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in ARMS}
    arms = list(runs)
    for r in range(rounds):
        for variant in arms[r % len(arms):] + arms[: r % len(arms)]:
            print(f"  round {r + 1}/{rounds}: {variant} ...", file=sys.stderr, flush=True)
            runs[variant].append(_child(variant, *sizes, "--attributes", json.dumps(matched),
                                        "--rates", rates))
    added, floors, matched_floors = [], [], []
    for none, all_ in zip(runs["none"], runs["all"], strict=True):
        added.append(all_["cpu_per_cycle_us"] - none["cpu_per_cycle_us"])
        floors.append(sum(per_cycle[op] * all_["floor_us"][op] for op in OPS))
        matched_floors.append(sum(per_cycle[op] * all_["matched_floor_us"][op] for op in OPS))
    cycle_floors = [x["cycle_floor_us"] for x in runs["all"]]
    ratios = [a / f for a, f in zip(added, matched_floors, strict=True)]
    cycle_ratios = [a / f for a, f in zip(added, cycle_floors, strict=True)]
    fixed_ratios = [a / f for a, f in zip(added, floors, strict=True)]
    # the second floor's operations run among a no-telemetry bot's work, over that bot
    interleaved = [i["cpu_per_cycle_us"] - n["cpu_per_cycle_us"]
                   for i, n in zip(runs[INTERLEAVED], runs["none"], strict=True)]
    interleaved_ratios = [a / f for a, f in zip(added, interleaved, strict=True)]
    return {
        "rounds": rounds,
        "bots": bots,
        "cycles": cycles,
        "ops_per_cycle": per_cycle,
        "matched_attributes": matched,
        "none_cpu_per_cycle_us": [x["cpu_per_cycle_us"] for x in runs["none"]],
        "all_cpu_per_cycle_us": [x["cpu_per_cycle_us"] for x in runs["all"]],
        "floor_op_us": [x["floor_us"] for x in runs["all"]],
        "matched_floor_op_us": [x["matched_floor_us"] for x in runs["all"]],
        "added_us": added,
        "floor_us": floors,
        "matched_floor_us": matched_floors,
        "ratios": ratios,
        "ratio": statistics.median(ratios),
        "cycle_floor_us": cycle_floors,
        "cycle_ratios": cycle_ratios,
        "cycle_ratio": statistics.median(cycle_ratios),
        "fixed_ratios": fixed_ratios,
        "fixed_ratio": statistics.median(fixed_ratios),
        "interleaved_floor_us": interleaved,
        "interleaved_ratios": interleaved_ratios,
        "interleaved_ratio": statistics.median(interleaved_ratios),
        "collector_us": {
            **{variant: [x["collector_us"] for x in runs[variant]] for variant in ARMS},
            "cycle floor": [x["cycle_floor_collector_us"] for x in runs["all"]],
        },
        "redis_uninstrumented_cpu_per_cycle_us": [x["cpu_per_cycle_us"] for x in runs[REDIS_OFF]],
        "redis_spans_share": statistics.median(
            1 - o["cpu_per_cycle_us"] / a["cpu_per_cycle_us"]
            for a, o in zip(runs["all"], runs[REDIS_OFF], strict=True)
        ),
        "all_vs_none": statistics.median(
            a["cpu_per_cycle_us"] / n["cpu_per_cycle_us"]
            for a, n in zip(runs["all"], runs["none"], strict=True)
        ),
    }


def render(result: dict[str, Any]) -> str:
    ops = result["ops_per_cycle"]
    matched = result["matched_attributes"]

    def floor_line(key: str, attributes: dict[str, int]) -> str:
        return ", ".join(
            f"{op} ({attributes[op]} attr.) "
            f"{statistics.median(f[op] for f in result[key]):.2f} us" for op in OPS
        )

    ratio, fixed = result["ratio"], result["fixed_ratio"]
    added = statistics.median(result["added_us"])
    interleaved = statistics.median(result["interleaved_floor_us"])
    cycle_floor = statistics.median(result["cycle_floor_us"])
    lines = [
        f"reference bot, per cycle ({result['bots']} bots x {result['cycles']} cycles, "
        f"zero latency, {result['rounds']} ABBA rounds, CPU time)",
        "  telemetry per cycle: "
        + ", ".join(f"{ops[op]:.2f} {op.replace('_', ' ')}s "
                    f"({ops[f'{op}_attributes'] / ops[op] if ops[op] else 0:.1f} attr.)"
                    for op in OPS),
        f"  no telemetry {statistics.median(result['none_cpu_per_cycle_us']):.0f} us; "
        f"all signals {statistics.median(result['all_cpu_per_cycle_us']):.0f} us "
        f"({result['all_vs_none']:.2f}x); added by telemetry {added:.0f} us",
        "  floor: the same operations bare, on the same providers, attributes set at once",
        f"    with the bot's attribute counts: {floor_line('matched_floor_op_us', matched)}",
        f"    = {statistics.median(result['matched_floor_us']):.0f} us per cycle: added / "
        f"floor {ratio:.2f}x (per round: {', '.join(f'{r:.2f}' for r in result['ratios'])})"
        f"  goal <= {GOAL}x  {'yes' if ratio <= GOAL else 'MISSED'}",
        "  the same operations at the bot's rates, as many cycles, mean, collector on: "
        f"{statistics.median(result['cycle_floor_us']):.0f} us per cycle: added / floor "
        f"{result['cycle_ratio']:.2f}x (per round: "
        f"{', '.join(f'{r:.2f}' for r in result['cycle_ratios'])})  goal <= {GOAL}x  "
        f"{'yes' if result['cycle_ratio'] <= GOAL else 'MISSED'}",
        f"    with fixed counts: {floor_line('floor_op_us', FIXED_ATTRIBUTES)}",
        f"    = {statistics.median(result['floor_us']):.0f} us per cycle: added / floor "
        f"{fixed:.2f}x (3 attributes per span and metric point, records without extra)",
        f"  BotConfig(instrument_redis=False), all signals: "
        f"{statistics.median(result['redis_uninstrumented_cpu_per_cycle_us']):.0f} us per "
        f"cycle: the Redis command spans cost {result['redis_spans_share']:.0%} of a cycle",
        "  where the rest goes (a diagnostic, not the goal's floor): the second floor's "
        "operations run between the cycles of a bot without telemetry, on SDK providers of "
        f"their own: {interleaved:.0f} us per cycle over that bot "
        f"({interleaved - cycle_floor:+.0f} us against back to back); added / that "
        f"{result['interleaved_ratio']:.2f}x (per round: "
        f"{', '.join(f'{r:.2f}' for r in result['interleaved_ratios'])})",
        "  garbage collections, CPU per cycle: "
        + ", ".join(f"{label} {statistics.median(result['collector_us'][key]):.0f} us"
                    for label, key in (("no telemetry", "none"), ("all signals", "all"),
                                       ("second floor", "cycle floor"),
                                       (INTERLEAVED, INTERLEAVED))),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--bots", type=int, default=4)
    p.add_argument("--cycles", type=int, default=150, help="timed cycles per bot")
    p.add_argument("--json", metavar="PATH", help="write the results as JSON")
    p.add_argument("--child", choices=(*ARMS, "count"),
                   help=argparse.SUPPRESS)
    p.add_argument("--attributes", default="{}", help=argparse.SUPPRESS)
    p.add_argument("--rates", default="{}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("rounds", "bots", "cycles"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    if args.child == "count":
        print(json.dumps(count(args.bots, args.cycles)))
        return 0
    if args.child:
        print(json.dumps(arm(args.child, args.bots, args.cycles, json.loads(args.attributes),
                             json.loads(args.rates))))
        return 0
    result = run(args.rounds, args.bots, args.cycles)
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
