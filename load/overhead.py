"""What telemetry really costs: every variant, side by side, in one run.

Runs ``load/locustfile.py`` once per (round, latency setting, variant), each in its own
locust process (global providers are per process), interleaved: every round runs every
variant at every latency setting, starting from a different variant each round, so
machine noise and drift spread over all of them. Each figure is reported as the median,
over rounds, of its ratio to the ``none`` variant *of the same round*. Then the
micro-benchmarks (SDK cost floor, wrappers vs raw SDK, logging vs the seed's claim) run in
the same invocation.

    sniper-otel load [--rounds 3] [--duration 5s] [--users 10] [--out out/load]
    python load/overhead.py ...     (the same, from a checkout)
    nox -s load
"""

from __future__ import annotations

import argparse
import bisect
import csv
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
from driver import latency_scale  # noqa: E402
from otel_setup import BASELINE, VARIANTS  # noqa: E402
from stats import median_ratio  # noqa: E402

from pytest_sniper_otel import SpecError  # noqa: E402
from pytest_sniper_otel import parse_duration as parse_any_duration  # noqa: E402
from pytest_sniper_otel.flow.collector import OtlpCollector  # noqa: E402

LOCUSTFILE = HERE / "locustfile.py"
LATENCIES = ("zero", "realistic")
# figure -> (result key, lower is better); ratios are variant / none
FIGURES: dict[str, tuple[str, bool]] = {
    "throughput": ("throughput", False),
    "p50": ("p50_ms", True),
    "p95": ("p95_ms", True),
    "p99": ("p99_ms", True),
    "cpu/op": ("cpu_per_cycle_us", True),
    "peak mem": ("peak_rss_mb", True),
}
THROUGHPUT_GOAL = 0.95  # all three signals vs none, at the realistic latency setting
SEED_OVERHEAD_CLAIM = 0.05  # "<5% additional CPU/Memory overhead"


class UsageError(ValueError):
    """Bad input, reported before anything starts."""


def parse_duration(text: str, what: str) -> float:
    """Seconds in ``text`` (the package's duration grammar: 90, 6s, 1m30s), more than zero."""
    try:
        seconds = parse_any_duration(text, what=what)
    except SpecError as exc:
        raise UsageError(str(exc)) from None
    if seconds <= 0:
        raise UsageError(f"{what} must be longer than zero, got {text!r}")
    return seconds


@dataclass(frozen=True)
class Plan:
    variants: tuple[str, ...]
    latencies: tuple[str, ...]
    rounds: int
    users: int
    duration: float
    warmup: float
    out: Path
    micro_rounds: int

    def runs(self) -> list[tuple[int, str, str]]:
        """(round, latency, variant), interleaved; each round starts one variant later."""
        order: list[tuple[int, str, str]] = []
        k = len(self.variants)
        for r in range(1, self.rounds + 1):
            for lat in self.latencies:
                for i in range(k):
                    order.append((r, lat, self.variants[(r - 1 + i) % k]))
        return order


