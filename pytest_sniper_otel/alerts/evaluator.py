"""Evaluate alert rules over a timeline of metric snapshots, with Prometheus' semantics.

Each observation is one scrape at the snapshot's (simulated) time. Rules are evaluated on
Prometheus' schedule, not at each scrape: every ``evaluation_interval`` (1 minute by
default, as Prometheus'), at ``evaluation_phase`` seconds past each whole interval since the
epoch; an evaluation sees the scrapes at or before its time. The first evaluation is the last
one due at or before the first scrape (Prometheus was already running when the bot started).
Semantics follow Prometheus 2.42 so that ``promtool test rules`` agrees with us:

* a scrape is a snapshot: a series missing from it is stale (Prometheus writes a staleness
  marker when a series leaves the exposition), so an instant selector sees the series of
  the latest snapshot, if that is at most 5 minutes old (the lookback);
* ``rate``/``increase`` take the samples in ``[t - window, t]`` (both ends included),
  need two of them, handle counter resets and extrapolate to the window edges exactly as
  ``extrapolatedRate`` does; counters are cumulative per test from their first sample, so a
  series' first appearance is its first sample, not a jump from zero;
* ``quantile`` is ``histogram_quantile(q, sum by (le) (rate(x_bucket[w])))``;
* an alert is pending from the first evaluation its condition holds, firing once it has held
  for ``for``, resolved at the first evaluation it no longer holds.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction
from itertools import accumulate

from ..errors import SpecError
from ..metrics import MetricsSnapshot, SeriesPoint
from .expr import (
    Absent,
    Aggregate,
    Aggregation,
    Clause,
    Expression,
    Matcher,
    Quantile,
    RateSum,
    RateTerm,
    Selector,
    clauses,
    windows,
)
from .naming import label_name, label_value
from .rules import AlertRule, RuleSet, load_rules

TimeLike = float | int | dt.datetime
LOOKBACK_MS = 300_000  # Prometheus' default query.lookback-delta


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Transition:
    """``rule`` went from ``before`` to ``after`` at ``time`` (seconds since the epoch)."""

    time: float
    rule: str
    before: AlertState
    after: AlertState
    value: float | None

    def describe(self, start: float) -> str:
        shown = "" if self.value is None else f" (value {self.value:g})"
        return f"+{self.time - start:g}s {self.rule}: {self.before} -> {self.after}{shown}"


@dataclass
class Episode:
    """One pending period of a rule and what came of it."""

    rule: str
    pending_at: float
    fired_at: float | None = None
    resolved_at: float | None = None


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one evaluation: each rule's state and value at ``time``.

    ``values`` holds each rule's first clause's value, ``clause_values`` every clause's
    (``None``: no result, as PromQL's empty vector)."""

    time: float
    states: Mapping[str, AlertState]
    values: Mapping[str, float | None]
    clause_values: Mapping[str, tuple[float | None, ...]] = dataclasses.field(
        default_factory=dict
    )

    @property
    def firing(self) -> list[str]:
        return [n for n, s in self.states.items() if s is AlertState.FIRING]


@dataclass
class _RuleState:
    state: AlertState = AlertState.INACTIVE
    active_since_ms: int | None = None
    episode: Episode | None = None


def _seconds(when: TimeLike) -> float:
    return when.timestamp() if isinstance(when, dt.datetime) else float(when)


# series access -------------------------------------------------------------------------
def _labels(point: SeriesPoint) -> dict[str, str]:
    return {k: label_value(v) for k, v in point.attributes.items()}


def _matches(selector: Selector, point: SeriesPoint) -> bool:
    labels = _labels(point)
    return all(m.matches(labels.get(m.label)) for m in selector.matchers)


