"""pytest-sniper-otel: test the OpenTelemetry observability of trading bots.

Public API (imported lazily so that loading the pytest plugin stays cheap)::

    from pytest_sniper_otel import span, descendant, absent, event, ANY, SimClock

These names (``__all__``) are the core's public API: the lab (``flow``, ``chaos``,
``alerts``, ``catalog``, the CLI) uses no other, which tests/test_layers.py checks.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture import SessionTelemetry, install_session, metric_reader
    from .clock import (
        DEFAULT_START,
        Clock,
        RealClock,
        SimClock,
        monotonic,
        real_monotonic,
        real_monotonic_ns,
    )
    from .clock_asyncio import register_in_process_server
    from .durations import parse_duration
    from .errors import (
        CaptureUnavailable,
        MetricKindError,
        MetricNotFound,
        SniperOtelError,
        SniperOtelWarning,
        SpecError,
        did_you_mean,
    )
    from .logs import LogRecordView
    from .matchers import ANY
    from .metrics import MetricAccumulator, MetricKind, MetricsSnapshot, MetricView, SeriesPoint
    from .spans import SpanNode, SpanSpec, absent, descendant, event, span
    from .telemetry import Telemetry

_EXPORTS = {
    "span": "spans",
    "descendant": "spans",
    "absent": "spans",
    "event": "spans",
    "SpanNode": "spans",
    "SpanSpec": "spans",
    "ANY": "matchers",
    "SimClock": "clock",
    "Clock": "clock",
    "RealClock": "clock",
    "register_in_process_server": "clock_asyncio",
    "DEFAULT_START": "clock",
    "monotonic": "clock",
    "real_monotonic": "clock",
    "real_monotonic_ns": "clock",
    "Telemetry": "telemetry",
    "MetricView": "metrics",
    "MetricsSnapshot": "metrics",
    "SeriesPoint": "metrics",
    "MetricKind": "metrics",
    "MetricAccumulator": "metrics",
    "LogRecordView": "logs",
    "SessionTelemetry": "capture",
    "install_session": "capture",
    "metric_reader": "capture",
    "SniperOtelError": "errors",
    "SniperOtelWarning": "errors",
    "SpecError": "errors",
    "MetricNotFound": "errors",
    "MetricKindError": "errors",
    "CaptureUnavailable": "errors",
    "did_you_mean": "errors",
    "parse_duration": "durations",
}

__all__ = [
    "ANY",
    "DEFAULT_START",
    "CaptureUnavailable",
    "Clock",
    "LogRecordView",
    "MetricAccumulator",
    "MetricKind",
    "MetricKindError",
    "MetricNotFound",
    "MetricView",
    "MetricsSnapshot",
    "RealClock",
    "SeriesPoint",
    "SessionTelemetry",
    "SimClock",
    "SniperOtelError",
    "SniperOtelWarning",
    "SpanNode",
    "SpanSpec",
    "SpecError",
    "Telemetry",
    "absent",
    "descendant",
    "did_you_mean",
    "event",
    "install_session",
    "metric_reader",
    "monotonic",
    "parse_duration",
    "real_monotonic",
    "real_monotonic_ns",
    "register_in_process_server",
    "span",
]
__version__ = "0.1.0"


def _lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``exports`` (name -> submodule of ``package``), each
    imported on access. It lives here, not in a module of its own, so loading the plugin
    imports nothing beyond it.

    Names are read from ``sys.modules`` on every access, never cached in the package: a
    submodule imported again (pytester's in-process runs restore ``sys.modules``) must not
    leave the package handing out the old module's classes."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{module}", package), name)

    return __getattr__


__getattr__ = _lazy_exports(__name__, _EXPORTS)