def parse_args(argv: Sequence[str] | None, prog: str = "overhead") -> Plan:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(__doc__ or "").split("\n\n")[0],
        epilog='The locustfile on its own: locust -f "$(sniper-otel load --locustfile)" '
        "--headless -u 10 -r 10 -t 30s --sniper-variant all",
    )
    p.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, from: {', '.join(VARIANTS)} (none is always run)",
    )
    p.add_argument(
        "--latency",
        default=",".join(LATENCIES),
        help="comma-separated exchange latency settings: zero, realistic, or a "
        "multiplier of the bot's latency model",
    )
    p.add_argument("--rounds", type=int, default=3, help="rounds of every variant (median)")
    p.add_argument("--users", type=int, default=10, help="locust users (one bot each)")
    p.add_argument("--duration", default="5s", help="per run, e.g. 6s, 1m30s")
    p.add_argument("--warmup", default="1s", help="excluded from each run's measurement")
    p.add_argument("--out", default="out/load", help="directory for JSON, CSV and logs")
    p.add_argument(
        "--micro-rounds", type=int, default=12, help="rounds of the micro-benchmarks (0 skips them)"
    )
    a = p.parse_args(argv)
    try:
        variants = _names(a.variants, "variant")
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise UsageError(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
        if BASELINE not in variants:
            variants.insert(0, BASELINE)  # every ratio needs its side-by-side baseline
        latencies = _names(a.latency, "latency setting")
        for lat in latencies:
            try:
                latency_scale(lat)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if a.users < 1:
            raise UsageError(f"--users must be at least 1, got {a.users}")
        if a.rounds < 1:
            raise UsageError(f"--rounds must be at least 1, got {a.rounds}")
        if a.micro_rounds and a.micro_rounds < 3:
            raise UsageError("--micro-rounds must be 0 (skip) or at least 3")
        duration = parse_duration(a.duration, "--duration")
        warmup = parse_duration(a.warmup, "--warmup") if a.warmup not in ("0", "0s") else 0.0
        if warmup >= duration:
            raise UsageError(
                f"--warmup ({a.warmup}) must be shorter than --duration ({a.duration})"
            )
        if importlib.util.find_spec("locust") is None:
            raise UsageError("locust is not installed: pip install 'pytest-sniper-otel[load]'")
    except UsageError as exc:
        p.error(str(exc))
    return Plan(
        tuple(dict.fromkeys(variants)),
        tuple(dict.fromkeys(latencies)),
        a.rounds,
        a.users,
        duration,
        warmup,
        # absolute: the locust processes run in another directory
        Path(a.out).resolve(),
        a.micro_rounds,
    )


def _names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"no {what} given")
    return names


# -- running ----------------------------------------------------------------------------------
class Progress:
    """One status line while a run is going (redrawn on a terminal), one line per result."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.t0 = time.monotonic()
        self.tty = sys.stderr.isatty()

    def _eta(self) -> str:
        elapsed = time.monotonic() - self.t0
        if not self.done:
            return f"{elapsed:5.0f}s elapsed"
        left = elapsed / self.done * (self.total - self.done)
        return f"{elapsed:5.0f}s elapsed, ~{left:.0f}s left"

    def running(self, label: str, seconds: float) -> None:
        if self.tty:
            print(
                f"\r\033[K[{self.done + 1}/{self.total}] {label} {seconds:4.0f}s  ({self._eta()})",
                end="",
                file=sys.stderr,
                flush=True,
            )

    def finished(self, label: str, summary: str) -> None:
        self.done += 1
        prefix = "\r\033[K" if self.tty else ""
        print(
            f"{prefix}[{self.done}/{self.total}] {label} {summary}  ({self._eta()})",
            file=sys.stderr,
            flush=True,
        )


def run_locust(
    plan: Plan, r: int, lat: str, variant: str, endpoint: str, progress: Progress
) -> dict[str, Any]:
    label = f"round {r} latency={lat:<9} {variant:<8}"
    runs = plan.out / "runs"
    stem = f"r{r}-{lat}-{variant}"
    result = runs / f"{stem}.json"
    result.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(plan.users),
        "-r",
        str(plan.users),
        "-t",
        f"{plan.duration:.0f}s",
        "--stop-timeout",
        "30",
        "--only-summary",
        "-L",
        "WARNING",
        "--sniper-variant",
        variant,
        "--sniper-latency",
        lat,
        "--sniper-otlp-endpoint",
        endpoint,
        "--sniper-result",
        str(result),
        "--sniper-warmup",
        str(plan.warmup),
    ]
    with open(runs / f"{stem}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=HERE.parent)
        t0 = time.monotonic()
        limit = plan.duration + 90  # bounded: a hung run is killed, never waited on forever
        while proc.poll() is None:
            if time.monotonic() - t0 > limit:
                proc.kill()
                proc.wait()
                break
            progress.running(label, time.monotonic() - t0)
            time.sleep(0.5)
    data: dict[str, Any] = {
        "round": r,
        "latency": lat,
        "variant": variant,
        "exit_code": proc.returncode,
        "log": str(runs / f"{stem}.log"),
    }
    # The SDK drops telemetry (and says so) when a batch queue overflows: a run that
    # dropped some would look cheaper than it is.
    log_text = (runs / f"{stem}.log").read_text(errors="replace")
    data["sdk_drop_warnings"] = log_text.count("dropping")
    if result.exists():
        data.update(json.loads(result.read_text()))
        lost = data["failures"] + data["reconcile_failures"]
        summary = (
            f"{data['throughput']:8.1f} cycles/s  cpu {data['cpu_per_cycle_us'] or 0:7.0f}"
            f" us/cycle  p50 {data['p50_ms'] or 0:7.2f} ms  failures {lost}"
        )
    else:
        summary = f"NO RESULT (exit {proc.returncode}); see {data['log']}"
    progress.finished(label, summary)
    return data


def _bench(*args: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "micro.json"
        subprocess.run(
            [sys.executable, str(HERE / "bench.py"), "--json", str(path), "--quiet", *args],
            check=True, cwd=HERE.parent, timeout=600,
        )  # fmt: skip
        data: dict[str, Any] = json.loads(path.read_text())
        return data


GEVENT_PAIRS = 2


def run_micro(plan: Plan) -> dict[str, Any] | None:
    """The micro-benchmarks, and the SDK floor with and without gevent's patching: locust
    runs every variant gevent-patched, where a span's locks are gevent locks."""
    if not plan.micro_rounds:
        return None
    print(f"micro-benchmarks ({plan.micro_rounds} rounds) ...", file=sys.stderr, flush=True)
    data = _bench("--rounds", str(plan.micro_rounds))
    print("SDK floor, plain vs gevent-patched (alternating processes) ...", file=sys.stderr,
          flush=True)  # fmt: skip
    pairs = []
    for _ in range(GEVENT_PAIRS):
        plain = _bench("--only", "floor", "--rounds", "5")
        patched = _bench("--only", "floor", "--rounds", "5", "--gevent")
        pairs.append((plain["cases"], patched["cases"]))
    data["gevent_floor"] = {
        case: {
            "plain_ns": statistics.median(p[case]["median_ns"] for p, _ in pairs),
            "gevent_ns": statistics.median(g[case]["median_ns"] for _, g in pairs),
            "ratio": statistics.median(
                g[case]["median_ns"] / p[case]["median_ns"] for p, g in pairs
            ),
        }
        for case in pairs[0][0]
    }
    return data


