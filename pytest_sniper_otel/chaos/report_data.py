"""What a chaos report shows of a run, as journal data: fault windows, the series each
alert rule reads, alert episodes, and two traces (a representative one and the first that
broke an invariant).

Times are seconds of simulated time since the run's start (the first scrape), the axis the
report draws everything on. The data goes into the journal (:data:`JOURNAL_VERSION`), so a
report can be drawn later from a journal file alone.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .result import ScenarioRun

# 1: the journal before the report's data; 2: adds fault_windows, alert_series and traces.
JOURNAL_VERSION = 2
MAX_SPANS_PER_TRACE = 300
MAX_RULES = 4
_KEEP_EVENT_ATTRIBUTES = ("exception.type", "exception.message")
_TEXT_LIMIT = 300


def _num(value: float | None, digits: int = 6) -> float | None:
    """A JSON-safe number: None for missing, NaN and infinities (JSON has none of them)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def fault_windows(run: ScenarioRun) -> list[dict[str, Any]]:
    """Every stretch a fault was active, in seconds since the run's start."""
    warm = run.scenario.warmup
    method_end = warm + run.scenario.duration
    out = []
    for f in run.faults:
        for r in f.records:
            end = warm + r.ended if r.ended is not None else method_end
            out.append({"fault": f.name, "start": _num(warm + r.started),
                        "end": _num(end), "hits": r.hits})
    return out


def _clause_texts(expr: str, count: int) -> list[str]:
    parts = [p.strip() for p in re.split(r"\s+and\s+", expr)]
    return parts if len(parts) == count else [expr] * count


def _series(evaluator: Any, name: str, t0: float) -> list[list[float | None]]:
    return [[_num(t - t0, 3), *(_num(v) for v in values)]
            for t, values in evaluator.clause_values(name)]


def alert_series(run: ScenarioRun) -> list[dict[str, Any]]:
    """Per rule worth drawing (the expected alerts, then others that fired): each clause's
    value at every evaluation with its threshold, the baseline run's values, the episodes."""
    from ..alerts.expr import Absent, clauses

    evaluator = run.evaluator
    if evaluator is None:
        return []
    expected = {a.alert: a for a in run.alert_results}
    names = list(expected) + [n for n in run.unexpected_alerts if n not in expected]
    names += [n for n in run.baseline_alerts if n not in names]
    baseline = run.baseline
    t0 = run.t0
    warm = run.scenario.warmup
    out = []
    for name in names[:MAX_RULES]:
        rule = evaluator.rules.get(name)
        parts = clauses(rule.expression)
        texts = _clause_texts(rule.expr, len(parts))
        clause_json: list[dict[str, Any]] = []
        for c, text in zip(parts, texts, strict=True):
            if isinstance(c, Absent):
                clause_json.append({"expr": text, "op": None, "threshold": None})
            else:
                clause_json.append({"expr": text, "op": c.op, "threshold": _num(c.threshold)})
        episodes = [{"pending": _num(e.pending_at - t0, 3),
                     "fired": None if e.fired_at is None else _num(e.fired_at - t0, 3),
                     "resolved": None if e.resolved_at is None else _num(e.resolved_at - t0, 3)}
                    for e in evaluator.episodes if e.rule == name]
        entry: dict[str, Any] = {
            "alert": name,
            "role": "expected" if name in expected else (
                "unexpected" if name in run.unexpected_alerts else "baseline_noise"),
            "expr": rule.expr,
            "for": rule.for_,
            "clauses": clause_json,
            "series": _series(evaluator, name, t0),
            "baseline_series": (_series(baseline.evaluator, name, baseline.t0)
                                if baseline is not None and baseline.evaluator is not None
                                else None),
            "episodes": episodes,
        }
        if name in expected:
            a = expected[name]
            cause = None if a.cause == "all faults" else a.cause
            start, end = run.scenario.fault_window(cause)
            entry["fault_start"] = _num(warm + start, 3)
            entry["rollback"] = _num(warm + end, 3)
            entry["detection_delay"] = a.detection_delay
            entry["resolution_delay"] = a.resolution_delay
        out.append(entry)
    return out


