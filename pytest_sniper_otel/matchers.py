"""Value matchers for expected attributes: ``ANY``, callables, compiled regexes, approx.

A plain value matches by equality (so ``pytest.approx`` works as it does in ``==``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final


class _Any:
    """Matches any value that is present."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "ANY"


ANY: Final[Any] = _Any()


def matches(expected: Any, actual: Any) -> bool:
    """True when ``actual`` satisfies ``expected`` (a value, ANY, regex or predicate)."""
    if expected is ANY:
        return True
    if isinstance(expected, re.Pattern):
        return isinstance(actual, str) and expected.search(actual) is not None
    if callable(expected) and not isinstance(expected, type):
        try:
            return bool(expected(actual))
        except Exception:
            return False
    if isinstance(actual, tuple) and isinstance(expected, list):
        expected = tuple(expected)
    return bool(expected == actual)


def describe(expected: Any) -> str:
    """How an expected value reads in a failure message."""
    if isinstance(expected, re.Pattern):
        return f"re.compile({expected.pattern!r})"
    if callable(expected) and not isinstance(expected, type) and expected is not ANY:
        name = getattr(expected, "__name__", None) or type(expected).__name__
        return f"<predicate {name}>"
    return repr(expected)


Predicate = Callable[[Any], bool]
