"""Alert expressions: a small PromQL-shaped language over the bot's OpenTelemetry metric names.

Grammar (whitespace is free; durations are ``30s``, ``5m``, ``1h``, ``1h30m``)::

    expr     := clause ( "and" clause )*                    all must hold (e.g. a traffic floor)
    clause   := "absent(" selector ")"                      absence
              | value CMP number                            CMP: > >= < <= == !=
    value    := AGG "(" selector ")"                        threshold, AGG: max min sum avg
              | "quantile(" q "," selector "[" window "]" ")"
              | group ( "/" group )?                        rate, or ratio of rates
    group    := term | "(" term ( "+" term )* ")"
    term     := ("rate" | "increase") "(" selector "[" window "]" ")"
    selector := metric ( "{" label OP "value" ( "," label OP "value" )* "}" )?   OP: = != =~ !~

Every value is one number (or nothing): ``rate``/``increase`` are summed over all series
the selector matches, ``quantile`` merges the buckets of all matching series. On a histogram
``rate``/``increase`` count observations. The exporter renders the same meaning in PromQL
(``sum(rate(x_total[5m]))``, ``histogram_quantile(q, sum by (le) (rate(x_bucket[w])))``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .. import SpecError, parse_duration
from ..catalog import MetricSpec
from .regex import LabelRegexError, label_regex

Comparison = Literal[">", ">=", "<", "<=", "==", "!="]
MatchOp = Literal["=", "!=", "=~", "!~"]
Aggregation = Literal["max", "min", "sum", "avg"]
RateFunction = Literal["rate", "increase"]

COMPARISONS: dict[str, Comparison] = {o: o for o in (">=", "<=", "==", "!=", ">", "<")}
AGGREGATIONS: tuple[Aggregation, ...] = ("max", "min", "sum", "avg")


class ExpressionError(SpecError):
    """An alert expression does not parse or does not fit the metric catalogue."""


# durations -------------------------------------------------------------------------
def format_duration(seconds: float) -> str:
    """Prometheus duration text for ``seconds`` (``300 -> "5m"``, ``90 -> "1m30s"``)."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


# syntax tree -------------------------------------------------------------------------
@dataclass(frozen=True)
class Matcher:
    label: str
    op: MatchOp
    value: str

    def matches(self, actual: str | None) -> bool:
        have = "" if actual is None else actual  # a missing label matches "" as in PromQL
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = label_regex(self.value).search(have) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...] = ()

    def __str__(self) -> str:
        if not self.matchers:
            return self.metric
        inner = ", ".join(f'{m.label}{m.op}"{m.value}"' for m in self.matchers)
        return f"{self.metric}{{{inner}}}"


@dataclass(frozen=True)
class Aggregate:
    """``max(gauge{...})``: one number from the current values of matching series."""

    func: Aggregation
    selector: Selector


@dataclass(frozen=True)
class RateTerm:
    """``rate(x[5m])`` / ``increase(x[5m])`` summed over matching series."""

    func: RateFunction
    selector: Selector
    window: float


@dataclass(frozen=True)
class RateSum:
    terms: tuple[RateTerm, ...]


@dataclass(frozen=True)
class Ratio:
    numerator: RateSum
    denominator: RateSum | None = None  # None: the value is the numerator alone


@dataclass(frozen=True)
class Quantile:
    q: float
    selector: Selector
    window: float


Value = Aggregate | Ratio | Quantile


@dataclass(frozen=True)
class Condition:
    value: Value
    op: Comparison
    threshold: float


@dataclass(frozen=True)
class Absent:
    selector: Selector


Clause = Condition | Absent


@dataclass(frozen=True)
class AllOf:
    """``a and b``: holds when every clause holds; its value is the first clause's."""

    clauses: tuple[Clause, ...]


Expression = Condition | Absent | AllOf


def clauses(expr: Expression) -> tuple[Clause, ...]:
    return expr.clauses if isinstance(expr, AllOf) else (expr,)


def selectors(expr: Expression) -> list[Selector]:
    out: list[Selector] = []
    for c in clauses(expr):
        if isinstance(c, Absent):
            out.append(c.selector)
        elif isinstance(c.value, Aggregate | Quantile):
            out.append(c.value.selector)
        else:
            out += [t.selector for t in rate_terms(c.value)]
    return out


