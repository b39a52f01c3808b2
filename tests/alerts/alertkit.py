"""Builders of synthetic metric timelines for the alert tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_sniper_otel.metrics import MetricsSnapshot, SeriesPoint

T0 = 1_767_225_600  # seconds; 2026-01-01T00:00:00Z


def counter(name: str, value: float, unit: str = "", **attributes: Any) -> SeriesPoint:
    return SeriesPoint(name, "counter", attributes, unit, value=float(value))


def gauge(name: str, value: float, unit: str = "", **attributes: Any) -> SeriesPoint:
    return SeriesPoint(name, "gauge", attributes, unit, value=float(value))


def histogram(
    name: str,
    boundaries: Iterable[float],
    bucket_counts: Iterable[int],
    unit: str = "",
    **attributes: Any,
) -> SeriesPoint:
    counts = tuple(bucket_counts)
    return SeriesPoint(
        name,
        "histogram",
        attributes,
        unit,
        count=sum(counts),
        sum=0.0,
        bucket_counts=counts,
        boundaries=tuple(float(b) for b in boundaries),
    )


def snap(seconds: float, *points: SeriesPoint) -> MetricsSnapshot:
    """A snapshot ``seconds`` after T0 holding ``points``."""
    series: dict[str, list[SeriesPoint]] = {}
    for p in points:
        series.setdefault(p.name, []).append(p)
    return MetricsSnapshot(round((T0 + seconds) * 1e9), {k: tuple(v) for k, v in series.items()})
