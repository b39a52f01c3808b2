"""What one test captured: spans, metrics and logs, with assertion helpers.

This is the object the ``telemetry`` fixture yields (and ``SessionTelemetry.capture()``
outside pytest). Every ``assert_*`` helper raises ``AssertionError`` with a message that
shows what was captured.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import SpecError, shown
from .logs import LogRecordView, view_of
from .metrics import (
    MetricAccumulator,
    MetricsSnapshot,
    MetricView,
    format_attributes,
)
from .render import Masker, render_captured, render_mismatch, render_spans, short_path
from .spans import (
    Forest,
    SpanNode,
    SpanSpec,
    match_forest,
    one_line,
    span,
)

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan, Span
    from typing_extensions import Unpack

    from .capture import SessionTelemetry
    from .spans import SpanOptions


_NOT_STARTED_HERE = 1 << 62
# A test's span trees are built when first asked for (most tests never ask); from this many
# ended spans on, as spans end, so the first assertion on a large capture stays cheap.
_TREES_AS_SPANS_END_FROM = 256
_FOREST_LOCK = threading.Lock()


def _wall_clock_ns() -> int:
    # Looked up per call: a clock frozen after the window opened is followed.
    return time.time_ns()


class Telemetry:
    """Spans, metrics and logs recorded during one capture window (one test)."""

    # One per test: slots, and the parts most tests never use (the secrets' masker, the
    # metric series) made on first use.
    __slots__ = ("_accumulator", "_clock", "_closed", "_color", "_forest", "_logs",
                 "_masker", "_open", "_session", "_spans", "_start_seq", "_verbose")

    def __init__(
        self,
        session: SessionTelemetry,
        *,
        color: bool = False,
        clock: Callable[[], int] | None = None,
        verbose: bool = False,
    ) -> None:
        self._session = session
        self._color = color
        self._verbose = verbose  # -vv: full trees in failures and report sections
        # The values given to assert_no_secrets, hidden in all we print (see _mask).
        self._masker: Masker | None = None
        self._clock = clock or _wall_clock_ns
        self._spans: list[ReadableSpan] = []
        self._start_seq: dict[int, int] = {}
        self._open: dict[int, str] = {}  # started in this window and not ended (yet)
        self._logs: list[Any] = []
        self._accumulator: MetricAccumulator | None = None  # see _metrics
        self._forest: Forest | None = None  # see _trees
        self._closed = False

    @property
    def _mask(self) -> Masker:
        masker = self._masker
        if masker is None:
            masker = self._masker = Masker()
        return masker

    @property
    def _metrics(self) -> MetricAccumulator:
        # Filled by metric collections (windows opening and closing, metrics_snapshot), not
        # by the span and log routing that other threads run.
        accumulator = self._accumulator
        if accumulator is None:
            accumulator = self._accumulator = MetricAccumulator()
        return accumulator

    # routing (called by the session's processors, from any thread) --------------------
    def _span_started(self, s: Span, seq: int, span_id: int) -> None:
        self._start_seq[span_id] = seq
        self._open[span_id] = s.name

    def _span_ended(self, s: ReadableSpan, span_id: int) -> None:
        spans = self._spans
        spans.append(s)
        self._open.pop(span_id, None)
        forest = self._forest
        if forest is not None:
            index = len(spans) - 1  # s, unless another thread's span ended just after it
            seq = self._start_seq.get(span_id, _NOT_STARTED_HERE + index)
            if spans[index] is not s or not forest.add_last(spans, index, seq, span_id):
                forest.add_ended(spans, self._start_seq, _NOT_STARTED_HERE)
        elif len(spans) >= _TREES_AS_SPANS_END_FROM:
            self._trees()

    def _trees(self) -> Forest:
        """The span trees, up to date with every span ended so far."""
        forest = self._forest
        if forest is None:
            with _FOREST_LOCK:  # spans end in any thread: one forest per window
                forest = self._forest
                if forest is None:
                    forest = self._forest = Forest()
        # Spans started before this window opened sort after those started in it.
        forest.add_ended(self._spans, self._start_seq, _NOT_STARTED_HERE)
        return forest

    def _log_emitted(self, record: Any) -> None:
        self._logs.append(record)

    def _discard_pending_metrics(self) -> None:
        self._session.collect_metrics()

    def _collect_pending_metrics(self) -> None:
        if self._session.reader is not None:
            self._metrics.add_metrics_data(self._session.collect_metrics())

    # spans -----------------------------------------------------------------------------
    @property
    def spans(self) -> list[ReadableSpan]:
        """This test's finished spans, in the order they ended."""
        __tracebackhide__ = True
        self._session.require("traces")
        self._session.warn_if_dropping()
        return list(self._spans)

    @property
    def roots(self) -> list[SpanNode]:
        """Span trees: spans whose parent was not captured, ordered by start."""
        __tracebackhide__ = True
        self._session.require("traces")
        self._session.warn_if_dropping()
        return self._trees().roots()

    @property
    def open_spans(self) -> list[str]:
        """Names of spans started in this test that have not ended (so were not captured),
        in start order. A span that is never ended is never exported either."""
        return list(dict(self._open).values())

    def find_spans(self, name: Any, **options: Unpack[SpanOptions]) -> list[SpanNode]:
        """Every captured span (at any depth) matching ``span(name, **options)``."""
        __tracebackhide__ = True
        spec = span(name, **options)
        from .spans import match

        return [n for root in self.roots for n in root.walk() if match(spec, n) is None]

    def assert_span_tree(
        self,
        expected: SpanSpec | Sequence[SpanSpec],
        *,
        any_order: bool = False,
        exact: bool = False,
    ) -> None:
        """Assert the captured trees contain ``expected``.

        One spec must match one of the root spans; a list must match roots in start order
        (``any_order=True`` relaxes that). ``exact=True``: no other root spans.
        """
        __tracebackhide__ = True
        specs = _as_specs(expected)
        for flag, value in (("any_order", any_order), ("exact", exact)):
            if not isinstance(value, bool):
                raise SpecError(
                    f"assert_span_tree({flag}): {flag} must be True or False, got {shown(value)}"
                )
        if isinstance(expected, SpanSpec) and not exact:
            any_order = True
        roots = self.roots
        mismatch = match_forest(specs, roots, any_order=any_order, exact=exact)
        if mismatch is not None:
            text = render_mismatch(
                mismatch, specs, roots, color=self._color, verbose=self._verbose, mask=self._mask
            )
            raise AssertionError(text + self._mask(self._open_note()))

    def _open_note(self) -> str:
        """A hint for failures: spans that were started but not ended are not captured, nor
        are the spans a sampling provider dropped."""
        names = self.open_spans
        dropped = self._session.traces_dropped
        note = f"\n\nnot captured: {dropped}, so spans it did not record" if dropped else ""
        if not names:
            return note
        shown = ", ".join(one_line(repr(n)) for n in names[:10])
        shown += ", ..." if len(names) > 10 else ""
        return (
            f"\n\nnot captured: {len(names)} span{'s' if len(names) != 1 else ''} started in "
            f"this test never ended: {shown}"
        ) + note

    def assert_no_span(self, name: Any, **options: Unpack[SpanOptions]) -> None:
        """Assert that no captured span, at any depth, matches ``span(name, **options)``."""
        __tracebackhide__ = True
        found = self.find_spans(name, **options)
        if found:
            times: dict[str, int] = {}
            for n in found:
                where = short_path(n, self._mask)
                times[where] = times.get(where, 0) + 1
            paths = ", ".join(f"{w} x {c}" if c > 1 else w for w, c in list(times.items())[:5])
            more = f", ... {len(times) - 5} more paths" if len(times) > 5 else ""
            label = self._mask(one_line(span(name, **options).label()))
            lines = [
                f"expected no span matching {label}, found {len(found)}: {paths}{more}",
                "",
                *render_captured(
                    self.roots,
                    found,
                    "them",
                    color=self._color,
                    verbose=self._verbose,
                    mask=self._mask,
                ),
            ]
            raise AssertionError("\n".join(lines))

    # metrics ---------------------------------------------------------------------------
    def metrics_snapshot(self) -> MetricsSnapshot:
        """Every metric series recorded in this test so far (cumulative since its start)."""
        __tracebackhide__ = True
        self._session.require("metrics")
        if self._owns_reader():
            self._collect_pending_metrics()
        return self._metrics.snapshot(self._clock())

    def _owns_reader(self) -> bool:
        # After the window closed, what the reader holds is still this test's only while no
        # other window has opened; otherwise it belongs to (or was discarded for) another.
        session = self._session
        return not self._closed or (session.current is None and session.last_window is self)

    def metric(
        self,
        name: str,
        attributes: Mapping[str, Any] | None = None,
        *,
        allow_empty: bool = False,
    ) -> MetricView:
        """A view of ``name``'s series whose attributes include ``attributes``.

        An attribute value that no series of ``name`` has is a :class:`SpecError` (a typo
        would read as a legitimate zero); ``allow_empty=True`` accepts it and gives an empty
        view, whose ``.value`` and ``.count`` are 0."""
        __tracebackhide__ = True
        if not isinstance(name, str):
            raise SpecError(f"metric(name): name must be a str, got {shown(name)}")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise SpecError(
                f"metric({name!r}, attributes): attributes must be a mapping, "
                f"got {shown(attributes)}"
            )
        if not isinstance(allow_empty, bool):
            raise SpecError(
                f"metric({name!r}): allow_empty must be True or False, got {shown(allow_empty)}"
            )
        return self.metrics_snapshot().view(name, attributes, allow_empty=allow_empty)

    def metric_names(self) -> list[str]:
        __tracebackhide__ = True
        return self.metrics_snapshot().names()

    def assert_cardinality(self, metric: str, *, max_series: int) -> None:
        """Assert ``metric`` has at most ``max_series`` distinct attribute sets."""
        __tracebackhide__ = True
        if not isinstance(metric, str):
            raise SpecError(
                f"assert_cardinality(metric): metric must be a str, got {shown(metric)}"
            )
        if not isinstance(max_series, int) or isinstance(max_series, bool) or max_series < 0:
            raise SpecError(
                f"assert_cardinality({metric!r}, max_series): max_series must be an int >= 0, "
                f"got {shown(max_series)}"
            )
        view = self.metric(metric)
        n = len(view.points)
        if n > max_series:
            distinct: dict[str, set[Any]] = {}
            for p in view.points:
                for k, v in p.attributes.items():
                    distinct.setdefault(k, set()).add(repr(v))
            worst = sorted(distinct.items(), key=lambda kv: -len(kv[1]))
            detail = ", ".join(
                f"{k}: {len(vs)} value{'' if len(vs) == 1 else 's'}" for k, vs in worst
            )
            raise AssertionError(
                self._mask(
                    f"metric {metric!r} has {n} series, more than max_series={max_series}\n"
                    f"distinct values per attribute: {detail}\n"
                    f"first series: "
                    + "; ".join(format_attributes(p.attributes) for p in view.points[:5])
                )
            )

    # logs ------------------------------------------------------------------------------
    @property
    def logs(self) -> list[LogRecordView]:
        """This test's OTel log records (stdlib logging is bridged), in emission order."""
        __tracebackhide__ = True
        self._session.require("logs")
        return [view_of(r) for r in list(self._logs)]

    def assert_logs_correlated(
        self,
        *,
        min_severity: str = "TRACE",
        allow_empty: bool = False,
        loggers: Sequence[str] | None = None,
        ignore_loggers: Sequence[str] = (),
    ) -> None:
        """Assert every log record (at ``min_severity`` or above) carries the trace and
        span id of a span captured in this test.

        ``loggers``: check only records of these loggers (and their children: "httpx"
        covers "httpx.client"); ``ignore_loggers``: skip those of these loggers."""
        __tracebackhide__ = True
        threshold = _severity_number(min_severity)
        only = _logger_names("loggers", loggers) if loggers is not None else None
        ignored = _logger_names("ignore_loggers", ignore_loggers)
        logs = self.logs
        records = [
            r
            for r in logs
            if r.severity_number >= threshold
            and (only is None or _from_logger(r.logger_name, only))
            and not _from_logger(r.logger_name, ignored)
        ]
        if not records:
            if allow_empty:
                return
            chosen = ""
            if only is not None or ignored:
                seen = sorted({r.logger_name for r in logs})
                chosen = (
                    f" from the chosen loggers (captured loggers: {', '.join(seen) or 'none'})"
                )
            raise AssertionError(
                f"no log records at {min_severity} or above were captured{chosen}, so "
                "correlation cannot be checked (pass allow_empty=True if that is expected)"
            )
        known = {
            (s.context.trace_id, s.context.span_id) for s in self._spans if s.context is not None
        }
        bad = [r for r in records if (r.trace_id, r.span_id) not in known]
        if bad:
            lines = [
                f"{len(bad)} of {len(records)} log records are not correlated with a captured span:"
            ]
            open_spans = dict(self._open)
            for r in bad[:20]:
                if not r.correlated:
                    why = "no active span"
                elif r.span_id in open_spans:
                    why = (
                        f"inside span {open_spans[r.span_id]!r}, which is still open "
                        "(a span is captured when it ends)"
                    )
                elif r.span_id in self._session.harness_spans:
                    why = (
                        f"only inside {self._session.harness_spans[r.span_id]}'s span of the "
                        "test itself, in no span of the code under test"
                    )
                else:
                    why = "span not captured in this test"
                lines.append(f"  {one_line(r.describe())}  <- {one_line(why)}")
            if len(bad) > 20:
                lines.append(f"  ... {len(bad) - 20} more")
            raise AssertionError(self._mask("\n".join(lines)))

    # security ------------------------------------------------------------------------
    def assert_no_secrets(self, *secrets: str | re.Pattern[str]) -> None:
        """Assert none of ``secrets`` (strings or regexes) appears in span names, attributes,
        events, status, log bodies and attributes, or metric attributes.

        From this call on, everything the plugin prints for this test (failure messages,
        the "Captured telemetry" section) shows them as ``***``."""
        __tracebackhide__ = True
        if not secrets:
            raise SpecError("assert_no_secrets() needs at least one value or pattern to look for")
        patterns: list[tuple[str, re.Pattern[str]]] = []
        for i, s in enumerate(secrets):
            if isinstance(s, re.Pattern) and isinstance(s.pattern, str):
                patterns.append((f"pattern #{i + 1} {s.pattern!r}", s))
            elif isinstance(s, str) and s:
                patterns.append((f"secret #{i + 1}", re.compile(re.escape(s))))
            else:
                raise SpecError(
                    f"assert_no_secrets(): secret #{i + 1} must be a non-empty str or a "
                    f"compiled str regex, got {type(s).__name__}"
                )
        for s in secrets:
            self._mask.add(s)
        leaks: list[str] = []
        for where, text in self._texts():
            for label, pattern in patterns:
                if pattern.search(text):
                    leaks.append(f"  {label} in {self._mask(one_line(where))}")
        if leaks:
            raise AssertionError(
                f"{len(leaks)} secret leak(s) in telemetry:\n" + "\n".join(leaks[:30])
            )

    def _texts(self) -> Iterator[tuple[str, str]]:
        for s in self._spans:
            yield f"span {s.name!r} name", s.name
            for k, v in (s.attributes or {}).items():
                yield f"span {s.name!r} attribute {k!r}", f"{k}={v!s}"
            for e in s.events:
                yield f"span {s.name!r} event {e.name!r}", e.name
                for k, v in (e.attributes or {}).items():
                    yield f"span {s.name!r} event {e.name!r} attribute {k!r}", f"{k}={v!s}"
            if s.status.description:
                yield f"span {s.name!r} status", s.status.description
        for r in self.logs:
            yield f"log {r.logger_name!r} body", str(r.body)
            for k, v in r.attributes.items():
                yield f"log {r.logger_name!r} attribute {k!r}", f"{k}={v}"
        if self._session.reader is not None:
            for p in self.metrics_snapshot():
                for k, v in p.attributes.items():
                    yield f"metric {p.name!r} attribute {k!r}", f"{k}={v}"

    @property
    def redacts(self) -> bool:
        """Whether :meth:`redact` hides anything (``assert_no_secrets`` was called)."""
        return self._masker is not None and bool(self._masker)

    def redact(self, text: str) -> str:
        """``text`` with every value given to ``assert_no_secrets`` so far replaced by ``***``."""
        return self._mask(text)

    # housekeeping --------------------------------------------------------------------
    def clear(self) -> None:
        """Forget everything captured so far in this test."""
        self._spans.clear()
        self._start_seq.clear()
        self._open.clear()
        self._logs.clear()
        self._metrics.clear()
        self._forest = None
        if self._owns_reader():
            self._discard_pending_metrics()

    def render(self) -> str:
        """A text summary: span trees, log records and metric series (bounded unless the
        window is verbose, as under ``-vv``), with the secrets asserted absent masked."""
        parts: list[str] = []
        mask = self._mask
        if self._session.traces_problem is None:
            parts += render_spans(self.roots, verbose=self._verbose, mask=mask)
            if self._open:
                never = one_line(", ".join(self.open_spans))
                parts.append(f"   started, never ended: {mask(never)}")
        if self._session.logs_problem is None:
            logs = self.logs
            shown = logs if self._verbose else logs[:50]
            parts += ["", f"logs ({len(logs)}):"]
            parts += [f"   {mask(one_line(r.describe()))}" for r in shown]
            if len(logs) > len(shown):
                parts.append(f"   ... {len(logs) - len(shown)} more (-vv shows all)")
        if self._session.metrics_problem is None:
            series = list(self.metrics_snapshot())
            shown_series = series if self._verbose else series[:50]
            parts += ["", f"metrics ({len(series)} series):"]
            parts += [f"   {mask(one_line(p.describe()))}" for p in shown_series]
            if len(series) > len(shown_series):
                parts.append(f"   ... {len(series) - len(shown_series)} more (-vv shows all)")
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"<Telemetry spans={len(self._spans)} logs={len(self._logs)}>"


