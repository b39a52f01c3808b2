"""Label regular expressions as Prometheus reads them: RE2 syntax, anchored at both ends.

Prometheus compiles ``=~"re"`` as Go's ``regexp.Compile("^(?:" + re + ")$")`` (and parses
``re`` alone as well, so both must be valid). We compile the same texts with RE2 (the
google-re2 binding), whose syntax Go's package copies, so matching follows RE2 (``\\d`` is
ASCII only, ``[[:alpha:]]`` and ``\\pL`` are classes, ``a{,2}`` is literal text) and what
RE2 refuses (lookaround, backreferences, possessive or atomic groups, ``\\Z``) is refused
when the rule loads, with RE2's reason. Two constructs C++ RE2 accepts and Go 1.19
(Prometheus 2.42's) does not are refused here too: ``\\C`` and ``(?<name>...)``.
"""

from __future__ import annotations

import functools
from typing import Any

import re2

from ..errors import SpecError


class LabelRegexError(SpecError):
    """A label regular expression Prometheus would refuse to load."""


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print each refusal to stderr; we raise it instead


def _go_refusals(pattern: str) -> str | None:
    """What Go's regexp refuses in ``pattern`` that C++ RE2 accepts, or None."""
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "Q":  # literal text up to \E
                end = pattern.find("\\E", i + 2)
                i = len(pattern) if end < 0 else end + 2
                continue
            if nxt == "C":
                return "invalid escape sequence: \\C"
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            if pattern.startswith("[^]", i) or pattern.startswith("[]", i):
                i += 3 if pattern[i + 1] == "^" else 2  # a leading ] is a literal
                continue
        elif pattern.startswith("(?<", i):
            return "invalid or unsupported Perl syntax: (?<"
        i += 1
    return None


@functools.lru_cache(maxsize=1024)
def label_regex(pattern: str) -> Any:
    """The compiled matcher for ``=~"pattern"``; raises :class:`LabelRegexError` with RE2's
    (or Go's) reason when Prometheus would refuse the rule file."""
    refused = _go_refusals(pattern)
    if refused is not None:
        raise LabelRegexError(refused)
    try:
        re2.compile(pattern, _OPTIONS)  # Prometheus parses it alone too, to optimise it
        return re2.compile(f"^(?:{pattern})$", _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise LabelRegexError(str(reason)) from None
