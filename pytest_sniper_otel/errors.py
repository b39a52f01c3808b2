"""Exceptions raised by pytest-sniper-otel. Each message names the problem and what was seen."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any


def shown(value: Any) -> str:
    """A wrong argument as an error message shows it: its type and value (``str '120'``)."""
    return f"{type(value).__name__} {value!r}"


def did_you_mean(
    word: object,
    choices: Iterable[str],
    *,
    template: str = "; {}",
    n: int = 1,
    show: Callable[[str], str] = repr,
) -> str:
    """``template`` around "did you mean 'x'?" for the ``n`` choices closest to ``word``
    (``"; did you mean 'side'?"``), or ``""`` when none is close: the package's one way to
    suggest a name in an error message."""
    close = difflib.get_close_matches(str(word), list(choices), n=n)
    if not close:
        return ""
    return template.format(f"did you mean {', '.join(show(c) for c in close)}?")


class SniperOtelError(Exception):
    """Base class for every error this package raises on purpose."""


class SpecError(SniperOtelError, TypeError):
    """An expectation (span spec, fault, rule, scenario...) is malformed."""


class MetricNotFound(SniperOtelError, LookupError):
    """A metric name that was never recorded in this test."""


class MetricKindError(SniperOtelError, TypeError):
    """A view asked for something its instrument kind does not have (``.value`` of a histogram)."""


class CaptureUnavailable(SniperOtelError, RuntimeError):
    """The plugin cannot capture a signal, for example a foreign MeterProvider owns the global."""


class SniperOtelWarning(UserWarning):
    """The capture changed under the test's feet (a reset provider set back, a provider that
    drops spans): captured telemetry may differ from what the code emitted. Also a run set up
    so that tests may interfere (real-Redis tests spread over xdist workers)."""
