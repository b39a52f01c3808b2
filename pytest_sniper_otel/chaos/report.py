"""The chaos report: one self-contained HTML file per run (or suite), drawn from journals.

Charts are matplotlib figures inlined as SVG (text kept as text, no external file, font or
script), so the file opens offline. Everything is drawn from journal data
(:mod:`.report_data`), so ``sniper-otel chaos --from-journal journal.json --html out.html``
draws the same report as the run that wrote the journal. A journal from an older version, a
truncated one or one missing a field is refused before anything is drawn, naming the field.

Needs the ``report`` extra (matplotlib): ``pip install "pytest-sniper-otel[report]"``.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .faults import FaultError
from .report_data import JOURNAL_VERSION

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

INDEX = "index.html"
SUMMARY_ID = "sniper-otel-summary"
MAX_WATERFALL_BARS = 40
_FAULT_COLOURS = ("#f4a259", "#8cb369", "#5b8e7d", "#bc4b51", "#9d79bc", "#4d9de0")


class JournalError(FaultError):
    """A journal the report cannot draw: names the file and the field."""


# -- reading journals -----------------------------------------------------------------------
_NUM = (int, float)
_OPT_NUM = (int, float, type(None))
_OPT_STR = (str, type(None))
_SPAN: dict[str, Any] = {
    "span_id": str, "parent_id": _OPT_STR, "name": str, "start": _OPT_NUM,
    "duration": _OPT_NUM, "status": str, "description": str,
    "events": [{"name": str, "at": _OPT_NUM, "attributes": dict}],
}
_TRACE: dict[str, Any] = {"trace_id": str, "why": str, "broke": [str], "span_count": int,
                          "spans": [_SPAN]}
_RUN: dict[str, Any] = {
    "journal_version": int,
    "experiment": {"name": str, "title": str, "warmup": _NUM, "duration": _NUM,
                   "recovery": _NUM},
    "seed": int,
    "status": str,
    "simulated_seconds": _NUM,
    "faults": [{"fault": str, "activity": [{"hits": int}]}],
    "verification": [{"check": str, "held": bool, "detail": str, "trace_ids": [str]}],
    "alerts": {
        "expected": [{"alert": str, "fired": bool, "detection_delay": _OPT_NUM,
                      "resolved": bool, "resolution_delay": _OPT_NUM, "problem": str,
                      "expected_within": _NUM}],
        "unexpected": [str],
        "baseline": [str],
    },
    "telemetry": {"dropped": dict},
    "error": _OPT_STR,
    "fault_windows": [{"fault": str, "start": _OPT_NUM, "end": _OPT_NUM}],
    "alert_series": [{"alert": str, "role": str, "expr": str,
                      "clauses": [{"expr": str, "op": _OPT_STR, "threshold": _OPT_NUM}],
                      "series": [list], "baseline_series": (list, type(None)),
                      "episodes": [{"pending": _OPT_NUM, "fired": _OPT_NUM,
                                    "resolved": _OPT_NUM}]}],
    "traces": {"representative": (dict, type(None)), "first_broken": (dict, type(None))},
}


def _type_name(expected: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true/false",
             dict: "an object", list: "a list", type(None): "null"}
    if isinstance(expected, tuple):
        return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in expected))
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def _check(value: Any, schema: Any, path: str, source: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise JournalError(f"{source}: field {path!r} must be an object, got {value!r:.60}")
        for key, sub in schema.items():
            where = f"{path}.{key}" if path else key
            if key not in value:
                raise JournalError(f"{source}: missing field {where!r}")
            _check(value[key], sub, where, source)
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise JournalError(f"{source}: field {path!r} must be a list, got {value!r:.60}")
        for i, item in enumerate(value):
            _check(item, schema[0], f"{path}[{i}]", source)
        return
    types = schema if isinstance(schema, tuple) else (schema,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise JournalError(f"{source}: field {path!r} must be {_type_name(schema)}, "
                           f"got {value!r:.60}")


def _check_run(run: Any, source: str, where: str) -> None:
    if not isinstance(run, dict):
        raise JournalError(f"{source}: {where or 'the journal'} must be an object")
    version = run.get("journal_version")
    field = f"{where}.journal_version" if where else "journal_version"
    if version is None:
        raise JournalError(
            f"{source}: no {field!r} field: the journal was written by an older sniper-otel "
            f"(version 1, before the report's data); re-run the scenarios to write a "
            f"version {JOURNAL_VERSION} journal")
    if version != JOURNAL_VERSION:
        raise JournalError(f"{source}: field {field!r} is {version!r}; this sniper-otel draws "
                           f"version {JOURNAL_VERSION} journals")
    _check(run, _RUN, where, source)
    for key in ("representative", "first_broken"):
        trace = run["traces"][key]
        if trace is not None:
            _check(trace, _TRACE, f"{where + '.' if where else ''}traces.{key}", source)


@dataclass
class Journal:
    """What a report draws: the runs, and the scenarios of a suite that did not run (skipped
    for want of a real Redis, or whose module failed to load) as scorecard rows."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    not_run: list[dict[str, Any]] = field(default_factory=list)