def _float_div(a: float, b: float) -> float:
    """IEEE division as Go does it: x/0 is +-Inf, 0/0 is NaN."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def extrapolated_rate(
    samples: Sequence[tuple[int, float]], range_start_ms: int, range_end_ms: int, *, is_rate: bool
) -> float | None:
    """Prometheus' ``extrapolatedRate`` for a counter: ``samples`` are (ms, value) in order."""
    if len(samples) < 2:
        return None
    first_t, first_v = samples[0]
    last_t, last_v = samples[-1]
    result = last_v - first_v
    previous = 0.0
    for _, v in samples:  # a drop is a counter reset: add what was there before it
        if v < previous:
            result += previous
        previous = v
    duration_to_start = (first_t - range_start_ms) / 1000
    duration_to_end = (range_end_ms - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average_step = sampled / (len(samples) - 1)
    if result > 0 and first_v >= 0:
        # a counter can't go below zero: don't extrapolate past where it would be zero
        duration_to_zero = sampled * (first_v / result)
        duration_to_start = min(duration_to_start, duration_to_zero)
    threshold = average_step * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else average_step / 2
    interval += duration_to_end if duration_to_end < threshold else average_step / 2
    factor = interval / sampled
    if is_rate:
        factor /= (range_end_ms - range_start_ms) / 1000
    return result * factor


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """Prometheus' ``bucketQuantile`` on (upper bound, cumulative count) pairs incl. +Inf.

    Not :func:`pytest_sniper_otel.metrics.histogram_quantile`: that one takes raw per-bucket
    counts of one histogram; this one takes extrapolated cumulative rates, which need
    Prometheus' monotonicity repair to agree with promtool.
    """
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    merged: list[list[float]] = []
    for upper, count in ordered:  # coalesce equal bounds
        if merged and merged[-1][0] == upper:
            merged[-1][1] += count
        else:
            merged.append([upper, count])
    running = -math.inf
    for b in merged:  # ensureMonotonic
        if b[1] > running:
            running = b[1]
        elif b[1] < running:
            b[1] = running
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    index = next((i for i, b in enumerate(merged[:-1]) if b[1] >= rank), len(merged) - 1)
    if index == len(merged) - 1:
        return merged[-2][0]
    if index == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[index][0], merged[index][1]
    if index > 0:
        start = merged[index - 1][0]
        count -= merged[index - 1][1]
        rank -= merged[index - 1][1]
    return start + (end - start) * _float_div(rank, count)


class _Series:
    """One series' samples under one selector, oldest first: the scrape times, the series'
    position among that scrape's matches, and what rates read (the counter's value; for a
    quantile, the cumulative bucket counts of a histogram, one column per bucket, filled
    when first read)."""

    __slots__ = ("boundaries", "buckets", "columns", "points", "positions", "times", "values")

    def __init__(self) -> None:
        self.times: list[int] = []
        self.positions: list[int] = []
        self.values: list[float] = []
        self.points: list[SeriesPoint] = []
        self.boundaries: list[tuple[float, ...]] = []
        self.buckets: list[int] = []  # each sample's number of buckets (+Inf included)
        self.columns: list[list[float]] = []

    def append(self, t_ms: int, position: int, p: SeriesPoint) -> None:
        self.times.append(t_ms)
        self.positions.append(position)
        self.values.append(_counter_value(p))
        self.points.append(p)

    def fill_buckets(self) -> None:
        """Bring :attr:`boundaries`, :attr:`buckets` and :attr:`columns` up to date."""
        points, columns = self.points, self.columns
        for k in range(len(self.buckets), len(points)):
            p = points[k]
            counts = p.bucket_counts
            self.boundaries.append(p.boundaries)
            self.buckets.append(len(counts))
            if k and p is points[k - 1]:  # unchanged since the last scrape
                for column in columns:
                    column.append(column[-1])
                continue
            while len(columns) < len(counts):  # a bucket first seen now: absent before
                columns.append([math.nan] * k)
            for i, running in enumerate(accumulate(counts)):
                columns[i].append(float(running))
            for column in columns[len(counts):]:
                column.append(math.nan)

    def span(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        lo = bisect.bisect_left(self.times, start_ms)
        return lo, bisect.bisect_right(self.times, end_ms, lo)


class _History:
    """The observed snapshots, newest last, with times in integer milliseconds.

    Every evaluation re-reads the snapshots of each rule's window, and the journal's charts
    read every scrape again: each snapshot's selection is computed once per selector, and
    whether a series matches a selector once per series (its labels do not change)."""

    def __init__(self) -> None:
        self.samples: list[tuple[int, MetricsSnapshot]] = []
        self._times: list[int] = []
        self._selections: dict[Selector, list[list[SeriesPoint] | None]] = {}
        self._matches: dict[Selector, dict[Hashable, bool]] = {}
        # per selector: how many snapshots are folded in, and each matching series' samples
        # in them (a range reads its slice instead of every snapshot of its window)
        self._series: dict[Selector, tuple[list[int], dict[Hashable, _Series]]] = {}

    def add(self, t_ms: int, snapshot: MetricsSnapshot) -> None:
        self.samples.append((t_ms, snapshot))
        self._times.append(t_ms)

    def instant(self, selector: Selector, t_ms: int) -> list[SeriesPoint]:
        """The matching series of the latest snapshot at or before ``t_ms``, within the
        lookback."""
        i = bisect.bisect_right(self._times, t_ms)
        if not i or t_ms - self._times[i - 1] > LOOKBACK_MS:
            return []
        return self._selected(selector, i - 1)

    def counter_ranges(self, selector: Selector, t_ms: int, window_ms: int) -> list[
        list[tuple[int, float]]
    ]:
        """Per series with samples in ``[t_ms - window_ms, t_ms]``: its (time, counter value)
        pairs (a histogram's count). Series come in the order they first matched, not the
        order they enter the window."""
        out = []
        for series in self.series(selector).values():
            lo, hi = series.span(t_ms - window_ms, t_ms)
            if lo < hi:
                out.append(list(zip(series.times[lo:hi], series.values[lo:hi], strict=True)))
        return out

    def series(self, selector: Selector) -> dict[Hashable, _Series]:
        """The series matching ``selector`` over every snapshot so far, by key."""
        folded = self._series.get(selector)
        if folded is None:
            folded = self._series[selector] = ([0], {})
        done, by_key = folded
        for i in range(done[0], len(self.samples)):
            ts = self._times[i]
            for position, p in enumerate(self._selected(selector, i)):
                found = by_key.get(p.key)
                if found is None:
                    found = by_key[p.key] = _Series()
                found.append(ts, position, p)
        done[0] = len(self.samples)
        return by_key

    def _selected(self, selector: Selector, index: int) -> list[SeriesPoint]:
        memo = self._selections.get(selector)
        if memo is None:
            memo = self._selections[selector] = []
        if len(memo) <= index:
            memo.extend([None] * (len(self.samples) - len(memo)))
        found = memo[index]
        if found is None:
            matches = self._matches.setdefault(selector, {})
            found = []
            for p in self.samples[index][1].points(selector.metric):
                key = p.key
                hit = matches.get(key)
                if hit is None:
                    hit = matches[key] = _matches(selector, p)
                if hit:
                    found.append(p)
            memo[index] = found
        return found


def _counter_value(p: SeriesPoint) -> float:
    return float(p.count) if p.kind == "histogram" else float(p.value or 0.0)


def _evaluate(
    expr: Expression, history: _History, t_ms: int
) -> tuple[bool, tuple[float | None, ...]]:
    """Whether ``expr`` holds at ``t_ms``, and each clause's value."""
    results = [(c, _clause_value(c, history, t_ms)) for c in clauses(expr)]
    return all(_holds(c, v) for c, v in results), tuple(v for _, v in results)


def _clause_value(expr: Clause, history: _History, t_ms: int) -> float | None:
    """The clause's single value at ``t_ms`` (``None``: no result, as an empty vector)."""
    if isinstance(expr, Absent):
        return None if history.instant(expr.selector, t_ms) else 1.0
    v = expr.value
    if isinstance(v, Aggregate):
        values = [p.value or 0.0 for p in history.instant(v.selector, t_ms)]
        return aggregate(v.func, values) if values else None
    if isinstance(v, Quantile):
        return _quantile(v, history, t_ms)
    numerator = _rate_sum(v.numerator, history, t_ms)
    if v.denominator is None or numerator is None:
        return numerator
    denominator = _rate_sum(v.denominator, history, t_ms)
    return None if denominator is None else _float_div(numerator, denominator)


def aggregate(func: Aggregation, values: Sequence[float]) -> float:
    """``max``/``min``/``sum``/``avg`` of ``values`` as Prometheus 2.42 aggregates them.

    NaN loses to any number in max and min (NaN only when every value is NaN). Prometheus
    adds in the order its storage returns series, which is not fixed, so a sum or mean whose
    last bit depends on the order has no single answer there; we return the correctly rounded
    one (exact summation), which is what every order gives whenever they all agree. The mean
    never overflows on finite values (Prometheus averages incrementally).
    """
    if func in ("max", "min"):
        numbers = [x for x in values if not math.isnan(x)]
        if not numbers:
            return math.nan
        return max(numbers) if func == "max" else min(numbers)
    if any(math.isnan(x) for x in values):
        return math.nan
    infinities = {x for x in values if math.isinf(x)}
    if infinities:
        return math.nan if len(infinities) == 2 else infinities.pop()
    if func == "sum":
        return _exact_sum(values)
    return float(sum(map(Fraction, values), Fraction(0)) / len(values))


def _exact_sum(values: Iterable[float]) -> float:
    try:
        return math.fsum(values)
    except OverflowError:  # an exact sum beyond float range: Go's running sum is +-Inf
        total = sum(map(Fraction, values), Fraction(0))
        try:
            return float(total)
        except OverflowError:
            return math.inf if total > 0 else -math.inf


def _rate_term(term: RateTerm, history: _History, t_ms: int) -> float | None:
    window_ms = round(term.window * 1000)
    rates = [
        extrapolated_rate(s, t_ms - window_ms, t_ms, is_rate=term.func == "rate")
        for s in history.counter_ranges(term.selector, t_ms, window_ms)
    ]
    present = [r for r in rates if r is not None]
    return aggregate("sum", present) if present else None


def _rate_sum(group: RateSum, history: _History, t_ms: int) -> float | None:
    total = 0.0
    for term in group.terms:  # PromQL '+' of empty vectors is empty
        r = _rate_term(term, history, t_ms)
        if r is None:
            return None
        total += r
    return total


def _quantile(v: Quantile, history: _History, t_ms: int) -> float | None:
    window_ms = round(v.window * 1000)
    per_bound: dict[float, float] = {}
    start = t_ms - window_ms
    # series in the order they enter the window (per bound, the rates add up in it)
    entering = []
    for series in history.series(v.selector).values():
        lo, hi = series.span(start, t_ms)
        if lo < hi:
            entering.append(((series.times[lo], series.positions[lo]), series, lo, hi))
    entering.sort(key=lambda e: e[0])
    for _, series, lo, hi in entering:
        series.fill_buckets()
        bounds = (*series.boundaries[hi - 1], math.inf)  # the last sample's
        n = len(bounds)
        times = series.times[lo:hi]
        if series.buckets[lo:hi].count(n) == hi - lo:
            columns = [column[lo:hi] for column in series.columns[:n]]
        else:  # a sample with another number of buckets is left out
            kept = [k for k in range(lo, hi) if series.buckets[k] == n]
            if not kept:
                continue
            times = [series.times[k] for k in kept]
            columns = [[column[k] for k in kept] for column in series.columns[:n]]
        for upper, column in zip(bounds, columns, strict=True):
            r = extrapolated_rate(list(zip(times, column, strict=True)), start, t_ms,
                                  is_rate=True)
            if r is not None:
                per_bound[upper] = per_bound.get(upper, 0.0) + r
    if not per_bound:
        return None
    return bucket_quantile(v.q, list(per_bound.items()))


def _holds(expr: Clause, value: float | None) -> bool:
    if value is None:
        return False
    if isinstance(expr, Absent):
        return True
    t, op = expr.threshold, expr.op
    if op == ">":
        return value > t
    if op == ">=":
        return value >= t
    if op == "<":
        return value < t
    if op == "<=":
        return value <= t
    return value == t if op == "==" else value != t


def alert_labels(rule: AlertRule) -> dict[str, str]:
    """The labels of the alert ``rule`` raises, as Prometheus builds them."""
    first = clauses(rule.expression)[0]  # 'and' keeps the left side's labels
    if not isinstance(first, Absent):
        return dict(rule.all_labels)
    # a rule's expression reaches the evaluation with its matchers in sorted text order
    # (promtool 2.42 shows it), and absent() reads them in that order
    ordered = sorted(
        first.selector.matchers,
        key=lambda m: f"{label_name(m.label)}{m.op}{json.dumps(m.value, ensure_ascii=False)}",
    )
    return {**absent_labels(ordered), **rule.all_labels}


def absent_labels(matchers: Iterable[Matcher]) -> dict[str, str]:
    """The labels ``absent(selector)`` returns, as Prometheus builds them in matcher order:
    the first ``=`` on a label sets it, any later matcher on it (or another kind) removes
    it, and an empty value is no label."""
    labels: dict[str, str] = {}
    has: set[str] = set()
    for m in matchers:
        if m.op == "=" and m.label not in has:
            labels[m.label] = m.value
            has.add(m.label)
        else:
            labels.pop(m.label, None)
    return {k: v for k, v in labels.items() if v != ""}


class AlertEvaluator:
    """Samples metrics on the simulated clock and runs alert rules; see the package docs."""

    def __init__(
        self,
        rules: RuleSet | Iterable[AlertRule] | None = None,
        *,
        interval: float = 15.0,
        evaluation_interval: float = 60.0,
        evaluation_phase: float = 0.0,
        source: Callable[[], MetricsSnapshot] | None = None,
    ) -> None:
        if rules is None:
            from .defaults import default_rules

            rules = default_rules()
        self.rules: RuleSet = rules if isinstance(rules, RuleSet) else load_rules(rules)
        if not interval > 0:
            raise SpecError(f"evaluation interval must be positive, got {interval!r}")
        self.interval = float(interval)
        if not evaluation_interval > 0:
            raise SpecError(
                f"evaluation_interval must be positive, got {evaluation_interval!r}"
            )
        if not 0 <= evaluation_phase < evaluation_interval:
            raise SpecError(
                f"evaluation_phase must be within [0, evaluation_interval), got "
                f"{evaluation_phase!r}"
            )
        self.evaluation_interval = float(evaluation_interval)
        self.evaluation_phase = float(evaluation_phase)
        self._step_ms = round(self.evaluation_interval * 1000)
        self._phase_ms = round(self.evaluation_phase * 1000)
        self._next_ms: int | None = None
        self.source = source
        for r in self.rules:
            for w in windows(r.expression):
                if w < 2 * self.interval:
                    raise SpecError(
                        f"rule {r.name!r}: window {w:g}s holds fewer than two samples at a "
                        f"scrape interval of {self.interval:g}s, so it never has a value"
                    )
        self._history = _History()
        self._state = {r.name: _RuleState() for r in self.rules}
        self.history: list[Transition] = []
        self.episodes: list[Episode] = []
        self.evaluations: list[Evaluation] = []

    # feeding -----------------------------------------------------------------------
    def observe(self, snapshot: MetricsSnapshot) -> list[Transition]:
        """Record ``snapshot`` as a scrape and run the evaluations due up to its time."""
        t_ms = snapshot.time_unix_nano // 1_000_000
        if self._history.samples and t_ms <= self._history.samples[-1][0]:
            last = self._history.samples[-1][0] / 1000
            raise SpecError(
                f"snapshots must move forward in time: got {t_ms / 1000:.3f} after {last:.3f}"
            )
        self._history.add(t_ms, snapshot)
        if self._next_ms is None:  # the last evaluation due at or before the first scrape
            self._next_ms = t_ms - (t_ms - self._phase_ms) % self._step_ms
        out: list[Transition] = []
        while self._next_ms <= t_ms:
            out += self._evaluate(self._next_ms)
            self._next_ms += self._step_ms
        return out

    def poll(self) -> list[Transition]:
        """Take a snapshot from ``source`` and observe it."""
        if self.source is None:
            raise SpecError("AlertEvaluator.poll() needs source=, e.g. telemetry.metrics_snapshot")
        return self.observe(self.source())

    def run(self, duration: float, advance: Callable[[float], object]) -> list[Transition]:
        """Poll now, then ``advance(interval)`` and poll again until ``duration`` has passed.

        ``advance`` moves simulated time and lets the system work, e.g. ``clock.tick`` or
        ``bot.run_for``. Scrapes are stamped on the scraper's schedule (first poll plus whole
        intervals), as Prometheus does, even when ``advance`` overshoots a little: a bot whose
        last operation ends past the interval must not push scrapes off the grid.
        """
        if self.source is None:
            raise SpecError("AlertEvaluator.run() needs source=, e.g. telemetry.metrics_snapshot")
        first = self.source()
        out = self.observe(first)
        step_ns = round(self.interval * 1e9)
        for k in range(1, round(duration / self.interval) + 1):
            advance(self.interval)
            at = first.time_unix_nano + k * step_ns
            out += self.observe(dataclasses.replace(self.source(), time_unix_nano=at))
        return out

    def observe_all(self, snapshots: Iterable[MetricsSnapshot]) -> list[Transition]:
        out: list[Transition] = []
        for s in snapshots:
            out += self.observe(s)
        return out

    def _evaluate(self, t_ms: int) -> list[Transition]:
        now = t_ms / 1000
        changes: list[Transition] = []
        states: dict[str, AlertState] = {}
        values: dict[str, float | None] = {}
        clause_values: dict[str, tuple[float | None, ...]] = {}
        for r in self.rules:
            holds, each = _evaluate(r.expression, self._history, t_ms)
            value = each[0]
            st = self._state[r.name]
            before = st.state
            if holds:
                if st.active_since_ms is None:
                    st.active_since_ms = t_ms
                    st.state = AlertState.PENDING
                    st.episode = Episode(r.name, now)
                    self.episodes.append(st.episode)
                if t_ms - st.active_since_ms >= round(r.for_ * 1000):
                    st.state = AlertState.FIRING
                    if st.episode is not None and st.episode.fired_at is None:
                        st.episode.fired_at = now
            else:
                if before is AlertState.FIRING:
                    st.state = AlertState.RESOLVED
                    if st.episode is not None:
                        st.episode.resolved_at = now
                elif before is AlertState.PENDING:
                    st.state = AlertState.INACTIVE
                st.active_since_ms = None
                st.episode = None
            if st.state is not before:
                changes.append(Transition(now, r.name, before, st.state, value))
            states[r.name] = st.state
            values[r.name] = value
            clause_values[r.name] = each
        self.history += changes
        self.evaluations.append(Evaluation(now, states, values, clause_values))
        return changes

    # reading -----------------------------------------------------------------------
    @property
    def states(self) -> dict[str, AlertState]:
        return {name: st.state for name, st in self._state.items()}

    @property
    def start(self) -> float:
        """Time of the first observation (seconds since the epoch)."""
        if not self._history.samples:
            raise SpecError("the evaluator has not observed anything yet")
        return self._history.samples[0][0] / 1000

    @property
    def snapshots(self) -> list[MetricsSnapshot]:
        return [s for _, s in self._history.samples]

    def timeline(self) -> list[Evaluation]:
        return list(self.evaluations)

    def firing(self) -> list[str]:
        return [n for n, s in self.states.items() if s is AlertState.FIRING]

    def fired(self) -> list[str]:
        """Names of the rules that fired at least once, in rule order."""
        seen = {e.rule for e in self.episodes if e.fired_at is not None}
        return [n for n in self.rules.names() if n in seen]

    def clause_values(self, name: str) -> list[tuple[float, tuple[float | None, ...]]]:
        """Each evaluation's time and the value of every clause of rule ``name`` (the
        evaluations keep only the first clause's): what a chart of the rule plots."""
        parts = clauses(self._rule(name).expression)
        return [
            (t_ms / 1000, tuple(_clause_value(c, self._history, t_ms) for c in parts))
            for t_ms, _ in self._history.samples
        ]

    def _rule(self, name: str) -> AlertRule:
        try:
            return self.rules.get(name)
        except KeyError as exc:
            raise SpecError(str(exc.args[0])) from None

    def detection_delay(self, name: str, fault_start: TimeLike) -> float | None:
        """Seconds from ``fault_start`` until ``name`` first fired after it; None if it didn't."""
        self._rule(name)
        t0 = _seconds(fault_start)
        fired = [
            e.fired_at
            for e in self.episodes
            if e.rule == name and e.fired_at is not None and e.fired_at >= t0
        ]
        return min(fired) - t0 if fired else None

    def report(self) -> str:
        """Every transition, relative to the first observation."""
        if not self.history:
            return "no alert left the inactive state"
        return "\n".join(t.describe(self.start) for t in self.history)

    def _failure(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\nalert transitions:\n{self.report()}")

    def assert_fired(self, name: str, *, within: float, after: TimeLike) -> float:
        """``name`` fired within ``within`` seconds after ``after``; returns the delay."""
        self._rule(name)
        t0 = _seconds(after)
        delay = self.detection_delay(name, t0)
        if delay is None or delay > within:
            seen = "never fired after it" if delay is None else f"fired only after {delay:g}s"
            raise self._failure(
                f"alert {name!r} did not fire within {within:g}s of "
                f"+{t0 - self.start:g}s: it {seen}"
            )
        return delay

    def assert_resolved(self, name: str, *, within: float, after: TimeLike) -> float:
        """``name`` resolved within ``within`` seconds after ``after`` (a rollback); returns delay.

        Passes only if the alert was firing at ``after`` or fired later, and its resolution
        falls in the window.
        """
        self._rule(name)
        t0 = _seconds(after)
        resolved = [
            e.resolved_at
            for e in self.episodes
            if e.rule == name and e.resolved_at is not None and e.resolved_at >= t0
        ]
        delay = min(resolved) - t0 if resolved else None
        if delay is None or delay > within:
            if not any(e.rule == name and e.fired_at is not None for e in self.episodes):
                seen = "never fired at all"
            elif delay is None:
                seen = f"is still {self.states[name]}"
            else:
                seen = f"resolved only after {delay:g}s"
            raise self._failure(
                f"alert {name!r} did not resolve within {within:g}s of "
                f"+{t0 - self.start:g}s: it {seen}"
            )
        return delay

    def assert_never_fired(
        self,
        name: str | None = None,
        *,
        between: tuple[TimeLike, TimeLike] | None = None,
    ) -> None:
        """``name`` (or any alert when None) never fired (optionally only within ``between``)."""
        if name is not None:
            self._rule(name)
        lo, hi = (-math.inf, math.inf) if between is None else map(_seconds, between)
        bad = [
            e
            for e in self.episodes
            if (name is None or e.rule == name)
            and e.fired_at is not None
            and lo <= e.fired_at <= hi
        ]
        if bad:
            what = ", ".join(f"{e.rule} at +{(e.fired_at or 0) - self.start:g}s" for e in bad)
            raise self._failure(
                f"expected no alert{'' if name is None else ' ' + repr(name)} to fire; "
                f"fired: {what}"
            )


__all__ = [
    "AlertEvaluator",
    "AlertState",
    "Episode",
    "Evaluation",
    "Transition",
    "absent_labels",
    "aggregate",
    "alert_labels",
    "bucket_quantile",
    "extrapolated_rate",
]
