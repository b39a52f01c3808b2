"""Benchmark: the chaos suite's CPU time per simulated minute against an earlier commit,
both run side by side on this machine, and their journals compared.

The earlier commit (default 37a54a7, before the suite's speed work) is checked out into a
temporary git worktree; each round runs ``sniper-otel chaos --json`` once from each tree
in a subprocess (order alternating, ABBA), with that tree's package and scenarios first on
``sys.path``. CPU time is the child's user + system time: waiting for a core on a shared
machine is nobody's cost. Goal: <= 0.5x the earlier commit's CPU per simulated minute.

The journals of the scenarios both trees ran must be identical except in what must differ
between two runs or two versions: wall-clock readings, random trace and span ids, and the
fields only one journal version has. Any other difference is listed and fails the run.

    python load/bench_chaos_vs.py [--against 37a54a7] [--rounds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GOAL = 0.5
# Read from the wall clock, or random per run: never comparable between two runs. The
# export queue's high-water mark depends on how long exports took in wall time (the slow
# and hanging exporter faults): it differs between two runs of the same commit.
VOLATILE_KEYS = {"start", "started", "wall_seconds", "longest_pump_wall_s", "max_queued",
                 "trace_id", "span_id", "parent_id", "trace_ids"}
VOLATILE_TEXT = re.compile(r"longest export wait [0-9.]+ ms wall")

RUN = """
import sys
tree = sys.argv[1]
sys.path.insert(0, tree)
import pytest_sniper_otel
from pathlib import Path
assert Path(pytest_sniper_otel.__file__).resolve().is_relative_to(Path(tree).resolve()), \\
    f"imported {pytest_sniper_otel.__file__}, not the tree under test"
from pytest_sniper_otel.cli import main
main(["chaos", "--no-progress", "--json", sys.argv[2]])
"""


def run_suite(tree: Path, journal: Path) -> float:
    """CPU seconds of one suite run from ``tree``; its journal is written to ``journal``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-c", RUN, str(tree), str(journal)],
        cwd=tree, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if not journal.exists():
        raise RuntimeError(f"the suite from {tree} wrote no journal (exit {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, str):
        return VOLATILE_TEXT.sub("longest export wait (wall)", value)
    return value


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths where the two journals differ, over the keys both have."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(old.keys() & new.keys()):
            found += differences(old[key], new[key], f"{path}.{key}")
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found += differences(a, b, f"{path}[{i}]")
        return found
    return [] if old == new else [f"{path}: {str(old)[:80]!r} -> {str(new)[:80]!r}"]


def compare_journals(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[str]]:
    """Per scenario both ran: the paths whose values differ; a scenario the earlier commit
    ran and this one did not is a difference too (one added since is not)."""
    def by_name(journal: dict[str, Any]) -> dict[str, Any]:
        return {s["experiment"]["name"]: _normalised(s) for s in journal["scenarios"]}

    a, b = by_name(old), by_name(new)
    found = {name: differences(a[name], b[name]) for name in sorted(a.keys() & b.keys())}
    found.update({name: ["ran before, not now"] for name in sorted(a.keys() - b.keys())})
    return found


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--against", default="37a54a7", help="the earlier commit (37a54a7)")
    p.add_argument("--rounds", type=int, default=2, help="ABBA rounds (2)")
    p.add_argument("--json", metavar="PATH", help="write the figures here")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be at least 1, got {args.rounds}")
    rev = subprocess.run(["git", "rev-parse", "--verify", f"{args.against}^{{commit}}"],
                         cwd=ROOT, capture_output=True, text=True)
    if rev.returncode != 0:
        p.error(f"--against {args.against!r} is not a commit of this repository")

    with tempfile.TemporaryDirectory(prefix="bench-chaos-vs-") as tmp:
        base = Path(tmp, "base")
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), args.against],
                       cwd=ROOT, check=True)
        try:
            trees = {"before": base, "now": ROOT}
            cpu: dict[str, list[float]] = {"before": [], "now": []}
            journals: dict[str, dict[str, Any]] = {}
            for r in range(args.rounds):
                order = ["before", "now"] if r % 2 == 0 else ["now", "before"]
                for arm in order:
                    out = Path(tmp, f"{arm}-{r}.json")
                    cpu[arm].append(run_suite(trees[arm], out))
                    journals[arm] = json.loads(out.read_text())
                    sim = journals[arm]["simulated_seconds"] / 60
                    print(f"round {r + 1}/{args.rounds} {arm}: {cpu[arm][-1]:.1f} s CPU, "
                          f"{sim:.0f} simulated minutes", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)

    minutes = {arm: journals[arm]["simulated_seconds"] / 60 for arm in cpu}
    per_minute = {arm: [c / minutes[arm] for c in cpu[arm]] for arm in cpu}
    ratios = [n / b for n, b in zip(per_minute["now"], per_minute["before"], strict=True)]
    ratio = statistics.median(ratios)
    diffs = compare_journals(journals["before"], journals["now"])
    changed = {name: d for name, d in diffs.items() if d}

    print(f"\n{'':<34}{'before (' + args.against + ')':>20}{'now':>12}")
    print(f"{'scenarios':<34}{len(journals['before']['scenarios']):>20}"
          f"{len(journals['now']['scenarios']):>12}")
    print(f"{'simulated minutes':<34}{minutes['before']:>20.0f}{minutes['now']:>12.0f}")
    print(f"{'CPU s per run (median)':<34}{statistics.median(cpu['before']):>20.1f}"
          f"{statistics.median(cpu['now']):>12.1f}")
    print(f"{'CPU ms per simulated minute':<34}"
          f"{statistics.median(per_minute['before']) * 1e3:>20.0f}"
          f"{statistics.median(per_minute['now']) * 1e3:>12.0f}")
    verdict = "yes" if ratio <= GOAL else "MISSED"
    print(f"\nCPU per simulated minute, now / before: {ratio:.2f}x "
          f"(per round: {', '.join(f'{x:.2f}' for x in ratios)}); goal <= {GOAL}x: {verdict}")
    print(f"journals of the {len(diffs)} scenarios the earlier commit ran: "
          f"{len(diffs) - len(changed)} identical (wall-clock readings, random ids and "
          "fields of one version only aside)")
    for name, d in changed.items():
        print(f"  {name}: {len(d)} differences, e.g. {'; '.join(d[:3])}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "against": args.against, "cpu_seconds": cpu, "simulated_minutes": minutes,
            "ratio": ratio, "ratios": ratios, "journal_differences": changed,
        }, indent=2) + "\n", encoding="utf-8")
    return 0 if ratio <= GOAL and not changed else 1


if __name__ == "__main__":
    raise SystemExit(main())