# -- traces ------------------------------------------------------------------------------------
def _status(span: Any) -> str:
    return str(span.status.status_code.name)


def _span_json(span: Any, t0: float) -> dict[str, Any]:
    events = []
    for e in span.events:
        attrs = {k: str(v)[:_TEXT_LIMIT] for k, v in (e.attributes or {}).items()
                 if k in _KEEP_EVENT_ATTRIBUTES or not k.startswith("exception.")}
        events.append({"name": e.name, "at": _num(e.timestamp / 1e9 - t0, 3),
                       "attributes": attrs})
    start = (span.start_time or 0) / 1e9
    end = (span.end_time or span.start_time or 0) / 1e9
    return {
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
        "name": span.name,
        "start": _num(start - t0, 6),
        "duration": _num(end - start, 6),
        "status": _status(span),
        "description": (span.status.description or "")[:_TEXT_LIMIT],
        "events": events,
    }


def _trace_json(spans: Sequence[Any], t0: float, why: str, broke: Sequence[str] = ()) -> dict[
        str, Any]:
    parents = {s.context.span_id: s.parent.span_id if s.parent is not None else None
               for s in spans}

    def depth(span: Any) -> int:
        n, parent = 0, parents.get(span.context.span_id)
        while parent in parents and n < 100:
            n, parent = n + 1, parents[parent]
        return n

    # under a frozen clock a parent and its first child start at the same instant
    ordered = sorted(spans, key=lambda s: (s.start_time or 0, depth(s)))
    return {
        "trace_id": format(ordered[0].context.trace_id, "032x"),
        "why": why,
        "broke": list(broke),
        "span_count": len(ordered),
        "spans": [_span_json(s, t0) for s in ordered[:MAX_SPANS_PER_TRACE]],
    }


def traces(run: ScenarioRun) -> dict[str, Any]:
    """``representative``: the first trace starting in the first fault window that has an
    ERROR span (else the first in the window, else the first at all); ``first_broken``: the
    first trace a broken invariant names, with every invariant that names it."""
    by_trace: dict[int, list[Any]] = defaultdict(list)
    for s in run.spans:
        if s.context is not None:
            by_trace[s.context.trace_id].append(s)
    out: dict[str, Any] = {"representative": None, "first_broken": None}
    if not by_trace:
        return out
    t0 = run.t0

    def starts(spans: list[Any]) -> float:
        return min(s.start_time or 0 for s in spans) / 1e9 - t0

    ordered = sorted(by_trace.values(), key=starts)
    windows = fault_windows(run)
    lo, hi = (windows[0]["start"], windows[0]["end"]) if windows else (-math.inf, math.inf)
    inside = [spans for spans in ordered if lo <= starts(spans) < hi]
    failing = [spans for spans in inside if any(_status(s) == "ERROR" for s in spans)]
    if failing:
        chosen, why = failing[0], "the first trace during the first fault with an ERROR span"
    elif inside and windows:
        chosen, why = inside[0], "the first trace during the first fault"
    else:
        chosen, why = ordered[0], "the run's first trace"
    out["representative"] = _trace_json(chosen, t0, why)
    for check in run.checks:
        for trace_id in check.trace_ids:
            if trace_id in by_trace:
                broke = [c.name for c in run.checks if trace_id in c.trace_ids]
                out["first_broken"] = _trace_json(
                    by_trace[trace_id], t0, f"the first trace {check.name} names", broke)
                return out
    return out


def report_json(run: ScenarioRun) -> dict[str, Any]:
    """The journal fields the report draws from (merged into :meth:`ScenarioRun.to_json`)."""
    return {
        "journal_version": JOURNAL_VERSION,
        "fault_windows": fault_windows(run),
        "alert_series": alert_series(run),
        "traces": traces(run),
    }
