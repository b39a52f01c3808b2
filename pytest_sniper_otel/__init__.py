"""pytest-sniper-otel: test the OpenTelemetry observability of trading bots.

Public API (imported lazily so that loading the pytest plugin stays cheap)::

    from pytest_sniper_otel import span, descendant, absent, event, ANY, SimClock
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .capture import SessionTelemetry, install_session, metric_reader
    from .clock import SimClock
    from .errors import (
        CaptureUnavailable,
        MetricKindError,
        MetricNotFound,
        SniperOtelError,
        SniperOtelWarning,
        SpecError,
    )
    from .logs import LogRecordView
    from .matchers import ANY
    from .metrics import MetricsSnapshot, MetricView, SeriesPoint
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
    "Telemetry": "telemetry",
    "MetricView": "metrics",
    "MetricsSnapshot": "metrics",
    "SeriesPoint": "metrics",
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
}

__all__ = [
    "ANY",
    "CaptureUnavailable",
    "LogRecordView",
    "MetricKindError",
    "MetricNotFound",
    "MetricView",
    "MetricsSnapshot",
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
    "event",
    "install_session",
    "metric_reader",
    "span",
]
__version__ = "0.1.0"


def _lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving ``exports`` (name -> submodule of ``package``): each
    name is imported on first access and stored in ``namespace``. It lives here, not in a
    module of its own, so loading the plugin imports nothing beyond it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    return __getattr__


__getattr__ = _lazy_exports(__name__, _EXPORTS, globals())
