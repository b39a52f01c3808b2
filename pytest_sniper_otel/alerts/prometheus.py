"""Export rules as a Prometheus rule file, and recorded runs as promtool unit tests.

Rule expressions are rendered in PromQL over the names opentelemetry-exporter-prometheus
exposes (:mod:`.naming`). A promtool test replays a recording (``input_series``: one sample
per evaluation interval, ``_`` before a series first appears) and expects, at every
evaluation and for every rule, exactly the alerts our evaluator had firing, so ``promtool
test rules`` fails on any disagreement between the two.
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
from ..metrics import MetricsSnapshot, SeriesPoint
from .evaluator import alert_labels
from .expr import (
    Absent,
    Aggregate,
    AllOf,
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


# YAML, by hand: block style, every string a JSON (hence YAML) double-quoted scalar ----
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


def input_series(snapshots: Sequence[MetricsSnapshot]) -> list[dict[str, str]]:
    """promtool's ``input_series``: ``_`` before a series appears, ``stale`` when it leaves
    a scrape (as Prometheus marks it), ``_`` while it stays away."""
    per_step = [exported_samples(s) for s in snapshots]
    names = sorted({k for step in per_step for k in step})
    out = []
    for name in names:
        values, present = [], False
        for step in per_step:
            if name in step:
                values.append(_number(step[name]))
            else:
                values.append("stale" if present else "_")
            present = name in step
        out.append({"series": name, "values": " ".join(values)})
    return out


def _expected(r: AlertRule) -> dict[str, Any]:
    exp: dict[str, Any] = {"exp_labels": alert_labels(r)}
    if r.annotations:
        exp["exp_annotations"] = dict(r.annotations)
    return exp


def promtool_test(recording: Recording, rules: RuleSet) -> dict[str, Any]:
    """One promtool test case: the recording's samples, and at every evaluation every rule's
    firing alert (or none: "not firing" is asserted too)."""
    times = recording.times_ms()
    if len(recording.firing) != len(times):
        raise ValueError(
            f"recording {recording.name!r}: {len(times)} snapshots but "
            f"{len(recording.firing)} evaluations"
        )
    checks = [
        {
            "eval_time": format_duration(t / 1000),
            "alertname": r.name,
            "exp_alerts": [_expected(r)] if r.name in firing else [],
        }
        for t, firing in zip(times, recording.firing, strict=True)
        for r in rules
    ]
    test: dict[str, Any] = {
        "name": recording.name,
        "interval": format_duration(recording.interval),
        "input_series": input_series(recording.snapshots),
        "alert_rule_test": checks,
    }
    if recording.values:
        test["promql_expr_test"] = _value_checks(recording, rules, times)
    return test


def _value_checks(
    recording: Recording, rules: RuleSet, times: Sequence[int]
) -> list[dict[str, Any]]:
    """The value of each condition, as our evaluator computed it, at every evaluation.

    Alert states alone could agree by luck; values can't. Compared to a relative 1e-9, as
    Prometheus itself sums series in no fixed order (float addition doesn't associate).
    NaN is left out (promtool can't compare it); an empty result is checked as no samples.
    """
    checks = []
    for t, values in zip(times, recording.values, strict=True):
        for r in rules:
            expr = clauses(r.expression)[0]
            if isinstance(expr, Absent) or r.name not in values:
                continue
            value = values[r.name]
            query = promql_value(expr, rules.catalog)
            expected: list[dict[str, Any]] = []
            if value is not None and math.isnan(value):
                continue
            if value is not None and math.isinf(value):
                expected = [{"labels": "{}", "value": value}]
            elif value is not None:
                tolerance = 1e-9 * max(1.0, abs(value))
                query = f"abs(({query}) - {_number(value)}) <= bool {_number(tolerance)}"
                expected = [{"labels": "{}", "value": 1}]
            checks.append(
                {"expr": query, "eval_time": format_duration(t / 1000), "exp_samples": expected}
            )
    return checks


def promtool_tests(
    recordings: Iterable[Recording], rules: RuleSet, *, rule_file_name: str = RULES_FILE
) -> dict[str, Any]:
    recordings = list(recordings)
    intervals = {r.interval for r in recordings}
    if len(intervals) > 1:
        raise ValueError(
            f"recordings have different intervals {sorted(intervals)}; export separately"
        )
    return {
        "rule_files": [rule_file_name],
        "evaluation_interval": format_duration(intervals.pop() if intervals else 15.0),
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
