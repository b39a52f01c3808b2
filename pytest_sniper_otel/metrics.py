"""Metric series captured in one test, and views over them for assertions.

The capture reads DELTA points from the SDK and folds them into per-test cumulative
series here (:class:`MetricAccumulator`), so every read in a test sees the running total
and nothing leaks from the previous test. :class:`MetricsSnapshot` is a frozen copy of
those series at one instant; the alert evaluator works on a timeline of snapshots.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

from .errors import MetricKindError, MetricNotFound, SpecError, did_you_mean, shown

MetricKind = Literal["counter", "updowncounter", "gauge", "histogram"]
Attributes = Mapping[str, Any]
SeriesKey = tuple[str, tuple[tuple[str, Any], ...]]


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _hashable(value: Any) -> Any:
    if type(value) in _SCALARS:  # most attribute values: no ABC check
        return value
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    return value


def series_key(name: str, attributes: Attributes) -> SeriesKey:
    return name, tuple(sorted((k, _hashable(v)) for k, v in attributes.items()))


def format_attributes(attributes: Attributes) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(attributes.items())) + "}"


@dataclass(frozen=True)
class ExponentialBuckets:
    """The buckets of an exponential histogram point (OTel's base-2 exponential histogram).

    At ``scale`` the base is ``2 ** 2 ** -scale``; positive bucket ``i`` holds values in
    ``(base**i, base**(i+1)]``, negative bucket ``i`` their negatives; ``zero_count`` the
    values within the zero threshold.
    """

    scale: int
    zero_count: int = 0
    positive: Mapping[int, int] = field(default_factory=dict)
    negative: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def of(cls, point: Any) -> ExponentialBuckets:
        """From the SDK's ``ExponentialHistogramDataPoint``."""

        def counts(buckets: Any) -> dict[int, int]:
            return {
                buckets.offset + i: c for i, c in enumerate(buckets.bucket_counts) if c
            }

        return cls(point.scale, point.zero_count, counts(point.positive), counts(point.negative))

    def merged(self, other: ExponentialBuckets) -> ExponentialBuckets:
        """Both points' counts at the coarser of the two scales."""
        scale = min(self.scale, other.scale)

        def rescaled(*sides: tuple[int, Mapping[int, int]]) -> dict[int, int]:
            out: dict[int, int] = {}
            for side_scale, buckets in sides:
                shift = side_scale - scale
                for index, count in buckets.items():
                    out[index >> shift] = out.get(index >> shift, 0) + count
            return out

        return ExponentialBuckets(
            scale,
            self.zero_count + other.zero_count,
            rescaled((self.scale, self.positive), (other.scale, other.positive)),
            rescaled((self.scale, self.negative), (other.scale, other.negative)),
        )

    def buckets(self) -> list[tuple[float, float, int]]:
        """``(lower, upper, count)`` for every bucket from the lowest populated to the
        highest, ascending (empty ones in between included)."""
        base = 2.0 ** (2.0**-self.scale)
        out: list[tuple[float, float, int]] = []
        if self.negative:
            for i in range(max(self.negative), min(self.negative) - 1, -1):
                out.append((-(base ** (i + 1)), -(base**i), self.negative.get(i, 0)))
        if self.zero_count or (self.negative and self.positive):
            out.append((0.0, 0.0, self.zero_count))
        if self.positive:
            for i in range(min(self.positive), max(self.positive) + 1):
                out.append((base**i, base ** (i + 1), self.positive.get(i, 0)))
        return out

    def explicit(self) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """The same counts as explicit buckets: (boundaries, bucket_counts), +Inf last."""
        buckets = self.buckets()
        return tuple(b[1] for b in buckets), (*(b[2] for b in buckets), 0)

    def quantile(self, q: float, low: float, high: float) -> float:
        """The q-quantile, interpolated exponentially inside its bucket (linearly across
        zero) and kept within the observed ``[low, high]``; NaN without observations."""
        buckets = self.buckets()
        total = sum(b[2] for b in buckets)
        if total == 0:
            return math.nan
        rank = q * total
        cumulative = 0
        for lower, upper, count in buckets:
            if count and cumulative + count >= rank:
                fraction = (rank - cumulative) / count
                if lower > 0:
                    value = lower * math.pow(upper / lower, fraction)
                elif upper < 0:
                    value = upper * math.pow(lower / upper, 1 - fraction)
                else:
                    value = lower + (upper - lower) * fraction
                return min(max(value, low), high)
            cumulative += count
        return high


@dataclass(frozen=True)
class SeriesPoint:
    """One metric series (name + attribute set) with its cumulative value in this test.

    ``value`` is set for counters, up-down counters and gauges; ``count``, ``sum``,
    ``min``, ``max``, ``bucket_counts`` and ``boundaries`` for histograms.
    ``bucket_counts`` has ``len(boundaries) + 1`` entries, the last one for +Inf.
    """

    name: str
    kind: MetricKind
    attributes: Mapping[str, Any]
    unit: str = ""
    description: str = ""
    value: float | None = None
    count: int = 0
    sum: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    bucket_counts: tuple[int, ...] = ()
    boundaries: tuple[float, ...] = ()
    time_unix_nano: int = 0
    # Set for an exponential (base-2) histogram; bucket_counts/boundaries are then derived
    # from it: one bucket per populated exponential bucket, lowest to highest.
    exponential: ExponentialBuckets | None = None

    @cached_property
    def key(self) -> SeriesKey:
        # kept: an unchanged series is the same point in every later snapshot
        return series_key(self.name, self.attributes)

    def describe(self) -> str:
        if self.kind == "histogram":
            return (
                f"{self.name}{format_attributes(self.attributes)} "
                f"count={self.count} sum={self.sum:g}"
            )
        return f"{self.name}{format_attributes(self.attributes)} = {self.value:g}"


@dataclass(frozen=True)
class MetricsSnapshot:
    """All series of one test at one instant (``time_unix_nano``, on the test's clock)."""

    time_unix_nano: int
    series: Mapping[str, tuple[SeriesPoint, ...]] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.series)

    def points(self, name: str) -> tuple[SeriesPoint, ...]:
        return self.series.get(name, ())

    def __iter__(self) -> Iterator[SeriesPoint]:
        for points in self.series.values():
            yield from points

    def view(
        self, name: str, attributes: Attributes | None = None, *, allow_empty: bool = False
    ) -> MetricView:
        """A :class:`MetricView` of ``name`` filtered by ``attributes`` (a subset match).

        Raises :class:`MetricNotFound`, listing what was captured, if ``name`` was never
        recorded, and :class:`SpecError` if an attribute key appears on none of its series,
        or (unless ``allow_empty``) a value on none of them: a typo would otherwise read as a
        legitimate zero.
        """
        __tracebackhide__ = True
        if name not in self.series:
            raise MetricNotFound(_not_found_message(name, self.names()))
        wanted = dict(attributes or {})
        all_points = self.series[name]
        keys = {k for p in all_points for k in p.attributes}
        unknown = sorted(k for k in wanted if k not in keys)
        if unknown:
            hints = []
            for k in unknown:
                hints.append(f"{k!r}" + did_you_mean(k, sorted(keys), template=" ({})"))
            raise SpecError(
                f"metric {name!r} has no series with attribute {', '.join(hints)}; "
                f"its attribute keys are: {', '.join(sorted(keys)) or 'none'}"
            )
        if not allow_empty:
            _check_values(name, wanted, all_points)
        matched = tuple(p for p in all_points if _attributes_include(p.attributes, wanted))
        return MetricView(name, wanted, matched, all_points)