def rate_terms(ratio: Ratio) -> list[RateTerm]:
    sums = [ratio.numerator] + ([ratio.denominator] if ratio.denominator else [])
    return [t for s in sums for t in s.terms]


def windows(expr: Expression) -> list[float]:
    out: list[float] = []
    for c in clauses(expr):
        if isinstance(c, Condition) and isinstance(c.value, Quantile):
            out.append(c.value.window)
        elif isinstance(c, Condition) and isinstance(c.value, Ratio):
            out += [t.window for t in rate_terms(c.value)]
    return out


# parsing -----------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<duration>-?\d+(?:\.\d+)?(?:ms|s|m|h|d)(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))*)(?![\w.])
      | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?[Ii]nf|NaN)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op>=~|!~|>=|<=|==|!=|[><=(){}\[\],/+])
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            raise ExpressionError(f"unexpected character {text[start]!r} at column {start + 1}")
        kind = m.lastgroup or "op"
        toks.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    toks.append(_Tok("end", "", len(text)))
    return toks


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def fail(self, wanted: str) -> ExpressionError:
        t = self.tok
        seen = "end of expression" if t.kind == "end" else repr(t.text)
        return ExpressionError(f"expected {wanted} at column {t.pos + 1}, found {seen}")

    def take(self, text: str) -> None:
        if self.tok.text != text or self.tok.kind == "string":
            raise self.fail(repr(text))
        self.i += 1

    def peek(self, text: str, ahead: int = 0) -> bool:
        t = self.toks[min(self.i + ahead, len(self.toks) - 1)]
        return t.text == text and t.kind in ("op", "ident")

    def parse(self) -> Expression:
        found = [self.clause()]
        while self.tok.kind == "ident" and self.tok.text == "and":
            self.i += 1
            found.append(self.clause())
        if self.tok.kind != "end":
            raise self.fail("'and' or end of expression")
        return found[0] if len(found) == 1 else AllOf(tuple(found))

    def clause(self) -> Clause:
        if self.peek("absent"):
            self.i += 1
            self.take("(")
            sel = self.selector()
            self.take(")")
            return Absent(sel)
        value = self.value()
        if self.tok.text not in COMPARISONS:
            raise self.fail("a comparison (> >= < <= == !=) and a threshold")
        op = COMPARISONS[self.tok.text]
        self.i += 1
        return Condition(value, op, self.number())

    def value(self) -> Value:
        t = self.tok
        if t.kind == "end":
            raise self.fail("an expression")
        if t.kind == "ident" and t.text in AGGREGATIONS and self.peek("(", 1):
            self.i += 2
            sel = self.selector()
            self.take(")")
            return Aggregate(t.text, sel)
        if t.kind == "ident" and t.text == "quantile":
            self.i += 1
            self.take("(")
            q = self.number()
            if not 0.0 <= q <= 1.0:
                raise ExpressionError(f"quantile must be within [0, 1], got {q:g}")
            self.take(",")
            sel = self.selector()
            window = self.window()
            self.take(")")
            return Quantile(q, sel, window)
        if t.kind == "ident" and t.text not in ("rate", "increase") and not self.peek("(", 1):
            raise ExpressionError(
                f"bare metric {t.text!r} at column {t.pos + 1}: wrap it as max(...), min(...), "
                "sum(...), avg(...), rate(...[w]), increase(...[w]) or quantile(q, ...[w])"
            )
        num = self.group()
        if self.peek("+"):
            raise ExpressionError(
                f"'+' at column {self.tok.pos + 1} outside parentheses: write (a + b) / (c + d)"
            )
        if self.peek("/"):
            self.i += 1
            return Ratio(num, self.group())
        return Ratio(num)

    def group(self) -> RateSum:
        if self.peek("("):
            self.i += 1
            terms = [self.term()]
            while self.peek("+"):
                self.i += 1
                terms.append(self.term())
            self.take(")")
            return RateSum(tuple(terms))
        return RateSum((self.term(),))

    def term(self) -> RateTerm:
        t = self.tok
        if t.kind != "ident" or t.text not in ("rate", "increase"):
            raise self.fail("rate(...) or increase(...)")
        self.i += 1
        self.take("(")
        sel = self.selector()
        window = self.window()
        self.take(")")
        return RateTerm(t.text, sel, window)  # type: ignore[arg-type]

    def selector(self) -> Selector:
        t = self.tok
        if t.kind != "ident":
            raise self.fail("a metric name")
        self.i += 1
        matchers: list[Matcher] = []
        if self.peek("{"):
            self.i += 1
            while not self.peek("}"):
                label = self.tok
                if label.kind != "ident":
                    raise self.fail("a label name")
                self.i += 1
                op = self.tok.text
                if op not in ("=", "!=", "=~", "!~"):
                    raise self.fail("=, !=, =~ or !~")
                self.i += 1
                if self.tok.kind != "string":
                    raise self.fail('a quoted label value "..."')
                value = self.tok.text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
                if op in ("=~", "!~"):
                    try:
                        label_regex(value)
                    except LabelRegexError as exc:
                        raise ExpressionError(
                            f"regular expression {value!r} would not load in Prometheus: {exc}"
                        ) from None
                matchers.append(Matcher(label.text, op, value))  # type: ignore[arg-type]
                self.i += 1
                if not self.peek("}"):
                    self.take(",")
            self.i += 1
        return Selector(t.text, tuple(matchers))

    def window(self) -> float:
        self.take("[")
        t = self.tok
        if t.kind not in ("duration", "number"):
            raise self.fail("a window such as 5m")
        if t.kind == "number":
            raise ExpressionError(f"window {t.text!r} needs a unit, e.g. {t.text}s or {t.text}m")
        seconds = parse_duration(t.text)
        if seconds <= 0:
            raise ExpressionError(f"window must be positive, got {t.text}")
        self.i += 1
        self.take("]")
        return seconds

    def number(self) -> float:
        t = self.tok
        if t.kind != "number":
            raise self.fail("a number")
        value = float(t.text)
        if math.isnan(value):
            # every comparison with NaN is false (!= always true): a rule that can never fire
            raise ExpressionError(f"NaN at column {t.pos + 1} compares false with every value; "
                                  "use a number")
        self.i += 1
        return value


