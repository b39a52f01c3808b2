"""The bot's telemetry-cost benchmark runs end to end on a tiny size and rejects bad sizes."""

from __future__ import annotations

import fnmatch
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "load" / "bench_bot.py"), *args],
                          capture_output=True, text=True, timeout=300)


def test_a_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bot.json"
    proc = _run("--rounds", "1", "--bots", "1", "--cycles", "5", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for pattern in (
        "reference bot, per cycle (1 bots x 5 cycles, zero latency, 1 ABBA rounds, CPU time)",
        "  telemetry per cycle: * spans (* attr.), * counter adds (* attr.), *",
        "  no telemetry * us; all signals * us (*x); added by telemetry * us",
        "    = * us per cycle: added / floor *x (per round: *)  goal <= 1.25x  *",
        "  the same operations at the bot's rates, as many cycles, mean, collector on: * us per "
        "cycle: added / floor *x (per round: *)  goal <= 1.25x  *",
        "  BotConfig(instrument_redis=False), all signals: * us per cycle: the Redis command "
        "spans cost *% of a cycle",
        "  where the rest goes (a diagnostic, not the goal's floor): the second floor's "
        "operations run between the cycles of a bot without telemetry, on SDK providers of "
        "their own: * us per cycle over that bot (* us against back to back); added / that *x "
        "(per round: *)",
        "  garbage collections, CPU per cycle: no telemetry * us, all signals * us, second "
        "floor * us, none+bare * us",
    ):
        assert fnmatch.filter(lines, pattern), (pattern, proc.stdout)
    result = json.loads(out.read_text())
    ops = result["ops_per_cycle"]
    # the bot traces every cycle: a safety check at least, with its children
    assert ops["span"] > 1 and ops["span_attributes"] > 0
    # five cycles measure noise more than cost: a busy machine can make the added cost, and
    # so a ratio, negative; that every figure is there and a number is what this checks
    assert math.isfinite(result["ratio"]) and len(result["ratios"]) == 1
    assert math.isfinite(result["cycle_ratio"]) and len(result["cycle_ratios"]) == 1
    assert result["cycle_floor_us"][0] > 0
    assert len(result["interleaved_floor_us"]) == len(result["interleaved_ratios"]) == 1
    assert set(result["collector_us"]) == {"none", "all", "all-redis-uninstrumented",
                                           "none+bare", "cycle floor"}


def test_bad_sizes_are_refused_before_anything_runs() -> None:
    proc = _run("--cycles", "0")
    assert proc.returncode == 2
    assert "--cycles must be at least 1" in proc.stderr
