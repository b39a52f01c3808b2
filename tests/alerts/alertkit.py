"""Builders of synthetic metric timelines for the alert tests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_sniper_otel.catalog import MetricSpec
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


def exporter_series(specs: Iterable[MetricSpec]) -> dict[str, set[str]]:
    """Run opentelemetry-exporter-prometheus on ``specs`` (each recorded once with all its
    attributes) and return every sample name it exposes with that sample's label names."""
    import pytest

    pytest.importorskip("opentelemetry.exporter.prometheus", reason="needs the Prometheus exporter")
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.metrics import CallbackOptions, Observation
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("naming-check")
    try:
        for spec in specs:
            attrs = {a: "x" for a in spec.attributes}
            if spec.kind == "counter":
                meter.create_counter(spec.name, unit=spec.unit).add(1, attrs)
            elif spec.kind == "updowncounter":
                meter.create_up_down_counter(spec.name, unit=spec.unit).add(1, attrs)
            elif spec.kind == "histogram":
                meter.create_histogram(spec.name, unit=spec.unit).record(1, attrs)
            else:

                def observe(_: CallbackOptions, a: dict[str, Any] = attrs) -> list[Observation]:
                    return [Observation(1, a)]

                meter.create_observable_gauge(spec.name, callbacks=[observe], unit=spec.unit)
        series: dict[str, set[str]] = {}
        for family in registry.collect():
            for sample in family.samples:
                series.setdefault(sample.name, set()).update(sample.labels)
    finally:
        provider.shutdown()
    return series