def not_run_rows(suite: Mapping[str, Any], source: str = "journal") -> list[dict[str, Any]]:
    """Scorecard rows of a suite journal's ``skipped`` and ``unloadable`` scenarios."""
    _check({k: suite.get(k, []) for k in ("skipped", "unloadable")},
           {"skipped": [{"scenario": str, "reason": str}],
            "unloadable": [{"file": str, "problem": str}]}, "", source)
    rows = [{"scenario": u["file"], "why": u["problem"], "result": "NOT LOADED"}
            for u in suite.get("unloadable", [])]
    rows += [{"scenario": s["scenario"], "why": s["reason"], "result": "SKIP"}
             for s in suite.get("skipped", [])]
    return rows


def parse_journal(text: str, source: str) -> Journal:
    """The runs in a journal's text: a suite journal (``sniper-otel chaos --json``) or one
    run's (``--sniper-otel-chaos-journal``). Raises :class:`JournalError` naming the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        keys = re.findall(r'"([^"\\]+)"\s*:', text[: exc.pos])
        inside = f", inside the field {keys[-1]!r}" if keys else ""
        raise JournalError(
            f"{source}: the journal is truncated or not JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}{inside}") from None
    if isinstance(data, dict) and "scenarios" in data:
        if data.get("journal_version") is None:
            raise JournalError(
                f"{source}: no 'journal_version' field: the journal was written by an older "
                f"sniper-otel; re-run the scenarios to write a version {JOURNAL_VERSION} journal")
        runs = data["scenarios"]
        if not isinstance(runs, list):
            raise JournalError(f"{source}: field 'scenarios' must be a list")
        for i, run in enumerate(runs):
            _check_run(run, source, f"scenarios[{i}]")
        return Journal(list(runs), not_run_rows(data, source))
    _check_run(data, source, "")
    return Journal([data])


def load_journals(paths: Sequence[str | Path]) -> Journal:
    """Every run in the journal files ``paths``, checked before anything is drawn."""
    out = Journal()
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise JournalError(f"{path}: cannot read the journal: {exc.strerror}") from None
        journal = parse_journal(text, str(path))
        out.runs += journal.runs
        out.not_run += journal.not_run
    if not out.runs and not out.not_run:
        raise JournalError("no scenario runs in the journals given")
    return out


# -- drawing ------------------------------------------------------------------------------------
def require_matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise FaultError('the HTML report needs matplotlib: pip install '
                         '"pytest-sniper-otel[report]"') from None
    return matplotlib


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    # the RDF metadata block names the creator tool and licence URIs: not worth its bytes
    return re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _minutes(seconds: float | None) -> float:
    return 0.0 if seconds is None else seconds / 60


def _fault_bands(ax: Axes, windows: Sequence[Mapping[str, Any]], end: float,
                 colours: Mapping[str, str], labelled: bool) -> None:
    seen: set[str] = set()
    for w in windows:
        start = w["start"] or 0.0
        stop = w["end"] if w["end"] is not None else end
        label = None
        if labelled and w["fault"] not in seen:
            label = f"fault: {w['fault']}"
            seen.add(w["fault"])
        ax.axvspan(_minutes(start), _minutes(max(stop, start + 1.0)),
                   color=colours[w["fault"]], alpha=0.22, lw=0, label=label)


def _series_xy(rows: Sequence[Sequence[float | None]], index: int) -> tuple[list[float],
                                                                              list[float]]:
    xs: list[float] = []
    ys: list[float] = []
    for row in rows:
        t, v = row[0], row[index + 1] if index + 1 < len(row) else None
        xs.append(_minutes(t))
        ys.append(math.nan if v is None else float(v))
    return xs, ys


def timeline_svg(run: Mapping[str, Any]) -> str:
    """Fault windows, each drawn rule's clause values against its threshold (this run and
    the baseline), and alert pending/firing bands, on one simulated-time axis."""
    exp = run["experiment"]
    end = float(exp["warmup"] + exp["duration"] + exp["recovery"])
    windows = run["fault_windows"]
    colours = {w["fault"]: _FAULT_COLOURS[i % len(_FAULT_COLOURS)]
               for i, w in enumerate({w["fault"]: w for w in windows}.values())}
    rules = run["alert_series"]
    rows = [(r, i) for r in rules for i in range(len(r["clauses"]))]
    lanes = max(1, len(rules))
    height = 1.9 * max(1, len(rows)) + 0.45 * lanes + 1.2
    fig = _new_figure(10.5, height)
    grid = fig.add_gridspec(max(1, len(rows)) + 1, 1,
                            height_ratios=[3.0] * max(1, len(rows)) + [0.5 + 0.45 * lanes])
    axes: list[Axes] = []
    for k in range(max(1, len(rows))):
        axes.append(fig.add_subplot(grid[k], sharex=axes[0] if axes else None))
    state_ax = fig.add_subplot(grid[-1], sharex=axes[0])
    if not rows:
        ax = axes[0]
        _fault_bands(ax, windows, end, colours, labelled=True)
        ax.text(0.5, 0.5, "no alert expected, and none fired", transform=ax.transAxes,
                ha="center", va="center", color="#555")
        ax.set_yticks([])
        if windows:
            ax.legend(loc="upper right", fontsize=7, frameon=False)
    for ax, (rule, i) in zip(axes, rows, strict=False):
        clause = rule["clauses"][i]
        _fault_bands(ax, windows, end, colours, labelled=ax is axes[0])
        xs, ys = _series_xy(rule["series"], i)
        ax.plot(xs, ys, color="#1f5fa8", lw=1.6, label="this run")
        if rule["baseline_series"]:
            bx, by = _series_xy(rule["baseline_series"], i)
            # an empty vector (no series matched) has no value to draw: say so
            label = ("baseline (no faults)" if any(not math.isnan(y) for y in by)
                     else "baseline (no faults): no value at any evaluation")
            ax.plot(bx, by, color="#888", lw=1.1, ls="--", label=label)
        if clause["threshold"] is not None:
            ax.axhline(clause["threshold"], color="#c0392b", lw=1.0, ls=":",
                       label=f"threshold {clause['op']} {clause['threshold']:g}")
        if "fault_start" in rule:
            _mark_detection(ax, rule)
        ax.set_title(f"{rule['alert']} ({rule['role'].replace('_', ' ')})",
                     loc="left", fontsize=9, fontweight="bold")
        ax.set_title(_wrap(clause["expr"], 90), loc="right", fontsize=7, family="monospace")
        ax.set_ylabel("rule value", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(loc="upper right", fontsize=7, frameon=False, ncols=2)
        ax.grid(alpha=0.25)
    _alert_lanes(state_ax, rules, end, windows, colours)
    state_ax.set_xlabel("simulated minutes since the run started", fontsize=8)
    state_ax.set_xlim(0, _minutes(end))
    for ax in axes:
        ax.tick_params(labelbottom=False)
    return _svg(fig)


def _mark_detection(ax: Axes, rule: Mapping[str, Any]) -> None:
    start = rule["fault_start"]
    ax.axvline(_minutes(start), color="#333", lw=0.8, ls="-.")
    delay = rule.get("detection_delay")
    if delay is not None:
        fired = start + delay
        ax.axvline(_minutes(fired), color="#c0392b", lw=1.2)
        ax.annotate(f"fired +{delay:.0f}s", (_minutes(fired), 0.92),
                    xycoords=("data", "axes fraction"), xytext=(3, 0),
                    textcoords="offset points", fontsize=7, color="#c0392b")
        ax.annotate("", xy=(_minutes(fired), 0.84), xytext=(_minutes(start), 0.84),
                    xycoords=("data", "axes fraction"),
                    arrowprops={"arrowstyle": "<->", "color": "#c0392b", "lw": 0.8})
    resolution = rule.get("resolution_delay")
    if resolution is not None and rule.get("rollback") is not None:
        resolved = rule["rollback"] + resolution
        ax.axvline(_minutes(resolved), color="#2e8b57", lw=1.2)
        ax.annotate(f"resolved +{resolution:.0f}s after rollback", (_minutes(resolved), 0.78),
                    xycoords=("data", "axes fraction"), xytext=(3, 0),
                    textcoords="offset points", fontsize=7, color="#2e8b57")


def _alert_lanes(ax: Axes, rules: Sequence[Mapping[str, Any]], end: float,
                 windows: Sequence[Mapping[str, Any]], colours: Mapping[str, str]) -> None:
    _fault_bands(ax, windows, end, colours, labelled=False)
    for lane, rule in enumerate(rules):
        pending: list[tuple[float, float]] = []
        firing: list[tuple[float, float]] = []
        for e in rule["episodes"]:
            start = e["pending"] or 0.0
            fired, resolved = e["fired"], e["resolved"]
            stop = fired if fired is not None else (resolved if resolved is not None else end)
            pending.append((_minutes(start), max(_minutes(stop) - _minutes(start), 0.05)))
            if fired is not None:
                stop = resolved if resolved is not None else end
                firing.append((_minutes(fired), max(_minutes(stop) - _minutes(fired), 0.05)))
        ax.broken_barh(pending, (lane - 0.35, 0.7), color="#f1c40f",
                       label="pending" if lane == 0 else None)
        ax.broken_barh(firing, (lane - 0.35, 0.7), color="#c0392b",
                       label="firing" if lane == 0 else None)
    ax.set_yticks(range(len(rules)), [r["alert"] for r in rules], fontsize=7)
    ax.set_ylim(-0.6, max(1, len(rules)) - 0.4)
    ax.invert_yaxis()
    ax.tick_params(labelsize=7)
    ax.set_title("alert state", loc="left", fontsize=8)
    if rules:
        ax.legend(loc="upper right", fontsize=7, frameon=False, ncols=2)
    else:
        ax.text(0.5, 0.5, "no alert left the inactive state", transform=ax.transAxes,
                ha="center", va="center", fontsize=7, color="#555")


def _tree(spans: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], int]]:
    """Spans in tree order (each parent before its children, siblings by start) with their
    depth; a span whose parent is not in the trace counts as a root."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for s in spans:
        parent = s["parent_id"] if s["parent_id"] in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[Mapping[str, Any], int]] = []
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        out.append((span, depth))
        stack += [(c, depth + 1) for c in reversed(children.get(span["span_id"], []))]
    return out