def parse_expression(text: str) -> Expression:
    """Parse ``text``; raises :class:`ExpressionError` saying what was expected where."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    return _Parser(text).parse()


# checking against a catalogue --------------------------------------------------------
def check_against(expr: Expression, catalog: Mapping[str, MetricSpec]) -> None:
    """Every metric exists with a kind that fits its use; every label is one it carries."""
    for sel in selectors(expr):
        spec = catalog.get(sel.metric)
        if spec is None:
            raise ExpressionError(
                f"metric {sel.metric!r} is not emitted by the bot (not in the catalogue)"
            )
        for m in sel.matchers:
            if m.label not in spec.attributes:
                have = ", ".join(spec.attributes) or "none"
                raise ExpressionError(
                    f"metric {sel.metric!r} has no attribute {m.label!r} (attributes: {have})"
                )
    for c in clauses(expr):
        if isinstance(c, Condition):
            _check_kinds(c.value, catalog)


def _check_kinds(v: Value, catalog: Mapping[str, MetricSpec]) -> None:
    if isinstance(v, Aggregate) and catalog[v.selector.metric].kind == "histogram":
        raise ExpressionError(
            f"{v.func}({v.selector.metric}): a histogram has no single value; "
            "use quantile(q, m[w]) or rate(m[w])"
        )
    if isinstance(v, Quantile) and catalog[v.selector.metric].kind != "histogram":
        kind = catalog[v.selector.metric].kind
        raise ExpressionError(f"quantile() needs a histogram, {v.selector.metric!r} is a {kind}")
    if isinstance(v, Ratio):
        for term in rate_terms(v):
            kind = catalog[term.selector.metric].kind
            if kind not in ("counter", "histogram"):
                raise ExpressionError(
                    f"{term.func}() needs a counter or histogram, "
                    f"{term.selector.metric!r} is a {kind}"
                )
