"""Export rules as a Prometheus rule file, and recorded runs as promtool unit tests.

Rule expressions are rendered in PromQL over the names opentelemetry-exporter-prometheus
exposes (:mod:`.naming`). A promtool test replays a recording (``input_series``: each
scrape's samples on a time grid, ``_`` where nothing was scraped, ``stale`` where a series
left a scrape) and expects, at every evaluation our evaluator ran: each rule's firing alerts
with their labels and annotations, the ``ALERTS`` series (pending alerts included), and the
value of every clause (NaN and infinities included), so ``promtool test rules`` fails on any
disagreement between the two.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..catalog import MetricSpec
from ..errors import SpecError
from ..metrics import MetricsSnapshot, SeriesPoint
from .evaluator import AlertState, absent_labels, alert_labels
from .expr import (
    Absent,
    Aggregate,
    AllOf,
    Clause,
    Condition,
    Expression,
    Quantile,
    RateSum,
    Selector,
    clauses,
    format_duration,
)
from .naming import label_name, label_value, sample_name
from .recording import Recording
from .rules import AlertRule, RuleSet

RULES_FILE = "sniper-otel-rules.yml"
GROUP = "sniper-otel"


# PromQL ------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _number(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x))


def _selector(sel: Selector, catalog: Mapping[str, MetricSpec], part: str = "") -> str:
    spec = catalog[sel.metric]
    name = sample_name(spec.name, spec.kind, spec.unit, part if spec.kind == "histogram" else "")
    if not sel.matchers:
        return name
    inner = ", ".join(f"{label_name(m.label)}{m.op}{_quote(m.value)}" for m in sel.matchers)
    return f"{name}{{{inner}}}"


def _rate_sum(group: RateSum, catalog: Mapping[str, MetricSpec]) -> str:
    terms = [
        f"sum({t.func}({_selector(t.selector, catalog, 'count')}[{format_duration(t.window)}]))"
        for t in group.terms
    ]
    return terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"


def promql(expr: Expression, catalog: Mapping[str, MetricSpec]) -> str:
    """``expr`` in PromQL over the exported metric names."""
    if isinstance(expr, AllOf):  # on(): our values carry no labels to match on
        return " and on() ".join(promql(c, catalog) for c in expr.clauses)
    if isinstance(expr, Absent):
        return f"absent({_selector(expr.selector, catalog, 'count')})"
    return f"{promql_value(expr, catalog)} {expr.op} {_number(expr.threshold)}"


def promql_value(expr: Condition, catalog: Mapping[str, MetricSpec]) -> str:
    """The PromQL of the value a condition compares with its threshold."""
    v = expr.value
    if isinstance(v, Aggregate):
        value = f"{v.func}({_selector(v.selector, catalog)})"
    elif isinstance(v, Quantile):
        rng = f"{_selector(v.selector, catalog, 'bucket')}[{format_duration(v.window)}]"
        value = f"histogram_quantile({_number(v.q)}, sum by (le) (rate({rng})))"
    else:
        value = _rate_sum(v.numerator, catalog)
        if v.denominator is not None:
            value += " / " + _rate_sum(v.denominator, catalog)
    return value


def rule_file(rules: RuleSet) -> dict[str, Any]:
    """The Prometheus rule file for ``rules`` (one group)."""
    out = []
    for r in rules:
        entry: dict[str, Any] = {"alert": r.name, "expr": promql(r.expression, rules.catalog)}
        if r.for_:
            entry["for"] = format_duration(r.for_)
        entry["labels"] = r.all_labels
        if r.annotations:
            entry["annotations"] = dict(r.annotations)
        out.append(entry)
    return {"groups": [{"name": GROUP, "rules": out}]}


# YAML --------------------------------------------------------------------------------------
def to_yaml(data: Any) -> str:
    """YAML text of a rule file or promtool test file, written by PyYAML: quoting, escapes
    and special floats (``.inf``, ``.nan``, which promtool reads) are the library's job."""
    import yaml

    text: str = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)
    return text



