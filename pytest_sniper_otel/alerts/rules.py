"""Alert rules as data, validated when loaded.

A rule is a name, an expression (see :mod:`.expr`), a ``for`` duration, a severity, labels
and annotations. :func:`load_rules` checks every rule against a metric catalogue (the
reference bot's by default) and raises :class:`RuleError` naming the rule at fault.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import SpecError, parse_duration
from ..catalog import METRICS, MetricSpec
from .expr import Expression, ExpressionError, check_against, parse_expression

SEVERITIES = ("info", "warning", "critical")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RESERVED_LABELS = ("alertname", "__name__")


class RuleError(SpecError):
    """An alert rule is malformed; the message starts with the rule's name."""


@dataclass(frozen=True)
class AlertRule:
    """One alert rule. ``expr`` is text; :attr:`expression` is its parsed form.

    ``for_`` is the time the condition must hold before the alert fires (seconds, or a
    duration such as ``"2m"`` when built through :func:`rule` or :func:`load_rules`).
    """

    name: str
    expr: str
    for_: float = 0.0
    severity: str = "warning"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    expression: Expression = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise RuleError(f"rule name {self.name!r} must match [A-Za-z_][A-Za-z0-9_]*")
        try:
            expression = parse_expression(self.expr)
        except ExpressionError as exc:
            raise RuleError(
                f"rule {self.name!r}: malformed expression {self.expr!r}: {exc}"
            ) from None
        object.__setattr__(self, "expression", expression)
        if not isinstance(self.for_, int | float) or self.for_ < 0:
            raise RuleError(f"rule {self.name!r}: 'for' must be a duration >= 0, got {self.for_!r}")
        if self.severity not in SEVERITIES:
            raise RuleError(
                f"rule {self.name!r}: severity {self.severity!r} is not one of "
                + ", ".join(SEVERITIES)
            )
        for key, value in {**self.labels, **self.annotations}.items():
            if not isinstance(key, str) or not _NAME.match(key) or not isinstance(value, str):
                raise RuleError(
                    f"rule {self.name!r}: label/annotation {key!r}={value!r} needs a "
                    "[A-Za-z_][A-Za-z0-9_]* name and a string value"
                )
        for key, value in self.annotations.items():
            if "{{" in value:
                # promtool compares annotations literally with what we expect
                raise RuleError(
                    f"rule {self.name!r}: annotation {key!r} uses a template; "
                    "annotations must be plain text"
                )
        for key in _RESERVED_LABELS:
            if key in self.labels:
                raise RuleError(f"rule {self.name!r}: label {key!r} is reserved")
        if "severity" in self.labels:
            raise RuleError(f"rule {self.name!r}: set severity with severity=, not in labels")
        object.__setattr__(self, "labels", dict(self.labels))
        object.__setattr__(self, "annotations", dict(self.annotations))

    @property
    def all_labels(self) -> dict[str, str]:
        """The labels an alert of this rule carries (severity included)."""
        return {"severity": self.severity, **self.labels}

    def check(self, catalog: Mapping[str, MetricSpec]) -> None:
        try:
            check_against(self.expression, catalog)
        except ExpressionError as exc:
            raise RuleError(f"rule {self.name!r}: {exc}") from None