def _as_specs(expected: SpanSpec | Sequence[SpanSpec]) -> list[SpanSpec]:
    __tracebackhide__ = True
    if isinstance(expected, SpanSpec):
        return [expected]
    if isinstance(expected, str) or not isinstance(expected, Sequence):
        raise SpecError(
            f"assert_span_tree() takes span(...) or a list of them, got {type(expected).__name__}"
        )
    specs = list(expected)
    for i, s in enumerate(specs):
        if not isinstance(s, SpanSpec):
            raise SpecError(
                f"assert_span_tree(): item {i} must be span(...), got {type(s).__name__}"
            )
    return specs


_SEVERITIES = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
    "CRITICAL": 21,
}


def _severity_number(name: str) -> int:
    __tracebackhide__ = True
    if not isinstance(name, str):
        raise SpecError(f"min_severity must be a severity name, got {shown(name)}")
    try:
        return _SEVERITIES[name.upper()]
    except KeyError:
        raise SpecError(f"unknown severity {name!r}; use one of {', '.join(_SEVERITIES)}") from None



def _logger_names(argument: str, names: Any) -> tuple[str, ...]:
    __tracebackhide__ = True
    if isinstance(names, str) or not isinstance(names, Sequence | set | frozenset):
        raise SpecError(
            f"assert_logs_correlated({argument}): {argument} must be a list of logger names, "
            f"e.g. {argument}=['httpx'], got {shown(names)}"
        )
    for name in names:
        if not isinstance(name, str) or not name:
            raise SpecError(
                f"assert_logs_correlated({argument}): each logger name must be a non-empty "
                f"str, got {shown(name)}"
            )
    return tuple(names)


def _from_logger(logger: str, names: Sequence[str]) -> bool:
    """``logger`` is one of ``names`` or a child of one ("httpx" covers "httpx.client")."""
    return any(logger == n or logger.startswith(n + ".") for n in names)