def render_gevent_floor(micro: dict[str, Any]) -> str:
    out = [
        f"SDK floor under gevent (as in every locust run) vs plain threads "
        f"({GEVENT_PAIRS} alternating process pairs)",
        f"  {'case':<22} {'plain us':>9} {'gevent us':>10} {'ratio':>7}",
    ]
    for case, c in micro["gevent_floor"].items():
        out.append(
            f"  {case:<22} {c['plain_ns'] / 1000:9.2f} {c['gevent_ns'] / 1000:10.2f}"
            f" {c['ratio']:7.3f}"
        )
    return "\n".join(out)


# -- aggregation --------------------------------------------------------------------------------
def aggregate(plan: Plan, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (latency, variant): median ratio to ``none`` of the same round, and the
    median absolute values for orientation."""
    by_key = {(d["round"], d["latency"], d["variant"]): d for d in runs}
    rows: list[dict[str, Any]] = []
    for lat in plan.latencies:
        for v in plan.variants:
            mine = [by_key.get((r, lat, v)) for r in range(1, plan.rounds + 1)]
            base = [by_key.get((r, lat, BASELINE)) for r in range(1, plan.rounds + 1)]
            row: dict[str, Any] = {"latency": lat, "variant": v}
            for fig, (key, _) in FIGURES.items():
                row[f"{fig} ratio"] = median_ratio(
                    (_get(a, key), _get(b, key)) for a, b in zip(mine, base, strict=True)
                )
                values = [x for x in (_get(a, key) for a in mine) if x is not None]
                row[key] = statistics.median(values) if values else None
            # Throughput is compared over the same cycles, not the same seconds (see there).
            same = [same_cycles_ratio(a, b) for a, b in zip(mine, base, strict=True)]
            spread = [x for x in same if x is not None]
            row["throughput ratio"] = statistics.median(spread) if spread else None
            row["throughput ratio min"] = min(spread) if spread else None
            row["throughput ratio max"] = max(spread) if spread else None
            ok = [d for d in mine if d is not None and "cycles" in d]
            row["runs"] = len(ok)
            row["cycles"] = sum(d["cycles_total"] for d in ok)
            row["orders"] = sum(d["orders"] for d in ok)
            row["failures"] = sum(d["failures"] for d in ok)
            row["unreconciled"] = sum(d["reconcile_failures"] for d in ok)
            row["bad_exits"] = sum(1 for d in mine if d is None or d["exit_code"] != 0)
            row["sdk_drop_warnings"] = sum(d["sdk_drop_warnings"] for d in mine if d)
            rows.append(row)
    return rows


def same_cycles_ratio(run: dict[str, Any] | None, base: dict[str, Any] | None) -> float | None:
    """Throughput of ``run`` relative to ``base`` over the same cycles of the same bots.

    Both replay identical bots (seeds), so cycle i of a bot is the same work in every
    variant. For each bot, take the cycles both runs started inside their measurement
    windows and compare the rates at which they got through them; a fixed time window
    instead would compare different mixes of cheap and expensive cycles.
    """
    if not run or not base or "cycle_starts" not in run or "cycle_starts" not in base:
        return None
    rate_run = rate_base = 0.0
    for seed, tr in run["cycle_starts"].items():
        tb = base["cycle_starts"].get(seed)
        if not tb:
            continue
        first = max(bisect.bisect_left(tr, 0.0), bisect.bisect_left(tb, 0.0))
        last = min(
            bisect.bisect_right(tr, run["window_s"]), bisect.bisect_right(tb, base["window_s"])
        ) - 1  # fmt: skip
        if last - first < 2:
            continue
        rate_run += (last - first) / (tr[last] - tr[first])
        rate_base += (last - first) / (tb[last] - tb[first])
    return rate_run / rate_base if rate_base else None


def _get(d: dict[str, Any] | None, key: str) -> float | None:
    if d is None or d.get(key) is None:
        return None
    return float(d[key])


def _fmt(x: float | None, spec: str = "6.3f") -> str:
    if x is not None:
        return format(x, spec)
    width = re.match(r"\d*", spec)
    return "n/a".rjust(int(width.group() or 0) if width else 0)


def render(plan: Plan, rows: list[dict[str, Any]], micro: dict[str, Any] | None) -> str:
    out: list[str] = [
        f"Telemetry overhead: {plan.rounds} interleaved rounds x {plan.duration:g}s, "
        f"{plan.users} users, ratios to '{BASELINE}' of the same round (median)",
    ]
    for lat in plan.latencies:
        out += [
            "",
            f"exchange latency: {lat}",
            f"  {'variant':<9}"
            + "".join(f"{f:>10}" for f in FIGURES)
            + f"{'cycles/s':>10}{'cpu us/op':>10}{'p50 ms':>8}{'fail':>6}",
        ]
        for row in (r for r in rows if r["latency"] == lat):
            out.append(
                f"  {row['variant']:<9}"
                + "".join(f"{_fmt(row[f'{f} ratio'], '10.3f')}" for f in FIGURES)
                + f"{_fmt(row['throughput'], '10.1f')}{_fmt(row['cpu_per_cycle_us'], '10.0f')}"
                + f"{_fmt(row['p50_ms'], '8.2f')}"
                + f"{row['failures'] + row['unreconciled'] + row['bad_exits']:6d}"
            )
    out += ["", "Goals"]
    out += [f"  {line}" for line in goals(plan, rows, micro)]
    if micro is not None:
        out += ["", bench.render(micro)]
        if "gevent_floor" in micro:
            out += ["", render_gevent_floor(micro)]
    return "\n".join(out)


def goals(plan: Plan, rows: list[dict[str, Any]], micro: dict[str, Any] | None) -> list[str]:
    lines: list[str] = []
    for row in rows:
        if row["variant"] in ("all", "all-otlp") and row["latency"] != "zero":
            t = row["throughput ratio"]
            verdict = "met" if t is not None and t >= THROUGHPUT_GOAL else "MISSED"
            lines.append(
                f"throughput {row['variant']}/none at latency={row['latency']}: "
                f"{_fmt(t, '.3f')} (rounds {_fmt(row['throughput ratio min'], '.3f')}.."
                f"{_fmt(row['throughput ratio max'], '.3f')}; goal >= {THROUGHPUT_GOAL}) {verdict}"
            )
        if row["variant"] in ("all", "all-otlp"):
            cpu = row["cpu/op ratio"]
            if cpu is not None:
                lines.append(
                    f"CPU per cycle {row['variant']}/none at latency={row['latency']}:"
                    f" {cpu - 1:+.1%} (seed claims < +{SEED_OVERHEAD_CLAIM:.0%})"
                )
    if micro is not None:
        worst = max(
            (c["ratio"] for c in micro["comparisons"] if c["section"] == "wrappers"), default=None
        )
        verdict = "met" if worst is not None and worst <= 1 + bench.WRAPPER_BUDGET else "MISSED"
        lines.append(
            f"wrappers over raw SDK, worst: {_fmt(worst, '.3f')} "
            f"(goal <= {1 + bench.WRAPPER_BUDGET:.2f}) {verdict}"
        )
    drops = sum(r["sdk_drop_warnings"] for r in rows)
    lines.append(f"SDK 'dropping' warnings (batch queue overflow): {drops}")
    bad = sum(r["failures"] + r["unreconciled"] + r["bad_exits"] for r in rows)
    cycles = sum(r["cycles"] for r in rows)
    lines.append(
        f"{cycles} cycles, {sum(r['orders'] for r in rows)} orders; failed cycles, "
        f"unreconciled bots or bad exits: {bad} "
        f"{'(goal: 0) met' if bad == 0 else '(goal: 0) MISSED'}"
    )
    return lines


def write_outputs(
    plan: Plan,
    rows: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    micro: dict[str, Any] | None,
    receiver: dict[str, Any] | None,
    machine: dict[str, Any],
) -> None:
    doc = {
        "plan": {
            "variants": plan.variants,
            "latencies": plan.latencies,
            "rounds": plan.rounds,
            "users": plan.users,
            "duration_s": plan.duration,
            "warmup_s": plan.warmup,
        },
        "baseline": BASELINE,
        "machine": machine,
        "rows": rows,
        "goals": goals(plan, rows, micro),
        "runs": [{k: x for k, x in d.items() if k != "cycle_starts"} for d in runs],
        "otlp_receiver": receiver,
        "micro": micro,
    }
    (plan.out / "overhead.json").write_text(json.dumps(doc, indent=2))
    with open(plan.out / "overhead.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    if micro is not None:
        with open(plan.out / "micro.csv", "w", newline="") as f:
            cw = csv.writer(f)
            cw.writerow(
                ["section", "case", "baseline", "ratio", "added_ns", "case_ns", "baseline_ns"]
            )
            for c in micro["comparisons"]:
                cw.writerow(
                    [
                        c["section"],
                        c["case"],
                        c["baseline"],
                        c["ratio"],
                        c["added_ns"],
                        c["case_ns"],
                        c["baseline_ns"],
                    ]
                )


def main(argv: Sequence[str] | None = None, prog: str = "overhead") -> int:
    plan = parse_args(argv, prog)
    load_before = os.getloadavg()
    (plan.out / "runs").mkdir(parents=True, exist_ok=True)
    order = plan.runs()
    progress = Progress(len(order))
    runs: list[dict[str, Any]] = []
    receiver = OtlpCollector().start() if "all-otlp" in plan.variants else None
    endpoint = receiver.url if receiver else "http://127.0.0.1:4318"
    try:
        for r, lat, v in order:
            runs.append(run_locust(plan, r, lat, v, endpoint, progress))
    finally:
        received = receiver.snapshot() if receiver else None
        if receiver:
            receiver.stop()
    micro = run_micro(plan)
    rows = aggregate(plan, runs)
    load_after = os.getloadavg()
    machine: dict[str, Any] = {
        "cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": load_after,
    }  # fmt: skip
    write_outputs(plan, rows, runs, micro, received, machine)
    print(render(plan, rows, micro))
    print(
        f"\nmachine: {machine['cpus']} CPUs, load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after (load from others makes wall-clock ratios noisy)"
    )
    print(
        f"\nwritten: {plan.out / 'overhead.json'}, {plan.out / 'overhead.csv'}"
        + (f", {plan.out / 'micro.csv'}" if micro else "")
    )
    bad = sum(r["failures"] + r["unreconciled"] + r["bad_exits"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