def rule(
    name: str,
    expr: str,
    *,
    for_: str | float = 0.0,
    severity: str = "warning",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> AlertRule:
    """Build a rule, reading ``for_`` as a duration (``"2m"``) or seconds."""
    try:
        seconds = parse_duration(for_, what="'for'")
    except SpecError as exc:
        raise RuleError(f"rule {name!r}: {exc}") from None
    return AlertRule(name, expr, seconds, severity, dict(labels or {}), dict(annotations or {}))


class RuleSet(Sequence[AlertRule]):
    """Validated rules with unique names, checked against one catalogue."""

    def __init__(
        self, rules: Iterable[AlertRule], *, catalog: Mapping[str, MetricSpec] | None = None
    ) -> None:
        self.catalog: Mapping[str, MetricSpec] = METRICS if catalog is None else catalog
        self._rules: list[AlertRule] = []
        seen: set[str] = set()
        for r in rules:
            if not isinstance(r, AlertRule):
                raise RuleError(f"expected an AlertRule, got {r!r}")
            if r.name in seen:
                raise RuleError(f"rule {r.name!r} is defined twice")
            r.check(self.catalog)
            seen.add(r.name)
            self._rules.append(r)

    def __getitem__(self, index: int) -> AlertRule:  # type: ignore[override]
        return self._rules[index]

    def __len__(self) -> int:
        return len(self._rules)

    def __iter__(self) -> Iterator[AlertRule]:
        return iter(self._rules)

    def names(self) -> list[str]:
        return [r.name for r in self._rules]

    def get(self, name: str) -> AlertRule:
        for r in self._rules:
            if r.name == name:
                return r
        raise KeyError(f"no alert rule {name!r}; rules: {', '.join(self.names())}")

    def __add__(self, other: Iterable[AlertRule]) -> RuleSet:
        return RuleSet([*self._rules, *other], catalog=self.catalog)

    def __repr__(self) -> str:
        return f"<RuleSet {', '.join(self.names())}>"


_FIELDS = {"name", "expr", "for", "severity", "labels", "annotations"}


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "expr": (str,), "for": (str, int, float), "severity": (str,), "labels": (dict,),
    "annotations": (dict,),
}


def rule_from_dict(data: Mapping[str, Any]) -> AlertRule:
    """A rule from plain data: ``{"name", "expr", "for", "severity", "labels", "annotations"}``."""
    if not isinstance(data, Mapping):
        raise RuleError(f"a rule is an object with 'name' and 'expr', got {type(data).__name__}")
    name = data.get("name", data.get("alert"))
    if not isinstance(name, str):
        raise RuleError(f"a rule needs a 'name' string: {dict(data)!r}")
    unknown = set(data) - _FIELDS - {"alert"}
    if unknown:
        raise RuleError(f"rule {name!r}: unknown field(s) {', '.join(sorted(unknown))}")
    if "expr" not in data:
        raise RuleError(f"rule {name!r}: missing 'expr'")
    for key, types in _FIELD_TYPES.items():
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            names = {"str": "a string", "int": "a number", "float": "a number",
                     "dict": "an object"}
            wanted = " or ".join(dict.fromkeys(names[t.__name__] for t in types))
            raise RuleError(f"rule {name!r}: field {key!r} must be {wanted}, "
                            f"got {type(value).__name__} {value!r}")
    return rule(
        name,
        data["expr"],
        for_=data.get("for", 0.0),
        severity=data.get("severity", "warning"),
        labels=data.get("labels"),
        annotations=data.get("annotations"),
    )


def load_rules(
    source: Iterable[AlertRule | Mapping[str, Any]] | str | Path,
    *,
    catalog: Mapping[str, MetricSpec] | None = None,
) -> RuleSet:
    """Rules from objects, dicts, or a JSON file (a list of rule dicts, or ``{"rules": [...]}``).

    A file's errors name the file and the rule's index (``rules.json: rules[2]: ...``).
    """
    if not isinstance(source, str | Path):
        rules = [r if isinstance(r, AlertRule) else rule_from_dict(r) for r in source]
        return RuleSet(rules, catalog=catalog)
    path = Path(source)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise RuleError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise RuleError(f"{path}: not valid JSON: {exc}") from None
    except RecursionError:
        raise RuleError(f"{path}: not valid JSON: nested too deeply") from None
    items = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise RuleError(f'{path}: expected a list of rules or {{"rules": [...]}}, '
                        f"got {type(items).__name__}")
    parsed = []
    for i, item in enumerate(items):
        try:
            parsed.append(rule_from_dict(item))
            parsed[-1].check(METRICS if catalog is None else catalog)
        except RuleError as exc:
            raise RuleError(f"{path}: rules[{i}]: {exc}") from None
    try:
        return RuleSet(parsed, catalog=catalog)
    except RuleError as exc:
        raise RuleError(f"{path}: {exc}") from None