def _check_values(name: str, wanted: Attributes, points: Sequence[SeriesPoint]) -> None:
    """Each wanted attribute value is matched by some series: a did-you-mean if not."""
    __tracebackhide__ = True
    from .matchers import describe, matches

    for key, want in wanted.items():
        seen = list(dict.fromkeys(p.attributes[key] for p in points if key in p.attributes))
        if any(matches(want, v) for v in seen):
            continue
        shown = [repr(v) for v in seen]
        hint = did_you_mean(describe(want), shown, template=" ({})", show=str)
        listed = ", ".join(shown[:20])
        if len(shown) > 20:
            listed += f", ... {len(shown) - 20} more"
        raise SpecError(
            f"metric {name!r} has no series with {key}={describe(want)}{hint}; "
            f"values of {key!r} seen: {listed}. "
            "Pass allow_empty=True to read it as empty (a count of 0)"
        )


def _attributes_include(actual: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    from .matchers import matches

    return all(k in actual and matches(v, actual[k]) for k, v in wanted.items())


def _not_found_message(name: str, captured: Sequence[str]) -> str:
    if not captured:
        return f"metric {name!r} was not recorded in this test: no metrics were recorded at all"
    hint = did_you_mean(name, captured, n=3)
    return (
        f"metric {name!r} was not recorded in this test{hint}\n"
        f"captured metrics: {', '.join(captured)}"
    )


class MetricView:
    """The points of one metric whose attributes include the requested ones."""

    def __init__(
        self,
        name: str,
        attributes: Mapping[str, Any],
        points: Sequence[SeriesPoint],
        all_points: Sequence[SeriesPoint] = (),
    ) -> None:
        self.name = name
        self.attributes = dict(attributes)
        self.points = tuple(points)
        self._all = tuple(all_points) or self.points

    @property
    def kind(self) -> MetricKind:
        return self._all[0].kind

    @property
    def series(self) -> list[dict[str, Any]]:
        """The attribute sets of the matched series."""
        return [dict(p.attributes) for p in self.points]

    # counters, up-down counters, gauges --------------------------------------------
    @property
    def value(self) -> float:
        """Sum over matched series for counters; the single matched series for a gauge."""
        __tracebackhide__ = True
        if self.kind == "histogram":
            raise MetricKindError(
                f"{self.name} is a histogram and has no .value; "
                "use .count, .sum, .min, .max, .bucket_counts or .quantile(q)"
            )
        if self.kind == "gauge":
            if len(self.points) > 1:
                raise MetricKindError(
                    f"gauge {self.name} has {len(self.points)} series matching "
                    f"{format_attributes(self.attributes)} and gauges do not add up; "
                    f"narrow the attributes. Series: "
                    + "; ".join(format_attributes(p.attributes) for p in self.points)
                )
            return (self.points[0].value or 0.0) if self.points else 0.0
        return sum(p.value or 0.0 for p in self.points)

    # histograms --------------------------------------------------------------------
    def _histogram(self, what: str) -> tuple[SeriesPoint, ...]:
        __tracebackhide__ = True
        if self.kind != "histogram":
            raise MetricKindError(f"{self.name} is a {self.kind} and has no {what}; use .value")
        return self.points

    @property
    def count(self) -> int:
        __tracebackhide__ = True
        return sum(p.count for p in self._histogram(".count"))

    @property
    def sum(self) -> float:
        __tracebackhide__ = True
        return sum(p.sum for p in self._histogram(".sum"))

    @property
    def min(self) -> float:
        __tracebackhide__ = True
        points = self._histogram(".min")
        return min((p.min for p in points), default=math.nan)

    @property
    def max(self) -> float:
        __tracebackhide__ = True
        points = self._histogram(".max")
        return max((p.max for p in points), default=math.nan)

    def _exponential(self) -> ExponentialBuckets | None:
        """The matched series' exponential buckets merged, if this is an exponential
        histogram (None for explicit buckets)."""
        if self._all[0].exponential is None:
            return None
        merged: ExponentialBuckets | None = None
        for p in self.points:
            if p.exponential is not None:
                merged = p.exponential if merged is None else merged.merged(p.exponential)
        return merged or ExponentialBuckets(0)

    @property
    def boundaries(self) -> tuple[float, ...]:
        __tracebackhide__ = True
        self._histogram(".boundaries")
        exponential = self._exponential()
        if exponential is not None:
            return exponential.explicit()[0]
        return self._all[0].boundaries

    @property
    def bucket_counts(self) -> tuple[int, ...]:
        __tracebackhide__ = True
        points = self._histogram(".bucket_counts")
        exponential = self._exponential()
        if exponential is not None:
            return exponential.explicit()[1]
        bounds = self.boundaries
        totals = [0] * (len(bounds) + 1)
        for p in points:
            if p.boundaries != bounds:
                raise MetricKindError(
                    f"{self.name}: series have different bucket boundaries "
                    f"({p.boundaries} vs {bounds}) and cannot be merged"
                )
            for i, c in enumerate(p.bucket_counts):
                totals[i] += c
        return tuple(totals)

    def quantile(self, q: float) -> float:
        """Estimate the q-quantile from buckets, as Prometheus' ``histogram_quantile`` does."""
        __tracebackhide__ = True
        _check_quantile(q)
        self._histogram(".quantile()")
        exponential = self._exponential()
        if exponential is not None:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile must be within [0, 1], got {q!r}")
            return exponential.quantile(q, self.min, self.max)
        return histogram_quantile(q, self.boundaries, self.bucket_counts)

    def __repr__(self) -> str:
        total = len(self._all)
        shown = "; ".join(p.describe() for p in self._all[:8])
        more = f"; ... {total - 8} more" if total > 8 else ""
        return (
            f"<MetricView {self.name} {self.kind} {format_attributes(self.attributes)}: "
            f"matched {len(self.points)} of {total} series [{shown}{more}]>"
        )


def histogram_quantile(
    q: float, boundaries: Sequence[float], bucket_counts: Sequence[int]
) -> float:
    """Prometheus' ``histogram_quantile`` on explicit buckets (last bucket is +Inf).

    Linear interpolation inside the bucket that holds rank ``q * count``; the first bucket
    starts at 0 when its upper bound is positive; a rank in the +Inf bucket returns the
    largest finite boundary. NaN when there are no observations.
    """
    __tracebackhide__ = True
    _check_quantile(q)
    total = sum(bucket_counts)
    if total == 0 or not boundaries:
        return math.nan
    rank = q * total
    cumulative = 0
    for i, count in enumerate(bucket_counts):
        if cumulative + count >= rank and count > 0:
            if i == len(boundaries):
                return float(boundaries[-1])
            upper = float(boundaries[i])
            lower = float(boundaries[i - 1]) if i > 0 else min(0.0, upper)
            if i == 0 and upper <= 0:
                return upper
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return float(boundaries[-1])


def _check_quantile(q: object) -> None:
    __tracebackhide__ = True
    if isinstance(q, bool) or not isinstance(q, int | float):
        raise SpecError(
            f"quantile(q): q must be a number within [0, 1], got {shown(q)}"
        )
    if not 0.0 <= q <= 1.0:  # also refuses NaN
        raise SpecError(f"quantile(q): q must be within [0, 1], got {q!r}")


_MAX_KNOWN_KEYS = 100_000


class MetricAccumulator:
    """Folds DELTA (and gauge) points from successive collections into cumulative series."""

    def __init__(self) -> None:
        self._series: dict[SeriesKey, SeriesPoint] = {}
        self._order: dict[str, list[SeriesKey]] = {}
        # each metric's series as the last snapshot gave them, until one of them changes
        self._snapshotted: dict[str, tuple[SeriesPoint, ...]] = {}
        # (name, id) of the attributes mapping the SDK hands for a series -> (it, its key):
        # the SDK hands the same mapping (its aggregation's) at every collection
        self._keys: dict[tuple[str, int], tuple[Any, SeriesKey]] = {}

    def clear(self) -> None:
        self._series.clear()
        self._order.clear()
        self._snapshotted.clear()
        self._keys.clear()

    def add(self, point: SeriesPoint) -> None:
        key = point.key
        old = self._series.get(key)
        self._snapshotted.pop(point.name, None)
        if old is None:
            self._series[key] = point
            self._order.setdefault(point.name, []).append(key)
            return
        if point.kind == "gauge":
            merged = point
        elif point.exponential is not None and old.exponential is not None:
            exponential = old.exponential.merged(point.exponential)
            boundaries, bucket_counts = exponential.explicit()
            merged = replace(
                old,
                count=old.count + point.count,
                sum=old.sum + point.sum,
                min=min(old.min, point.min),
                max=max(old.max, point.max),
                exponential=exponential,
                boundaries=boundaries,
                bucket_counts=bucket_counts,
                time_unix_nano=point.time_unix_nano,
            )
        elif point.kind == "histogram":
            merged = replace(
                old,
                count=old.count + point.count,
                sum=old.sum + point.sum,
                min=min(old.min, point.min),
                max=max(old.max, point.max),
                bucket_counts=tuple(
                    a + b for a, b in zip(old.bucket_counts, point.bucket_counts, strict=True)
                )
                if old.boundaries == point.boundaries
                else point.bucket_counts,
                boundaries=point.boundaries,
                time_unix_nano=point.time_unix_nano,
            )
        else:
            merged = replace(
                old,
                value=(old.value or 0.0) + (point.value or 0.0),
                time_unix_nano=point.time_unix_nano,
            )
        self._series[key] = merged

    def add_all(self, points: Iterable[SeriesPoint]) -> None:
        for p in points:
            self.add(p)

    def add_metrics_data(self, data: Any) -> None:
        """Fold one collection of the SDK's ``MetricsData`` (DELTA) in, as :meth:`add` folds
        each of its points; a series seen before is updated from the SDK's point directly:
        one new point instead of two (a scrape updates every series that changed, and a
        frozen point costs an ``object.__setattr__`` per field to build)."""
        from opentelemetry.sdk.metrics.export import Gauge, Histogram, Sum

        if data is None:
            return
        series = self._series
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    d = metric.data
                    kind: MetricKind
                    if isinstance(d, Histogram):
                        kind = "histogram"
                    elif isinstance(d, Gauge):
                        kind = "gauge"
                    elif isinstance(d, Sum):
                        kind = "counter" if d.is_monotonic else "updowncounter"
                    else:  # exponential histograms: merged through their points
                        self.add_all(_points_of(metric))
                        continue
                    name = metric.name
                    for dp in d.data_points:
                        key = self._key_of(name, dp.attributes)
                        old = series.get(key)
                        if old is None or old.kind != kind or old.exponential is not None:
                            self.add(_point_of(metric, kind, dp))
                        elif kind == "histogram":
                            self._update(key, old, _merged_histogram(old, dp))
                        elif kind == "gauge":
                            self._update(key, old, {
                                "attributes": dict(dp.attributes or {}),
                                "unit": metric.unit or "",
                                "description": metric.description or "",
                                "value": float(dp.value),
                                "time_unix_nano": dp.time_unix_nano,
                            })
                        else:
                            self._update(key, old, {
                                "value": (old.value or 0.0) + (float(dp.value) or 0.0),
                                "time_unix_nano": dp.time_unix_nano,
                            })

    def _key_of(self, name: str, attributes: Any) -> SeriesKey:
        if attributes is None:
            return series_key(name, {})
        known = self._keys.get((name, id(attributes)))
        if known is not None and known[0] is attributes:
            return known[1]
        if len(self._keys) >= _MAX_KNOWN_KEYS:  # an SDK handing a fresh mapping each time
            self._keys.clear()
        key = series_key(name, attributes)
        self._keys[name, id(attributes)] = (attributes, key)  # kept alive: its id stays its
        return key

    def _update(self, key: SeriesKey, old: SeriesPoint, changes: dict[str, Any]) -> None:
        # dataclasses.replace(old, **changes) without the frozen __init__ (same fields)
        point = object.__new__(SeriesPoint)
        point.__dict__.update(old.__dict__)
        point.__dict__.update(changes)
        point.__dict__["key"] = key  # SeriesPoint.key, cached
        self._series[key] = point
        self._snapshotted.pop(old.name, None)

    def snapshot(self, time_unix_nano: int) -> MetricsSnapshot:
        made = self._snapshotted
        for name, keys in self._order.items():
            if name not in made:
                made[name] = tuple(self._series[k] for k in keys)
        return MetricsSnapshot(time_unix_nano, {name: made[name] for name in self._order})


def _points_of(metric: Any) -> list[SeriesPoint]:
    from opentelemetry.sdk.metrics.export import ExponentialHistogram, Gauge, Histogram, Sum

    d = metric.data
    kind: MetricKind
    if isinstance(d, Histogram | ExponentialHistogram):
        kind = "histogram"
    elif isinstance(d, Gauge):
        kind = "gauge"
    elif isinstance(d, Sum):
        kind = "counter" if d.is_monotonic else "updowncounter"
    else:
        return []
    return [_point_of(metric, kind, dp) for dp in d.data_points]


def _point_of(metric: Any, kind: MetricKind, dp: Any) -> SeriesPoint:
    """One SDK data point of ``metric`` as a series point."""
    from opentelemetry.sdk.metrics.export import ExponentialHistogram

    common: dict[str, Any] = {
        "name": metric.name,
        "kind": kind,
        "attributes": dict(dp.attributes or {}),
        "unit": metric.unit or "",
        "description": metric.description or "",
        "time_unix_nano": dp.time_unix_nano,
    }
    if kind != "histogram":
        return SeriesPoint(value=float(dp.value), **common)
    if isinstance(metric.data, ExponentialHistogram):
        exponential = ExponentialBuckets.of(dp)
        boundaries, bucket_counts = exponential.explicit()
        return SeriesPoint(
            count=dp.count, sum=dp.sum, min=dp.min, max=dp.max, bucket_counts=bucket_counts,
            boundaries=boundaries, exponential=exponential, **common,
        )  # fmt: skip
    return SeriesPoint(
        count=dp.count, sum=dp.sum, min=dp.min, max=dp.max,
        bucket_counts=tuple(dp.bucket_counts), boundaries=tuple(dp.explicit_bounds), **common,
    )  # fmt: skip


def _merged_histogram(old: SeriesPoint, dp: Any) -> dict[str, Any]:
    """What :meth:`MetricAccumulator.add` changes in ``old`` for the explicit-bucket
    histogram point ``dp`` of the same series."""
    boundaries = tuple(dp.explicit_bounds)
    return {
        "count": old.count + dp.count,
        "sum": old.sum + dp.sum,
        "min": min(old.min, dp.min),
        "max": max(old.max, dp.max),
        "bucket_counts": tuple(
            a + b for a, b in zip(old.bucket_counts, dp.bucket_counts, strict=True)
        )
        if old.boundaries == boundaries
        else tuple(dp.bucket_counts),
        "boundaries": boundaries,
        "time_unix_nano": dp.time_unix_nano,
    }