def waterfall_svg(trace: Mapping[str, Any]) -> str:
    """One bar per span (the first :data:`MAX_WATERFALL_BARS`), ERROR spans in red, error
    events as crosses; milliseconds since the trace started."""
    shown = _tree(trace["spans"])[:MAX_WATERFALL_BARS]
    spans = [s for s, _ in shown]
    depths = [d for _, d in shown]
    t0 = min((s["start"] or 0.0) for s in spans)
    fig = _new_figure(10.5, 0.24 * len(spans) + 0.9)
    ax = fig.add_subplot()
    total = max(((s["start"] or 0.0) - t0 + (s["duration"] or 0.0)) * 1000 for s in spans)
    total = max(total, 1.0)
    for y, s in enumerate(spans):
        left = ((s["start"] or 0.0) - t0) * 1000
        width = max((s["duration"] or 0.0) * 1000, total / 400)
        error = s["status"] == "ERROR"
        ax.barh(y, width, left=left, height=0.7, color="#c0392b" if error else "#4a7ab5")
        ax.text(left + width + total / 200, y, f"{s['duration'] * 1000:.1f} ms"
                if s["duration"] is not None else "", va="center", fontsize=6.5)
        for e in s["events"]:
            if e["name"] == "exception" and e["at"] is not None:
                ax.plot((e["at"] - t0) * 1000, y, marker="x", color="#000", ms=4)
    # SVG collapses leading spaces: indent with visible dots
    labels = ["· " * d + s["name"] for s, d in zip(spans, depths, strict=True)]
    ax.set_yticks(range(len(spans)), labels, fontsize=6.5, family="monospace")
    ax.set_ylim(len(spans) - 0.5, -0.5)
    ax.set_xlim(0, total * 1.12)
    ax.set_xlabel("ms since the trace started (simulated)", fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", alpha=0.25)
    return _svg(fig)


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(" "), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    return "\n".join(lines)


# -- HTML ------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#1d2b3a;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#c9d6e3}main{padding:12px 24px;max-width:1180px}
table{border-collapse:collapse;margin:8px 0;font-size:13px;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef2f6}tr.fail td{background:#fdecea}.PASS{color:#1e7d32;font-weight:600}
.BROKEN,.ERROR,.NOT-LOADED,.held-no{color:#b3261e;font-weight:600}.SKIP{color:#666}.held-yes{color:#1e7d32}
section.scenario{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;
margin:18px 0}section.scenario h2{margin:4px 0}.chart svg{max-width:100%;height:auto}
.muted{color:#666}code{font-size:12px}details{margin:6px 0}.evidence{font-size:12px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def anchor(name: str) -> str:
    return "scenario-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name)


def _verdict(run: Mapping[str, Any]) -> str:
    if run["error"]:
        return "ERROR"
    return "PASS" if all(c["held"] for c in run["verification"]) else "BROKEN"


def _faults_cell(run: Mapping[str, Any]) -> str:
    parts = []
    for f in run["faults"]:
        hits = sum(a["hits"] for a in f["activity"])
        parts.append(f["fault"] + (f" x{hits}" if hits else ""))
    return ", ".join(parts) or "-"


def _alerts_cells(run: Mapping[str, Any]) -> tuple[str, str]:
    expected = run["alerts"]["expected"]
    if not expected:
        return "-", "-"
    fired = sum(a["fired"] for a in expected)
    resolved = sum(a["resolved"] for a in expected)
    delays = [f"{a['detection_delay']:.0f}s" for a in expected if a["fired"]]
    return f"{len(expected)}/{fired}/{resolved}", ", ".join(delays) or "-"


def summary(run: Mapping[str, Any]) -> dict[str, Any]:
    """One scorecard row's data."""
    held = sum(c["held"] for c in run["verification"])
    efr, detection = _alerts_cells(run)
    return {
        "scenario": run["experiment"]["name"],
        "faults": _faults_cell(run),
        "invariants": f"{held}/{len(run['verification'])}",
        "alerts": efr,
        "detection": detection,
        "dropped": sum(int(v) for v in run["telemetry"]["dropped"].values()),
        "result": _verdict(run),
        "seed": run["seed"],
    }


def scorecard_html(rows: Sequence[Mapping[str, Any]], href: Mapping[str, str] | None = None
                   ) -> str:
    """The scorecard, failing rows first; each scenario links to its section (or file)."""
    rank = {"PASS": 2, "SKIP": 1}
    ordered = sorted(rows, key=lambda r: rank.get(r["result"], 0))
    out = ["<table class='scorecard'><tr><th>scenario</th><th>faults injected</th>"
           "<th>invariants</th><th>alerts e/f/r</th><th>detection</th><th>dropped</th>"
           "<th>result</th></tr>"]
    for r in ordered:
        cls = {"PASS": "", "SKIP": " class='skip'"}.get(r["result"], " class='fail'")
        if "why" in r:  # did not run: nothing to link to
            out.append(f"<tr{cls}><td>{_e(r['scenario'])}</td>"
                       f"<td colspan='5'>{_e(r['why'])}</td>"
                       f"<td class='{_e(r['result'].replace(' ', '-'))}'>{_e(r['result'])}"
                       f"</td></tr>")
            continue
        target = (href or {}).get(r["scenario"], "#" + anchor(r["scenario"]))
        out.append(f"<tr{cls}><td><a href='{_e(target)}'>{_e(r['scenario'])}</a></td>"
                   f"<td>{_e(r['faults'])}</td><td>{_e(r['invariants'])}</td>"
                   f"<td>{_e(r['alerts'])}</td><td>{_e(r['detection'])}</td>"
                   f"<td>{_e(r['dropped'])}</td>"
                   f"<td class='{_e(r['result'])}'>{_e(r['result'])}</td></tr>")
    out.append("</table><p class='muted'>alerts e/f/r: expected / fired within their window /"
               " resolved after rollback; detection: delay from fault start to firing.</p>")
    return "\n".join(out)


def _trace_html(trace: Mapping[str, Any] | None, heading: str, empty: str) -> str:
    if trace is None:
        return f"<h4>{_e(heading)}</h4><p class='muted'>{_e(empty)}</p>"
    more = ""
    if trace["span_count"] > MAX_WATERFALL_BARS:
        more = (f" The chart shows the first {MAX_WATERFALL_BARS} of {trace['span_count']} "
                "spans; the table lists them all.")
    out = [f"<h4>{_e(heading)}</h4>",
           f"<p class='muted'>{_e(trace['why'])}: trace <code>{_e(trace['trace_id'])}</code>, "
           f"{trace['span_count']} spans.{_e(more)}</p>",
           f"<div class='chart waterfall'>{waterfall_svg(trace)}</div>",
           "<details><summary>spans: name, start, duration, status, events</summary>"
           "<table><tr><th>span</th><th>start (ms)</th><th>duration (ms)</th><th>status</th>"
           "<th>events</th></tr>"]
    t0 = min((s["start"] or 0.0) for s in trace["spans"])
    for s, depth in _tree(trace["spans"]):
        events = "; ".join(
            e["name"] + (" " + ", ".join(f"{k}={v}" for k, v in e["attributes"].items())
                         if e["attributes"] else "")
            for e in s["events"])
        status = s["status"] + (f": {s['description']}" if s["description"] else "")
        out.append(f"<tr><td>{'&nbsp;' * 2 * depth}{_e(s['name'])}</td>"
                   f"<td>{((s['start'] or 0.0) - t0) * 1000:.1f}</td>"
                   f"<td>{(s['duration'] or 0.0) * 1000:.1f}</td><td>{_e(status)}</td>"
                   f"<td class='evidence'>{_e(events)}</td></tr>")
    out.append("</table></details>")
    return "\n".join(out)


def scenario_html(run: Mapping[str, Any]) -> str:
    exp = run["experiment"]
    name = exp["name"]
    verdict = _verdict(run)
    out = [f"<section class='scenario' id='{anchor(name)}' data-scenario='{_e(name)}'>",
           f"<h2>{_e(name)} <span class='{verdict}'>{verdict}</span></h2>",
           f"<p>{_e(exp['title'])} <span class='muted'>seed {run['seed']}, "
           f"{run['simulated_seconds'] / 60:.0f} simulated minutes (warm-up "
           f"{exp['warmup']:g}s, faults {exp['duration']:g}s, recovery {exp['recovery']:g}s)"
           f"</span></p>"]
    if run["error"]:
        out.append(f"<p class='ERROR'>error: {_e(run['error'])}</p>")
    out.append("<h3>Timeline</h3>"
               "<p class='muted'>Shaded: fault windows. Each panel is one clause of an alert "
               "rule: its value at every evaluation (15 s) in this run and in the fault-free "
               "baseline run of the same seed, and the rule's threshold.</p>")
    out.append(f"<div class='chart timeline'>{timeline_svg(run)}</div>")
    expected = run["alerts"]["expected"]
    if expected:
        out.append("<table><tr><th>expected alert</th><th>detected after</th>"
                   "<th>resolved after rollback</th><th></th></tr>")
        for a in expected:
            det = (f"{a['detection_delay']:.0f}s (window {a['expected_within']:.0f}s)"
                   if a["fired"] else "never fired")
            res = f"{a['resolution_delay']:.0f}s" if a["resolved"] else "not resolved"
            mark = "<span class='PASS'>ok</span>" if not a["problem"] else (
                f"<span class='BROKEN'>{_e(a['problem'])}</span>")
            out.append(f"<tr><td>{_e(a['alert'])}</td><td>{_e(det)}</td><td>{_e(res)}</td>"
                       f"<td>{mark}</td></tr>")
        out.append("</table>")
    also = run["alerts"]["unexpected"]
    noise = run["alerts"]["baseline"]
    if also:
        out.append(f"<p>Also fired (not expected): {_e(', '.join(also))}</p>")
    if noise:
        out.append(f"<p>Fire in the fault-free baseline too (noisy rules): "
                   f"{_e(', '.join(noise))}</p>")
    checks = sorted(run["verification"], key=lambda c: c["held"])
    broken = [c for c in checks if not c["held"]]
    out.append(f"<h3>Invariants ({len(checks) - len(broken)}/{len(checks)} held)</h3><table>"
               "<tr><th>invariant</th><th>held</th><th>evidence</th></tr>")
    for c in checks:
        held = "<span class='held-yes'>yes</span>" if c["held"] else (
            "<span class='held-no'>BROKEN</span>")
        traces = (" traces: " + ", ".join(c["trace_ids"][:3])) if c["trace_ids"] else ""
        out.append(f"<tr><td>{_e(c['check'])}</td><td>{held}</td>"
                   f"<td class='evidence'>{_e(c['detail'] + traces)}</td></tr>")
    out.append("</table>")
    out.append("<h3>Traces</h3>")
    out.append(_trace_html(run["traces"]["representative"], "A representative trace",
                           "no spans were captured"))
    if broken:
        first = run["traces"]["first_broken"]
        empty = ("the broken invariants are about counts, not one trace: "
                 + "; ".join(f"{c['check']}: {c['detail']}" for c in broken))
        heading = "The first trace that broke an invariant"
        if first is not None:
            heading += f" ({', '.join(first['broke'])})"
        out.append(_trace_html(first, heading, empty))
    else:
        out.append("<h4>The first trace that broke an invariant</h4>"
                   "<p class='muted'>none: every invariant held.</p>")
    out.append("</section>")
    return "\n".join(out)


def _page(title: str, subtitle: str, body: str, rows: Sequence[Mapping[str, Any]]) -> str:
    blob = json.dumps(list(rows)).replace("</", "<\\/")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{_CSS}</style>"
            f"<script type='application/json' id='{SUMMARY_ID}'>{blob}</script></head>"
            f"<body><header><h1>{_e(title)}</h1><p>{_e(subtitle)}</p></header>"
            f"<main>{body}</main></body></html>\n")


def render(runs: Sequence[Mapping[str, Any]], *, title: str = "sniper-otel chaos report",
           subtitle: str = "", not_run: Sequence[Mapping[str, Any]] = ()) -> str:
    """The whole report for ``runs`` (journal dicts, checked by :func:`parse_journal`) and
    the scorecard rows of scenarios that did not run (:func:`not_run_rows`)."""
    matplotlib = require_matplotlib()
    rows = [summary(r) for r in runs]
    held = sum(r["result"] == "PASS" for r in rows)
    minutes = sum(r["simulated_seconds"] for r in runs) / 60
    missing = [r for r in not_run if r["result"] != "SKIP"]
    head = (f"{held}/{len(rows)} scenarios held"
            + (f", {len(missing)} did not load" if missing else "")
            + f"; {minutes:.0f} simulated minutes" + (f"; {subtitle}" if subtitle else ""))
    rows += [dict(r) for r in not_run]
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 8,
                                "axes.spines.top": False, "axes.spines.right": False}):
        sections = [scenario_html(r) for r in sorted(
            runs, key=lambda r: _verdict(r) == "PASS")]
    body = "<h2>Scorecard</h2>" + scorecard_html(rows) + "\n".join(sections)
    return _page(title, head, body, rows)


def write(path: str | Path, runs: Sequence[Mapping[str, Any]], **options: Any) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(runs, **options), encoding="utf-8")
    return out


