"""metrics.py without pytest in between: quantiles, accumulation of DELTA points, views."""

from __future__ import annotations

import math

import pytest

from pytest_sniper_otel import MetricKindError, MetricNotFound, SpecError
from pytest_sniper_otel.metrics import (
    MetricAccumulator,
    MetricView,
    SeriesPoint,
    histogram_quantile,
)

# Prometheus' own test data (promql/testdata/histograms.test, "testhistogram" at 50m):
# cumulative bucket counts per `le`, turned into per-bucket counts here.
POSITIVE = ((0.1, 0.2, 1.0), (50, 20, 40, 10))  # le=0.1: 50, 0.2: 70, 1: 110, +Inf: 120
NEGATIVE = ((-0.2, -0.1, 0.3), (10, 10, 0, 10))  # le=-0.2: 10, -0.1: 20, 0.3: 20, +Inf: 30


@pytest.mark.parametrize(
    ("histogram", "q", "expected"),
    [
        (POSITIVE, 0.0, 0.0),
        (POSITIVE, 0.2, 0.048),
        (POSITIVE, 0.5, 0.15),
        (POSITIVE, 0.8, 0.72),
        (POSITIVE, 1.0, 1.0),  # in the +Inf bucket: the largest finite boundary
        (NEGATIVE, 0.0, -0.2),  # lowest bucket has a negative upper bound: that bound
        (NEGATIVE, 0.2, -0.2),
        (NEGATIVE, 0.5, -0.15),
        (NEGATIVE, 0.8, 0.3),
        (NEGATIVE, 1.0, 0.3),
    ],
)
def test_quantile_matches_prometheus(
    histogram: tuple[tuple[float, ...], tuple[int, ...]], q: float, expected: float
) -> None:
    boundaries, counts = histogram
    assert histogram_quantile(q, boundaries, counts) == pytest.approx(expected)


def test_quantile_edges() -> None:
    assert math.isnan(histogram_quantile(0.5, (1.0, 2.0), (0, 0, 0)))
    assert math.isnan(histogram_quantile(0.5, (), (3,)))
    # Empty leading buckets are skipped: the rank lands in the first non-empty one.
    assert histogram_quantile(0.5, (1.0, 2.0), (0, 10, 0)) == pytest.approx(1.5)
    for q in (-0.1, 1.01, math.nan):
        with pytest.raises(SpecError, match=r"quantile\(q\): q must be within \[0, 1\], got"):
            histogram_quantile(q, (1.0,), (1, 0))
    with pytest.raises(SpecError, match=r"q must be a number within \[0, 1\], got str '0.5'"):
        histogram_quantile("0.5", (1.0,), (1, 0))  # type: ignore[arg-type]


def counter(value: float, t: int = 0, **attributes: str) -> SeriesPoint:
    return SeriesPoint("orders", "counter", attributes, value=value, time_unix_nano=t)


def hist(values: list[float], bounds: tuple[float, ...] = (10.0, 100.0)) -> SeriesPoint:
    counts = [0] * (len(bounds) + 1)
    for v in values:
        counts[sum(1 for b in bounds if v > b)] += 1
    return SeriesPoint(
        "latency",
        "histogram",
        {"venue": "mexc"},
        count=len(values),
        sum=sum(values),
        min=min(values),
        max=max(values),
        bucket_counts=tuple(counts),
        boundaries=bounds,
    )


def test_accumulator_folds_deltas_into_totals() -> None:
    acc = MetricAccumulator()
    acc.add_all([counter(2, side="buy"), counter(1, side="sell")])
    acc.add_all([counter(3, 7, side="buy")])
    acc.add(hist([5, 50]))
    acc.add(hist([500]))
    acc.add(SeriesPoint("balance", "gauge", {}, value=100.0))
    acc.add(SeriesPoint("balance", "gauge", {}, value=90.0))  # a gauge keeps the last value
    snap = acc.snapshot(42)
    assert snap.time_unix_nano == 42
    assert snap.names() == ["balance", "latency", "orders"]
    assert [(dict(p.attributes), p.value, p.time_unix_nano) for p in snap.points("orders")] == [
        ({"side": "buy"}, 5.0, 7),
        ({"side": "sell"}, 1.0, 0),
    ]
    [h] = snap.points("latency")
    assert (h.count, h.sum, h.min, h.max, h.bucket_counts) == (3, 555, 5, 500, (1, 1, 1))
    assert snap.view("balance").value == 90.0
    acc.clear()
    assert acc.snapshot(0).names() == []


def test_views() -> None:
    acc = MetricAccumulator()
    acc.add_all([counter(2, side="buy", venue="mexc"), counter(1, side="sell", venue="mexc")])
    acc.add(hist([5, 50, 50, 500]))
    snap = acc.snapshot(0)
    assert snap.view("orders").value == 3
    assert snap.view("orders", {"side": "buy"}).value == 2
    assert snap.view("orders", {"side": lambda s: s in {"buy", "sell"}}).series == [
        {"side": "buy", "venue": "mexc"},
        {"side": "sell", "venue": "mexc"},
    ]
    h = snap.view("latency")
    assert (h.kind, h.count, h.sum, h.min, h.max) == ("histogram", 4, 605, 5, 500)
    assert h.boundaries == (10.0, 100.0) and h.bucket_counts == (1, 2, 1)
    assert h.quantile(0.5) == pytest.approx(55.0)  # rank 2 of 4: halfway through (10, 100]
    empty = snap.view("latency", {"venue": "binance"}, allow_empty=True)
    assert (empty.count, empty.sum) == (0, 0) and math.isnan(empty.min)
    with pytest.raises(SpecError, match="no series with venue='binance'"):
        snap.view("latency", {"venue": "binance"})


def test_view_errors() -> None:
    acc = MetricAccumulator()
    acc.add_all([counter(1, side="buy"), hist([5])])
    snap = acc.snapshot(0)
    with pytest.raises(MetricNotFound) as info:
        snap.view("order")
    assert str(info.value) == (
        "metric 'order' was not recorded in this test; did you mean 'orders'?\n"
        "captured metrics: latency, orders"
    )
    with pytest.raises(MetricNotFound, match=r"captured metrics: latency, orders$") as info:
        snap.view("cpu_seconds")
    assert "did you mean" not in str(info.value)
    with pytest.raises(MetricKindError, match=r"^latency is a histogram and has no \.value; use"):
        _ = snap.view("latency").value
    with pytest.raises(MetricKindError, match=r"^orders is a counter and has no \.quantile\(\)"):
        snap.view("orders").quantile(0.5)
    mixed = MetricView("latency", {}, [hist([5]), hist([5], bounds=(1.0,))])
    with pytest.raises(MetricKindError, match="different bucket boundaries"):
        _ = mixed.bucket_counts


def test_view_repr_lists_the_series() -> None:
    acc = MetricAccumulator()
    for i in range(10):
        acc.add(counter(i, side=f"s{i}"))
    view = acc.snapshot(0).view("orders", {"side": "s3"})
    assert repr(view) == (
        "<MetricView orders counter {side='s3'}: matched 1 of 10 series ["
        + "; ".join(f"orders{{side='s{i}'}} = {i}" for i in range(8))
        + "; ... 2 more]>"
    )
    assert hist([5, 7]).describe() == "latency{venue='mexc'} count=2 sum=12"
