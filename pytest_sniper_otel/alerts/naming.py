"""How opentelemetry-exporter-prometheus names metrics and labels, so rules match what it exposes.

Checked against the real exporter (0.66b2) on every catalogue metric by the test suite:
the unit is mapped (``ms`` -> ``milliseconds``, ``%`` -> ``percent``, ``1`` -> nothing,
unknown units such as ``MB`` or ``USD`` kept as they are) and appended unless the name
already ends with it; a counter's ``_total`` is moved after the unit
(``requests_total`` with unit ``s`` -> ``requests_seconds_total``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..metrics import MetricKind

_NAME_BAD = re.compile(r"[^a-zA-Z0-9:]+")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9]+")
_UNIT_ANNOTATION = re.compile(r"{.*}")
_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
_PER_UNITS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


def _sanitize_name(name: str) -> str:
    if name and name[0].isdigit():
        name = "_" + name[1:]
    return _NAME_BAD.sub("_", name)


def label_name(attribute: str) -> str:
    """The Prometheus label an OTel attribute key becomes."""
    if attribute and attribute[0].isdigit():
        attribute = "_" + attribute[1:]
    return _LABEL_BAD.sub("_", attribute)


def label_value(value: Any) -> str:
    """The Prometheus label value an OTel attribute value becomes (non-strings as JSON)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def unit_suffix(unit: str) -> str:
    unit = _UNIT_ANNOTATION.sub("", unit)
    if unit in _UNITS:
        return _UNITS[unit]
    top, sep, bottom = unit.partition("/")
    if sep and _NAME_BAD.sub("_", bottom):
        top = _UNITS.get(_NAME_BAD.sub("_", top), _NAME_BAD.sub("_", top))
        per = _PER_UNITS.get(_NAME_BAD.sub("_", bottom), _NAME_BAD.sub("_", bottom))
        return f"{top}_per_{per}" if top else f"per_{per}"
    return _NAME_BAD.sub("_", unit).strip("_")


def family_name(name: str, kind: MetricKind, unit: str = "") -> str:
    """The metric family name (``# TYPE`` line) the exporter uses."""
    base = _sanitize_name(name)
    if kind == "counter" and base.endswith("_total"):
        base = base[: -len("_total")]
    suffix = unit_suffix(unit)
    if suffix and not base.endswith("_" + suffix):
        base += "_" + suffix
    return base


def sample_name(name: str, kind: MetricKind, unit: str = "", part: str = "") -> str:
    """The series to query: counters get ``_total``, histograms ``_bucket``/``_count``/``_sum``."""
    family = family_name(name, kind, unit)
    if kind == "counter":
        return family + "_total"
    if kind == "histogram":
        if part not in ("bucket", "count", "sum"):
            raise ValueError(f"histogram {name!r}: part must be bucket, count or sum, got {part!r}")
        return f"{family}_{part}"
    return family
