"""Generated alert cases for the differential test against promtool.

A :class:`Case` is a scrape timeline (gauges, counters with resets, histograms; series that
start late, leave and come back) and a few rules of every form the evaluator supports. Our
evaluator runs it; :func:`promtool_files` exports its evaluations as a promtool unit test
that checks every evaluation: alert states (pending too), labels, and every clause's value.
"""

from __future__ import annotations

import itertools
import math
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hypothesis import assume
from hypothesis import strategies as st

from pytest_sniper_otel.alerts import AlertEvaluator, Recording, RuleSet, rule
from pytest_sniper_otel.alerts.expr import Aggregate, Condition, clauses
from pytest_sniper_otel.alerts.prometheus import promtool_tests, rule_file, to_yaml
from pytest_sniper_otel.catalog import MetricSpec
from pytest_sniper_otel.metrics import MetricsSnapshot, SeriesPoint

from .alertkit import T0

BOUNDARIES = (0.25, 1.0, 5.0)
CATALOG = {
    "g": MetricSpec("g", "gauge", "a gauge", attributes=("a", "b")),
    "c_total": MetricSpec("c_total", "counter", "a counter", attributes=("a", "b")),
    "h": MetricSpec("h", "histogram", "a histogram", boundaries=BOUNDARIES, attributes=("a",)),
}
LABEL_VALUES = ("x", "y", "xy", "xx", "X", "3", "\u0663", "\u00e9", "a.b", "a{,2}")
REGEXES = (
    "x.*", "[[:alpha:]]+", r"\d", "a{,2}", r"\pL+", r"\x{78}+", r"\Qa.b\E", "x|y", ".+",
    "(?i)x+", r"\w+", "[^x]*", "", "xy?", r"\p{Greek}", "[[:^digit:]]+", "(?:xx)*",
)  # fmt: skip
GAUGE_VALUES = (
    0.0, 0.3, 0.9, 0.4, 0.85, 1.0, -1.0, 2.5, 100.0, 1e308, -1e308, 1e-300,
    math.nan, math.inf, -math.inf,
)  # fmt: skip
THRESHOLDS = (0.0, 0.05, 0.1, 0.4, 0.5, 0.85, 1.0, 2.0, -1.0, 100.0, 1e308, math.inf)