# -- a directory of reports (pytest) ---------------------------------------------------------------
def write_index(directory: str | Path) -> Path:
    """``index.html``: one scorecard over every report in ``directory`` (each file carries its
    rows), linking to the files. Reads the files, so xdist workers' reports are included."""
    root = Path(directory)
    rows: list[dict[str, Any]] = []
    href: dict[str, str] = {}
    for file in sorted(root.glob("*.html")):
        if file.name == INDEX:
            continue
        text = file.read_text(encoding="utf-8")
        found = re.search(rf"<script type='application/json' id='{SUMMARY_ID}'>(.*?)</script>",
                          text, re.S)
        if found is None:
            continue
        for row in json.loads(found.group(1).replace("<\\/", "</")):
            label = f"{row['scenario']} ({file.stem.split('--')[0]})"
            href[label] = f"{file.name}#{anchor(row['scenario'])}"
            rows.append({**row, "scenario": label})
    held = sum(r["result"] == "PASS" for r in rows)
    body = "<h2>Chaos runs</h2>" + scorecard_html(rows, href)
    index = root / INDEX
    index.write_text(_page("sniper-otel chaos reports", f"{held}/{len(rows)} runs held", body,
                           rows), encoding="utf-8")
    return index


__all__ = ["Journal", "JournalError", "load_journals", "not_run_rows", "parse_journal",
           "render", "write", "write_index"]
