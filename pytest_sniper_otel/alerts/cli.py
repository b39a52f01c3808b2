"""``sniper-otel rules``: list, drill, export and verify alert rules against promtool."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import SpecError
from .defaults import default_rules
from .drills import DRILLS, format_results, run_drill
from .prometheus import export, find_promtool, promql, run_promtool
from .recording import Recording
from .rules import RuleSet, load_rules


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sniper-otel rules",
        description="List, drill, export and verify the alert rules (against promtool).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    def rules_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--rules",
            type=Path,
            action="append",
            default=[],
            help="JSON file of extra rules (repeatable)",
        )
        sp.add_argument("--no-defaults", action="store_true", help="leave out the default rules")

    sp = sub.add_parser("list", help="print each rule and its PromQL")
    rules_options(sp)
    sp = sub.add_parser("dashboards", help="write Grafana dashboards (JSON) to DIR")
    sp.add_argument("directory", type=Path, help="where the dashboards are written")
    rules_options(sp)
    sp = sub.add_parser("drills", help="run the fault drills and print what fired when")
    sp.add_argument("--interval", type=float, default=15.0,
                    help="seconds between evaluations (default 15, Prometheus' scrape)")
    for name, help_ in (
        ("export", "write the rule file and promtool tests to DIR"),
        ("verify", "export to DIR, then run promtool check/test rules on it"),
    ):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("directory", type=Path, help="where the files are written")
        rules_options(sp)
        sp.add_argument(
            "--recording",
            type=Path,
            action="append",
            default=[],
            help="a recorded run (Recording.save) to turn into a promtool test",
        )
        sp.add_argument(
            "--no-drills",
            action="store_true",
            help="don't add the default rules' fault drills as promtool tests",
        )
        sp.add_argument("--interval", type=float, default=15.0, help="drill evaluation interval")
    return p


def _rules(args: argparse.Namespace) -> RuleSet:
    rules = RuleSet([]) if args.no_defaults else default_rules()
    for path in args.rules:
        rules = rules + load_rules(path, catalog=rules.catalog)
    return rules


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    try:
        return _run(args)
    except (SpecError, OSError) as exc:
        print(f"sniper-otel rules: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "drills":
        results = [run_drill(d, interval=args.interval) for d in DRILLS]
        print(format_results(results))
        return 0 if all(r.ok for r in results) else 1
    rules = _rules(args)
    if args.command == "dashboards":
        from .grafana import export_dashboards

        for f in export_dashboards(args.directory, rules):
            print(f"wrote {f}")
        return 0
    if args.command == "list":
        for r in rules:
            print(
                f"{r.name} [{r.severity}, for {r.for_:g}s]\n  rule:   {r.expr}\n"
                f"  promql: {promql(r.expression, rules.catalog)}"
            )
        return 0
    recordings = [Recording.load(p) for p in args.recording]
    if not args.no_drills:
        # drills exercise the default rules; a user rule in the set is checked on them too
        recordings += [
            Recording.of(run_drill(d, rules, interval=args.interval).evaluator, d.name)
            for d in DRILLS
        ]
    files = export(args.directory, rules, recordings)
    for f in files:
        print(f"wrote {f}")
    if args.command == "export":
        return 0
    promtool = find_promtool()
    if promtool is None:
        print(
            "sniper-otel rules: promtool not found (set PROMTOOL or put it on PATH)",
            file=sys.stderr,
        )
        return 2
    result = run_promtool(promtool, files)
    print(result.output)
    if not result.ok:
        print("promtool disagrees with the evaluator (or rejected the rules)", file=sys.stderr)
    return 0 if result.ok else 1