@dataclass(frozen=True)
class Series:
    """One series: ``values`` per scrape, ``None`` where it is missing from the scrape;
    a histogram's value is its per-bucket counts (the last one for +Inf)."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    values: tuple[float | tuple[int, ...] | None, ...]


@dataclass(frozen=True)
class Case:
    rules: tuple[tuple[str, float], ...]  # (expression, for in seconds)
    series: tuple[Series, ...]
    interval: float = 15.0
    evaluation_interval: float = 60.0
    evaluation_phase: float = 0.0

    @property
    def scrapes(self) -> int:
        return max((len(s.values) for s in self.series), default=1)

    def ruleset(self) -> RuleSet:
        return RuleSet(
            [rule(f"R{i}", expr, for_=for_) for i, (expr, for_) in enumerate(self.rules)],
            catalog=CATALOG,
        )

    def snapshots(self) -> list[MetricsSnapshot]:
        out = []
        for i in range(self.scrapes):
            by_metric: dict[str, list[SeriesPoint]] = {}
            for s in self.series:
                v = s.values[i] if i < len(s.values) else None
                if v is not None:
                    by_metric.setdefault(s.metric, []).append(_point(s, v))
            t_ns = round((T0 + i * self.interval) * 1e9)
            out.append(MetricsSnapshot(t_ns, {k: tuple(v) for k, v in by_metric.items()}))
        return out

    def evaluate(self) -> AlertEvaluator:
        ev = AlertEvaluator(
            self.ruleset(),
            interval=self.interval,
            evaluation_interval=self.evaluation_interval,
            evaluation_phase=self.evaluation_phase,
        )
        ev.observe_all(self.snapshots())
        return ev


def _point(s: Series, v: float | tuple[int, ...]) -> SeriesPoint:
    attributes = dict(s.labels)
    spec = CATALOG[s.metric]
    if isinstance(v, tuple):
        return SeriesPoint(
            s.metric, "histogram", attributes, count=sum(v), sum=0.0,
            bucket_counts=v, boundaries=BOUNDARIES,
        )  # fmt: skip
    return SeriesPoint(s.metric, spec.kind, attributes, value=float(v))


# strategies ---------------------------------------------------------------------------
def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@st.composite
def selectors(draw: st.DrawFn, metric: str) -> str:
    names = CATALOG[metric].attributes
    matchers = []
    for _ in range(draw(st.integers(0, 2))):
        label = draw(st.sampled_from(names))
        op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
        pool = REGEXES if op in ("=~", "!~") else ("", *LABEL_VALUES)
        matchers.append(f"{label}{op}{quoted(draw(st.sampled_from(pool)))}")
    return metric + ("{" + ", ".join(matchers) + "}" if matchers else "")


@st.composite
def windows(draw: st.DrawFn, interval: float) -> str:
    seconds = draw(st.sampled_from([2 * interval, 3 * interval, 60.0, 120.0, 300.0]))
    return f"{seconds:g}s"


@st.composite
def values(draw: st.DrawFn, interval: float) -> str:
    kind = draw(st.sampled_from(["agg", "agg", "rate", "ratio", "quantile"]))
    if kind == "agg":
        func = draw(st.sampled_from(["max", "min", "sum", "avg"]))
        return f"{func}({draw(selectors(draw(st.sampled_from(['g', 'g', 'c_total']))))})"
    if kind == "quantile":
        q = draw(st.sampled_from([0.0, 0.25, 0.5, 0.9, 0.99, 1.0]))
        return f"quantile({q}, {draw(selectors('h'))}[{draw(windows(interval))}])"

    def term() -> str:
        func = draw(st.sampled_from(["rate", "increase"]))
        metric = draw(st.sampled_from(["c_total", "h"]))
        return f"{func}({draw(selectors(metric))}[{draw(windows(interval))}])"

    def group() -> str:
        terms = [term() for _ in range(draw(st.integers(1, 2)))]
        return terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"

    return group() if kind == "rate" else f"{group()} / {group()}"


@st.composite
def clauses_(draw: st.DrawFn, interval: float) -> str:
    if draw(st.integers(0, 5)) == 0:
        return f"absent({draw(selectors(draw(st.sampled_from(['g', 'c_total', 'h']))))})"
    op = draw(st.sampled_from([">", ">=", "<", "<=", "==", "!="]))
    threshold = draw(st.sampled_from(THRESHOLDS))
    number = "Inf" if threshold == math.inf else repr(threshold)
    return f"{draw(values(interval))} {op} {number}"


@st.composite
def rules_(draw: st.DrawFn, interval: float, evaluation_interval: float) -> tuple[str, float]:
    expr = " and ".join(draw(clauses_(interval)) for _ in range(draw(st.integers(1, 2))))
    for_ = draw(st.sampled_from([0.0, interval, evaluation_interval, 2 * evaluation_interval]))
    return expr, for_


@st.composite
def presence(draw: st.DrawFn, scrapes: int) -> list[bool]:
    """Where a series is in the scrape: from a late start, with gaps, maybe ending early."""
    start = draw(st.integers(0, scrapes - 1)) if draw(st.booleans()) else 0
    out = [i >= start for i in range(scrapes)]
    for _ in range(draw(st.integers(0, 2))):
        gap = draw(st.integers(0, scrapes - 1))
        for i in range(gap, min(scrapes, gap + draw(st.integers(1, 4)))):
            out[i] = False
    return out


@st.composite
def series(draw: st.DrawFn, metric: str, scrapes: int) -> Series:
    names = CATALOG[metric].attributes
    labels = tuple(
        (n, draw(st.sampled_from(LABEL_VALUES))) for n in names if draw(st.booleans())
    )
    here = draw(presence(scrapes))
    out: list[float | tuple[int, ...] | None] = []
    if metric == "g":
        steady = draw(st.sampled_from(GAUGE_VALUES))  # most gauges hold a level a while
        for p in here:
            if draw(st.booleans()):
                steady = draw(st.sampled_from(GAUGE_VALUES))
            out.append(steady if p else None)
    elif metric == "c_total":
        total = draw(st.sampled_from([0.0, 1.0, 10.0]))
        for p in here:
            if draw(st.integers(0, 9)) == 0:  # a counter reset
                total = draw(st.sampled_from([0.0, 1.0]))
            else:
                total += draw(st.sampled_from([0.0, 0.0, 1.0, 2.0, 5.0, 0.5, 1e6]))
            out.append(total if p else None)
    else:
        buckets = [0] * (len(BOUNDARIES) + 1)
        for p in here:
            if draw(st.integers(0, 9)) == 0:
                buckets = [0] * len(buckets)
            for _ in range(draw(st.integers(0, 3))):
                buckets[draw(st.integers(0, len(buckets) - 1))] += draw(st.integers(1, 5))
            out.append(tuple(buckets) if p else None)
    return Series(metric, labels, tuple(out))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    interval = draw(st.sampled_from([10.0, 15.0, 30.0]))
    evaluation_interval = draw(st.sampled_from([interval, 30.0, 60.0]))
    phase = draw(st.sampled_from([0.0, 5.0, evaluation_interval / 2]))
    scrapes = draw(st.integers(2, 30))
    all_series: list[Series] = []
    for metric, most in (("g", 4), ("c_total", 2), ("h", 2)):
        seen = set()
        for _ in range(draw(st.integers(0, most))):
            s = draw(series(metric, scrapes))
            if s.labels not in seen:  # one series per label set
                seen.add(s.labels)
                all_series.append(s)
    rules = tuple(
        draw(rules_(interval, evaluation_interval)) for _ in range(draw(st.integers(1, 3)))
    )
    return Case(rules, tuple(all_series), interval, evaluation_interval, phase)


def evaluate(case: Case) -> AlertEvaluator:
    """Our evaluator on ``case``; a case Prometheus has no single answer for is rejected."""
    ev = case.evaluate()
    assume(prometheus_is_deterministic(case, ev))
    return ev


# Prometheus' own non-determinism -------------------------------------------------------
def _go_sum(values: Sequence[float]) -> float:
    total = values[0]
    for v in values[1:]:
        total += v
    return total


def _go_avg(values: Sequence[float]) -> float:
    """Prometheus 2.42's incremental mean, in the given series order."""
    mean, count = values[0], 1
    for v in values[1:]:
        count += 1
        if math.isinf(mean) and (
            (math.isinf(v) and (mean > 0) == (v > 0)) or (not math.isinf(v) and not math.isnan(v))
        ):
            continue
        mean += v / count - mean / count
    return mean


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def prometheus_is_deterministic(case: Case, ev: AlertEvaluator) -> bool:
    """Whether every sum and avg of the case gives one result in every series order.

    promtool loads series in Go map order, so a sum of three floats may differ in its last
    bit from run to run: such a case has no single answer to agree with.
    """
    history = ev._history
    for r in ev.rules:
        for c in clauses(r.expression):
            if not (isinstance(c, Condition) and isinstance(c.value, Aggregate)):
                continue
            if c.value.func not in ("sum", "avg"):
                continue
            fold = _go_sum if c.value.func == "sum" else _go_avg
            for e in ev.evaluations:
                points = history.instant(c.value.selector, round(e.time * 1000))
                vals = [p.value or 0.0 for p in points]
                if len(vals) < 2:
                    continue
                results = [fold(list(p)) for p in itertools.permutations(vals)]
                if not all(_same(results[0], x) for x in results[1:]):
                    return False
    return True


# promtool -----------------------------------------------------------------------------
def promtool_files(case: Case, ev: AlertEvaluator, directory: Path, index: int) -> Path:
    """Write case ``index``'s rule file and promtool test; returns the test file."""
    rules_path = directory / f"rules-{index}.yml"
    rules_path.write_text(to_yaml(rule_file(ev.rules)))
    test = promtool_tests([Recording.of(ev, f"case {index}")], ev.rules,
                          rule_file_name=rules_path.name)  # fmt: skip
    test_path = directory / f"test-{index}.yml"
    test_path.write_text(to_yaml(test))
    return test_path


_SECTION = re.compile(r"^Unit Testing:\s+(\S+)$", re.MULTILINE)


def run_promtool_tests(promtool: str, files: Sequence[Path]) -> dict[str, str]:
    """Run promtool on every test file in one process; returns file name -> its failure."""
    if not files:
        return {}
    proc = subprocess.run(
        [promtool, "test", "rules", *(f.name for f in files)],
        cwd=files[0].parent, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    parts = _SECTION.split(output)
    failures = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if "SUCCESS" not in body.split("\n", 2)[1]:
            failures[name] = body.strip()
    if proc.returncode != 0 and not failures:
        failures["promtool"] = output
    return failures