# promtool tests from recordings --------------------------------------------------------
def _series_id(p: SeriesPoint, name: str, extra: Mapping[str, str] | None = None) -> str:
    labels = {label_name(k): label_value(v) for k, v in p.attributes.items()}
    labels.update(extra or {})
    inner = ",".join(f"{k}={_quote(v)}" for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def exported_samples(snapshot: MetricsSnapshot) -> dict[str, float]:
    """The series the Prometheus exporter would expose for ``snapshot``, with their values."""
    out: dict[str, float] = {}
    for p in snapshot:
        if p.kind != "histogram":
            out[_series_id(p, sample_name(p.name, p.kind, p.unit))] = float(p.value or 0.0)
            continue
        cumulative = 0
        for upper, count in zip((*p.boundaries, math.inf), p.bucket_counts, strict=True):
            cumulative += count
            le = "+Inf" if math.isinf(upper) else repr(float(upper))
            bucket = sample_name(p.name, "histogram", p.unit, "bucket")
            out[_series_id(p, bucket, {"le": le})] = float(cumulative)
        out[_series_id(p, sample_name(p.name, "histogram", p.unit, "count"))] = float(p.count)
        out[_series_id(p, sample_name(p.name, "histogram", p.unit, "sum"))] = float(p.sum)
    return out


def input_series(
    snapshots: Sequence[MetricsSnapshot], origin_ms: int | None = None, step_ms: int | None = None
) -> list[dict[str, str]]:
    """promtool's ``input_series`` on a grid of ``step_ms`` from ``origin_ms`` (default: the
    first scrape, and the scrape interval): ``_`` where nothing was scraped, ``stale`` at the
    first scrape a series is missing from (as Prometheus marks it)."""
    times = [s.time_unix_nano // 1_000_000 for s in snapshots]
    origin = times[0] if origin_ms is None else origin_ms
    step = step_ms if step_ms is not None else (times[1] - times[0] if len(times) > 1 else 1000)
    slots = []
    for t in times:
        slot, off = divmod(t - origin, step)
        if off or slot < 0:
            raise SpecError(f"scrape at +{(t - origin) / 1000:g}s is off the {step}ms grid")
        slots.append(slot)
    per_step = [exported_samples(s) for s in snapshots]
    names = sorted({k for step_samples in per_step for k in step_samples})
    out = []
    for name in names:
        values: list[str] = []
        present, last_slot = False, -1
        for slot, samples in zip(slots, per_step, strict=True):
            values += ["_"] * (slot - last_slot - 1)
            last_slot = slot
            if name in samples:
                values.append(_number(samples[name]))
            else:
                values.append("stale" if present else "_")
            present = name in samples
        out.append({"series": name, "values": _compress(values)})
    return out


def _compress(values: list[str]) -> str:
    """Runs of missing samples as promtool's ``_xN`` (N missing samples)."""
    out: list[str] = []
    run = 0
    for v in [*values, ""]:
        if v == "_":
            run += 1
            continue
        if run:
            out.append("_" if run == 1 else f"_x{run}")
            run = 0
        if v:
            out.append(v)
    return " ".join(out)


def _expected(r: AlertRule) -> dict[str, Any]:
    exp: dict[str, Any] = {"exp_labels": alert_labels(r)}
    if r.annotations:
        exp["exp_annotations"] = dict(r.annotations)
    return exp


def promtool_test(recording: Recording, rules: RuleSet) -> dict[str, Any]:
    """One promtool test case: the recording's samples, and at every evaluation every rule's
    firing alert (or none: "not firing" is asserted too), the ALERTS series (pending and
    firing) and every clause's value."""
    evals = recording.evaluation_times_ms()
    scrapes = recording.scrape_times_ms()
    origin = evals[0]
    if origin > scrapes[0]:
        raise SpecError(
            f"recording {recording.name!r}: the first evaluation comes after the first scrape"
        )
    step = math.gcd(round(recording.evaluation_interval * 1000), *(t - origin for t in scrapes))
    checks = [
        {
            "eval_time": format_duration((t - origin) / 1000),
            "alertname": r.name,
            "exp_alerts": [_expected(r)] if r.name in e.firing else [],
        }
        for t, e in zip(evals, recording.evaluations, strict=True)
        for r in rules
    ]
    return {
        "name": recording.name,
        "interval": format_duration(step / 1000),
        "input_series": input_series(recording.snapshots, origin, step),
        "alert_rule_test": checks,
        "promql_expr_test": _alerts_checks(recording, rules, evals, origin)
        + _value_checks(recording, rules, evals, origin),
    }


def _alerts_checks(
    recording: Recording, rules: RuleSet, times: Sequence[int], origin: int
) -> list[dict[str, Any]]:
    """``ALERTS`` at every evaluation: each pending or firing alert with its labels."""
    checks = []
    for t, e in zip(times, recording.evaluations, strict=True):
        samples = []
        for r in rules:
            state = e.states.get(r.name)
            if state not in (AlertState.PENDING, AlertState.FIRING):
                continue
            labels = {"alertname": r.name, "alertstate": str(state), **alert_labels(r)}
            inner = ",".join(f"{k}={_quote(v)}" for k, v in sorted(labels.items()))
            samples.append({"labels": f"ALERTS{{{inner}}}", "value": 1})
        checks.append(
            {"expr": "ALERTS", "eval_time": format_duration((t - origin) / 1000),
             "exp_samples": samples}
        )  # fmt: skip
    return checks


def _value_checks(
    recording: Recording, rules: RuleSet, times: Sequence[int], origin: int
) -> list[dict[str, Any]]:
    """The value of every clause, as our evaluator computed it, at every evaluation.

    Alert states alone could agree by luck; values can't. Finite values are compared to a
    relative 1e-9: Prometheus sums series in no fixed order (float addition doesn't
    associate). Infinities are compared exactly; NaN (which equals nothing, so promtool
    can't compare it) is checked as ``q != q``; an empty result as no samples.
    """
    checks = []
    for t, e in zip(times, recording.evaluations, strict=True):
        for r in rules:
            for clause, value in zip(
                clauses(r.expression), e.clause_values.get(r.name, ()), strict=False
            ):
                query, labels = clause_promql(clause, rules.catalog)
                expected: list[dict[str, Any]] = []
                if value is None:
                    pass
                elif math.isnan(value):
                    query = f"({query}) != bool ({query})"
                    expected = [{"labels": labels, "value": 1}]
                elif math.isinf(value) or isinstance(clause, Absent):
                    expected = [{"labels": labels, "value": value}]
                else:
                    tolerance = 1e-9 * max(1.0, abs(value))
                    query = f"abs(({query}) - {_number(value)}) <= bool {_number(tolerance)}"
                    expected = [{"labels": labels, "value": 1}]
                checks.append(
                    {"expr": query, "eval_time": format_duration((t - origin) / 1000),
                     "exp_samples": expected}
                )  # fmt: skip
    return checks


def clause_promql(clause: Clause, catalog: Mapping[str, MetricSpec]) -> tuple[str, str]:
    """A clause's value in PromQL, and the labels of its one sample."""
    if isinstance(clause, Absent):
        labels = {label_name(k): v for k, v in absent_labels(clause.selector.matchers).items()}
        inner = ",".join(f"{k}={_quote(v)}" for k, v in sorted(labels.items()))
        return promql(clause, catalog), f"{{{inner}}}"
    return promql_value(clause, catalog), "{}"


def promtool_tests(
    recordings: Iterable[Recording], rules: RuleSet, *, rule_file_name: str = RULES_FILE
) -> dict[str, Any]:
    recordings = list(recordings)
    intervals = {r.evaluation_interval for r in recordings}
    if len(intervals) > 1:
        raise ValueError(
            f"recordings have different evaluation intervals {sorted(intervals)}; "
            "export separately"
        )
    return {
        "rule_files": [rule_file_name],
        "evaluation_interval": format_duration(intervals.pop() if intervals else 60.0),
        "tests": [promtool_test(r, rules) for r in recordings],
    }


def export(
    directory: str | Path, rules: RuleSet, recordings: Iterable[Recording] = ()
) -> list[Path]:
    """Write the rule file and, given recordings, one promtool test file per recording."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rules_path = out / RULES_FILE
    rules_path.write_text(to_yaml(rule_file(rules)))
    written = [rules_path]
    for i, rec in enumerate(recordings):
        slug = "".join(c if c.isalnum() else "-" for c in rec.name.lower()).strip("-")
        path = out / f"test-{i:02d}-{slug}.yml"
        path.write_text(to_yaml(promtool_tests([rec], rules)))
        written.append(path)
    return written


# running promtool -----------------------------------------------------------------------
def find_promtool() -> str | None:
    """The promtool to use: ``$PROMTOOL`` if set (it must exist), else ``promtool`` on PATH."""
    configured = os.environ.get("PROMTOOL")
    if configured:
        if not (os.path.isfile(configured) and os.access(configured, os.X_OK)):
            raise FileNotFoundError(f"PROMTOOL={configured!r} is not an executable file")
        return configured
    return shutil.which("promtool")


@dataclass(frozen=True)
class PromtoolResult:
    ok: bool
    output: str


def run_promtool(promtool: str, files: Sequence[Path]) -> PromtoolResult:
    """``promtool check rules`` on rule files, then ``promtool test rules`` on test files."""
    rule_files = [str(f) for f in files if f.name == RULES_FILE]
    test_files = [str(f) for f in files if f.name != RULES_FILE]
    outputs, ok = [], True
    for args in (["check", "rules", *rule_files], ["test", "rules", *test_files]):
        if len(args) == 2:
            continue
        proc = subprocess.run(
            [promtool, *args], capture_output=True, text=True, timeout=600, check=False
        )
        outputs.append(f"$ promtool {' '.join(args[:2])} ...\n{proc.stdout}{proc.stderr}")
        ok = ok and proc.returncode == 0
    return PromtoolResult(ok, "\n".join(outputs))
