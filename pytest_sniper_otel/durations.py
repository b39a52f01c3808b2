"""The one duration grammar of the package: alert rules, fault schedules, scenario phases and
the command lines all read durations with :func:`parse_duration`.

A duration is a number of seconds (``90``, ``1.5``, ``"600"``) or Prometheus-style units run
together, largest first or not: ``"250ms"``, ``"90s"``, ``"1.5m"``, ``"1m30s"``, ``"2h"``,
``"1d"``. A leading ``-`` or ``+`` is kept; whether a negative or zero duration makes sense
is for the caller to say.
"""

from __future__ import annotations

import math
import re

from .errors import SpecError, shown

UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: str | float, *, what: str = "duration") -> float:
    """Seconds in ``value``; a :class:`SpecError` naming ``what`` when it is not a duration."""
    wrong = f"{what} must be a number of seconds or a string like '2m', got"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(f"{wrong} {shown(value)}")
    if isinstance(value, str):
        seconds = _parse_text(value.strip())
        if seconds is None:
            raise SpecError(f"{wrong} {value!r} (units ms, s, m, h, d: 250ms, 90s, 1m30s)")
    else:
        seconds = float(value)
    if not math.isfinite(seconds):
        raise SpecError(f"{what} must be a finite number of seconds, got {value!r}")
    return seconds


def _parse_text(text: str) -> float | None:
    if _NUMBER.fullmatch(text):
        return float(text)
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    pos, seconds = 0, 0.0
    for part in _PART.finditer(body):
        if part.start() != pos:
            return None
        seconds += float(part.group(1)) * UNIT_SECONDS[part.group(2)]
        pos = part.end()
    if not body or pos != len(body):
        return None
    return sign * seconds
