"""Benchmark: the whole chaos scenario suite must finish in under 60 s wall on 2 cores.

Time is simulated, so a scenario's twenty simulated minutes cost about a second of wall
time. This runs ``sniper-otel chaos``'s suite (every ``scenario_*.py`` module in
``scenarios/``) in-process, ``--repeat`` times, and reports per scenario the simulated
minutes, the wall seconds and the speed-up, then the suite's totals against the budget.

    python load/bench_chaos.py [--repeat 3] [--budget 60] [--json out.json]

Exit status 1 when the slowest repetition exceeds the budget, or when the suite has fewer
than 8 scenarios or one shorter than 10 simulated minutes (the claim would not be tested).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

from pytest_sniper_otel.chaos.suite import REAL_REDIS, load_scenarios, run_suite

MIN_SCENARIOS = 8
MIN_SIMULATED = 600.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="suite runs to time (median)")
    p.add_argument("--budget", type=float, default=60.0, help="wall seconds for one suite run")
    p.add_argument("--path", default=None,
                   help="directory of scenario_*.py modules (default: the installed suite)")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    # the embedded-defaults suite: scenarios that need a real Redis server are not in it
    scenarios = [s for s in load_scenarios(args.path) if s.tags.get("requires") != REAL_REDIS]
    problems = []
    if len(scenarios) < MIN_SCENARIOS:
        problems.append(f"only {len(scenarios)} scenarios, at least {MIN_SCENARIOS} needed")
    short = [s.name for s in scenarios if s.total < MIN_SIMULATED]
    if short:
        problems.append(f"shorter than {MIN_SIMULATED / 60:.0f} simulated minutes: {short}")

    walls: list[float] = []
    per_scenario: dict[str, list[float]] = {s.name: [] for s in scenarios}
    simulated = 0.0
    held = 0
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(args.repeat):
        t0 = time.perf_counter()
        result = run_suite(scenarios, seed=i)
        walls.append(time.perf_counter() - t0)
        simulated = result.simulated_seconds
        held = sum(r.ok for r in result.runs)
        for r in result.runs:
            per_scenario[r.scenario.name].append(r.wall_seconds)
        print(f"run {i + 1}/{args.repeat}: {walls[-1]:.1f} s wall, "
              f"{simulated / 60:.0f} simulated minutes, {held}/{len(result.runs)} held",
              file=sys.stderr)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime) / args.repeat

    print(f"{'scenario':<24} {'simulated':>10} {'wall (median)':>14} {'speed-up':>9}")
    for s in scenarios:
        wall = statistics.median(per_scenario[s.name])
        print(f"{s.name:<24} {s.total / 60:>8.0f} m {wall:>12.2f} s {s.total / wall:>8.0f}x")
    worst = max(walls)
    print(f"\nsuite: {len(scenarios)} scenarios, {simulated / 60:.0f} simulated minutes; "
          f"wall median {statistics.median(walls):.1f} s, max {worst:.1f} s "
          f"(budget {args.budget:.0f} s); CPU {cpu:.1f} s per run; "
          f"{os.cpu_count()} cores visible")
    if worst > args.budget:
        problems.append(f"slowest run took {worst:.1f} s, over the {args.budget:.0f} s budget")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "scenarios": len(scenarios), "simulated_minutes": simulated / 60,
            "wall_seconds": walls, "cpu_seconds_per_run": cpu, "budget": args.budget,
            "held": held, "per_scenario_wall": {k: statistics.median(v)
                                                for k, v in per_scenario.items()},
        }, indent=2) + "\n", encoding="utf-8")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
