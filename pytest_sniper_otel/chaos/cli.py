"""``sniper-otel chaos``: run the scenario suite on embedded defaults and print a scorecard.

Defaults: fakeredis, in-memory telemetry (the session's SDK providers plus the chaos export
pipeline with a counting exporter), the simulated clock. ``--redis-url`` runs the same suite
against a real server. Scenarios come from ``scenario_*.py`` modules in ``--path`` (default:
the suite installed with the lab); see :mod:`.suite`. Exit status: 0 when every invariant
held, 1 when anything broke, 2 for bad input (reported before anything runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .. import real_monotonic
from .faults import FaultError
from .result import ScenarioRun
from .scenario import Scenario
from .suite import SuiteResult, load_suite, run_suite, select

if TYPE_CHECKING:
    from .report import Journal


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sniper-otel chaos",
        description="Run the chaos scenario suite on simulated time and print a scorecard.",
    )
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="run only this scenario (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bot and the faults (0)")
    p.add_argument("--json", metavar="PATH", help="write the journal of every run here")
    p.add_argument("--html", metavar="PATH",
                   help="write a self-contained HTML report here (needs the report extra)")
    p.add_argument("--from-journal", action="append", default=[], metavar="JOURNAL",
                   help="draw --html from these journals instead of running (repeatable)")
    p.add_argument("--path", default=None,
                   help="directory of scenario_*.py modules (default: the suite installed "
                   "with the lab)")
    p.add_argument("--redis-url", metavar="URL",
                   help="run against this Redis server instead of fakeredis")
    p.add_argument("--list", action="store_true", help="list scenarios and faults, then exit")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..cli import check_redis_url, unwritable

    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if args.seed < 0:
            parser.error(f"--seed must be >= 0, got {args.seed}")
        problem = args.redis_url is not None and check_redis_url(args.redis_url)
        if problem:
            parser.error(f"--redis-url: {problem}")
        problem = args.json is not None and unwritable(Path(args.json))
        if problem:
            parser.error(f"--json: {problem}")
        problem = args.html is not None and unwritable(Path(args.html), make_parents=True)
        if problem:
            parser.error(f"--html: {problem}")
    except SystemExit as exc:  # argparse reports usage errors (2) and --help (0) this way
        return int(exc.code or 0)
    out = sys.stdout
    if args.from_journal:
        return _report_from_journals(args.from_journal, args.html, out)
    try:
        if args.html:
            from .report import require_matplotlib

            require_matplotlib()  # a missing extra is bad input: say so before running anything
        loaded, unloadable = load_suite(args.path)
        for broken in unloadable:
            print(f"sniper-otel chaos: could not load {broken}", file=sys.stderr)
        if unloadable and not loaded:
            return 2
        scenarios = select(loaded, args.scenario)
        if args.list:
            _print_list(scenarios, out)
            return 0
        from .suite import validate

        validate(scenarios)
        redis_factory = _redis_factory(args.redis_url) if args.redis_url else None
    except FaultError as exc:
        print(f"sniper-otel chaos: {exc}", file=sys.stderr)
        return 2
    progress = None if args.no_progress else _Progress(len(scenarios), sys.stderr)
    result = run_suite(scenarios, seed=args.seed, redis_factory=redis_factory,
                       progress=progress.update if progress else None, unloadable=unloadable)
    if progress is not None:
        progress.done()
    print(scorecard(result), file=out)
    started = real_monotonic()
    journal = result.to_json() if args.json or args.html else {}
    if args.json:
        Path(args.json).write_text(json.dumps(journal, indent=2, default=str) + "\n",
                                   encoding="utf-8")
        print(f"journal: {args.json}", file=out)
    if args.html:
        from .report import Journal, not_run_rows

        _write_report(Journal(journal["scenarios"], not_run_rows(journal)), args.html, out,
                      f"seed {result.seed}, {result.backend}, "
                      f"{result.wall_seconds:.1f} s wall", started)
    if result.interrupted:
        from ..interrupts import Terminated, interrupt_status

        print(f"sniper-otel chaos: interrupted by {result.interrupted}; faults rolled back, "
              "the bot's keys removed; scorecard and journal are partial", file=sys.stderr)
        return interrupt_status(Terminated() if result.interrupted == "SIGTERM"
                                else KeyboardInterrupt())
    if result.unloadable:
        return 2  # bad input: some of the suite never ran
    return 0 if result.ok else 1


def _write_report(journal: Journal, path: str, out: TextIO, subtitle: str,
                  started: float) -> None:
    """Draw and write; the time printed counts from ``started`` (the journal included)."""
    from . import report

    written = report.write(path, journal.runs, subtitle=subtitle, not_run=journal.not_run)
    size = written.stat().st_size
    drawn = real_monotonic() - started
    print(f"report: {path} ({size / 1024:.0f} KiB, drawn in {drawn:.1f} s)", file=out)


def _report_from_journals(journals: Sequence[str], html: str | None, out: TextIO) -> int:
    from .report import load_journals

    if not html:
        print("sniper-otel chaos: --from-journal draws a report: add --html PATH",
              file=sys.stderr)
        return 2
    try:
        journal = load_journals(journals)
        from .report import require_matplotlib

        require_matplotlib()
    except FaultError as exc:
        print(f"sniper-otel chaos: {exc}", file=sys.stderr)
        return 2
    _write_report(journal, html, out, f"from {', '.join(journals)}", real_monotonic())
    ok = all(r["status"] == "completed" for r in journal.runs)
    return 0 if ok and all(r["result"] == "SKIP" for r in journal.not_run) else 1


def _redis_factory(url: str) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from ..cli import connect_redis

    def connect() -> Any:
        # Short timeouts and no client-side retries: an outage must show up as errors in
        # simulated time, not as seconds of real waiting.
        return redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=0.1,
                                    retry=Retry(NoBackoff(), 0))

    try:
        connect_redis(url, socket_connect_timeout=1.0, socket_timeout=1.0).close()
    except ValueError as exc:
        raise FaultError(f"--redis-url: {exc}") from None
    return connect


class _Progress:
    """One updating line on a terminal; one line per finished scenario otherwise."""

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty() and os.environ.get("TERM") != "dumb"
        self._last: tuple[int, int] = (-1, -1)

    def update(self, index: int, scenario: Scenario, fraction: float) -> None:
        filled = int(fraction * self.WIDTH)
        if (index, filled) == self._last:
            return
        self._last = (index, filled)
        sim = fraction * scenario.total
        label = f"[{index + 1}/{self.total}] {scenario.name:<24}"
        if self.tty:
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(f"\r{label} [{bar}] {fraction:4.0%}  "
                              f"sim {_clock(sim)}/{_clock(scenario.total)}")
            self.stream.flush()
        elif fraction >= 1.0:
            self.stream.write(f"{label} done, {_clock(scenario.total)} simulated\n")
            self.stream.flush()

    def done(self) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


def _print_list(scenarios: Sequence[Scenario], out: TextIO) -> None:
    from .faults import describe_faults

    print("scenarios:", file=out)
    for s in scenarios:
        print(f"  {s.name:<24} {s.title}", file=out)
    print("\nfaults:", file=out)
    for name, target, params, summary in describe_faults():
        print(f"  {name:<28} [{target}] {summary}", file=out)
        if params:
            print(f"  {'':<28} params: {params}", file=out)


# -- the scorecard ----------------------------------------------------------------------------
def _faults_cell(run: ScenarioRun) -> str:
    parts = []
    for f in run.faults:
        hits = f.total_hits()
        parts.append(f"{f.name}" + (f" x{hits}" if hits else ""))
    return ", ".join(parts) or "-"


def _alerts_cell(run: ScenarioRun) -> tuple[str, str]:
    if not run.alert_results:
        return "-", "-"
    fired = sum(a.fired for a in run.alert_results)
    resolved = sum(a.resolved for a in run.alert_results)
    n = len(run.alert_results)
    delays = [f"{a.detection_delay:.0f}s" for a in run.alert_results if a.fired]
    return f"{n}/{fired}/{resolved}", ", ".join(delays) or "-"


def scorecard(result: SuiteResult) -> str:
    """The table ``sniper-otel chaos`` prints, then what broke and what was noisy."""
    header = ("scenario", "faults injected", "invariants", "alerts e/f/r", "detection",
              "dropped", "result")
    rows = []
    for run in result.runs:
        held = sum(c.held for c in run.checks)
        expected, detection = _alerts_cell(run)
        dropped = sum(run.dropped.values())
        verdict = ("PASS" if run.ok else "INTERRUPTED" if run.interrupted
                   else "ERROR" if run.error else "BROKEN")
        rows.append((run.scenario.name, _faults_cell(run), f"{held}/{len(run.checks)}",
                     expected, detection, str(dropped), verdict))
    for scenario, _ in result.skipped:
        rows.append((scenario.name, "-", "-", "-", "-", "-", "SKIP"))
    widths = [len(h) for h in header]
    wrap = 44
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], min(len(cell), wrap) if i == 1 else len(cell))
    lines = [
        f"sniper-otel chaos scorecard: {len(result.runs)} scenarios, seed {result.seed}, "
        f"{result.backend}, simulated clock"
        + (f"; INTERRUPTED by {result.interrupted} after {len(result.runs)} of "
           f"{result.planned}" if result.interrupted else ""),
        "",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for row in rows:
        fault_lines = _wrap(row[1], widths[1])
        first = list(row)
        first[1] = fault_lines[0]
        lines.append("  ".join(c.ljust(w) for c, w in zip(first, widths, strict=True)).rstrip())
        for extra in fault_lines[1:]:
            lines.append(" " * (widths[0] + 2) + extra)
    lines.append("")
    lines.append("alerts e/f/r: expected / fired within their window / resolved after rollback;"
                 " detection: delay from fault start to firing")
    wanted = [(r.scenario.name, a) for r in result.runs for a in r.alert_results]
    if wanted:
        lines.append("")
        lines.append("expected alerts:")
        name_w = max(len(n) for n, _ in wanted)
        alert_w = max(len(a.alert) for _, a in wanted)
        for name, a in wanted:
            fired = (f"fired +{a.detection_delay:.0f}s (window {a.expected_within:.0f}s)"
                     if a.fired else "never fired")
            if a.detection_delay_every_scrape is not None:  # rules run at every scrape
                fired += f", +{a.detection_delay_every_scrape:.0f}s per scrape"
            resolved = (f"resolved +{a.resolution_delay:.0f}s after rollback"
                        if a.resolved else "not resolved")
            mark = "ok" if not a.problem else "BROKEN"
            lines.append(f"  {name:<{name_w}}  {a.alert:<{alert_w}}  {fired:<44}  "
                         f"{resolved:<32}  {mark}")
    for run in result.runs:
        if run.interrupted:
            lines.append("")
            lines.append(f"{run.scenario.name}: INTERRUPTED by {run.interrupted} at "
                         f"+{run.simulated_seconds:.0f}s; every fault rolled back")
        elif not run.ok:
            lines.append("")
            lines.append(f"{run.scenario.name}: BROKEN")
            if run.error:
                lines.append(f"  error: {run.error}")
            for c in run.broken:
                lines.append(f"  {c.name}: {c.detail}")
            lines.append(f"  reproduce: sniper-otel chaos --scenario {run.scenario.name} "
                         f"--seed {result.seed}")
    noise = sorted({a for r in result.runs for a in r.baseline_alerts})
    if noise:
        lines.append("")
        lines.append(f"alerts that also fire in a fault-free run (rule or bot needs tuning): "
                     f"{', '.join(noise)}")
    also = sorted({f"{a} ({r.scenario.name})" for r in result.runs for a in r.unexpected_alerts})
    if also:
        lines.append(f"alerts that fired without being expected: {', '.join(also)}")
    for scenario, why in result.skipped:
        lines.append(f"skipped {scenario.name}: {why}")
    if result.unloadable:
        lines.append("")
        lines.append(f"modules that could not load ({len(result.unloadable)}; their scenarios "
                     "did not run):")
        lines += [f"  {u}" for u in result.unloadable]
    lost: dict[str, int] = {}
    for r in result.runs:
        for k, v in r.dropped.items():
            lost[k] = lost.get(k, 0) + v
    lines.append("")
    lines.append("telemetry dropped (counted in telemetry_dropped_total): "
                 + (", ".join(f"{k}={v}" for k, v in sorted(lost.items())) or "none"))
    passed = sum(r.ok for r in result.runs)
    lines.append(
        f"{passed}/{len(result.runs)} scenarios held; {result.simulated_seconds / 60:.0f} "
        f"simulated minutes in {result.wall_seconds:.1f} s wall"
    )
    return "\n".join(lines)


def _wrap(text: str, width: int) -> list[str]:
    out: list[str] = []
    line = ""
    for part in text.split(", "):
        candidate = f"{line}, {part}" if line else part
        if line and len(candidate) > width:
            out.append(line + ",")
            line = part
        else:
            line = candidate
    out.append(line)
    return out
