"""The invariants a chaos run verifies, each a function of the finished run.

Every check returns a :class:`CheckResult` whose ``detail`` says what was verified (counts),
so a check that held on nothing is visible as such ("0 retries seen").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import StatusCode

if TYPE_CHECKING:
    from .result import ScenarioRun


@dataclass(frozen=True)
class CheckResult:
    name: str
    held: bool
    detail: str
    # the traces that broke it, in the order found (empty for checks about counts)
    trace_ids: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"check": self.name, "held": self.held, "detail": self.detail,
                "trace_ids": [format(t, "032x") for t in self.trace_ids]}


def _ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, True, detail)


def _broken(
    name: str, problems: list[str], limit: int = 5, trace_ids: list[int] | None = None
) -> CheckResult:
    more = f" (+{len(problems) - limit} more)" if len(problems) > limit else ""
    traces = tuple(dict.fromkeys(t for t in trace_ids or () if t))
    return CheckResult(name, False, "; ".join(problems[:limit]) + more, traces)


def steady_state(run: ScenarioRun) -> CheckResult:
    problems = list(run.hypothesis["before"]["problems"]) + [
        f"after: {p}" for p in run.hypothesis["after"]["problems"]
    ]
    if problems:
        return _broken("steady_state", problems)
    return _ok("steady_state", "no alert before the faults; none firing after recovery")


def ledger_reconciles(run: ScenarioRun) -> CheckResult:
    problems = run.bot.reconcile()
    if problems:
        return _broken("ledger_reconciles", problems)
    n = len(run.bot.ledger)
    return _ok("ledger_reconciles", f"{n} intents match the exchange's orders, fills, balance")


def one_outcome_per_intent(run: ScenarioRun) -> CheckResult:
    intents = list(run.bot.ledger)
    pending = [i.client_order_id for i in intents if i.pending]
    if pending:
        waiting = set(pending)
        traces = [s.context.trace_id for s in run.spans
                  if (s.attributes or {}).get("order.client_order_id") in waiting]
        return _broken("one_outcome_per_intent", [f"{c}: no outcome" for c in pending],
                       trace_ids=traces)
    return _ok("one_outcome_per_intent", f"{len(intents)} intents, each with one outcome "
               f"({_fmt(run.bot.ledger.by_outcome())})")


def orders_counted(run: ScenarioRun) -> CheckResult:
    """``orders_total`` (telemetry) agrees with the ledger, per outcome."""
    ledger = run.bot.ledger.by_outcome()
    counted: Counter[str] = Counter()
    for p in run.final_snapshot.points("orders_total"):
        counted[str(p.attributes.get("outcome"))] += int(p.value or 0)
    want = {k: v for k, v in ledger.items() if v}
    got = {k: v for k, v in counted.items() if v}
    if want != got:
        return _broken("orders_counted", [f"ledger {_fmt(want)} but orders_total {_fmt(got)}"])
    return _ok("orders_counted", f"orders_total matches the ledger: {_fmt(got) or 'no orders'}")


def spans_ended(run: ScenarioRun) -> CheckResult:
    still_open = run.open_spans
    if still_open:
        return _broken("spans_ended", [f"{n} never ended" for n in still_open])
    return _ok("spans_ended", f"{run.pipeline_stats.accepted['traces']} spans started and ended")


def logs_correlated(run: ScenarioRun) -> CheckResult:
    logs = run.telemetry.logs
    known = {(s.context.trace_id, s.context.span_id) for s in run.spans if s.context is not None}
    bad = [r for r in logs if (r.trace_id, r.span_id) not in known]
    if bad:
        return _broken("logs_correlated", [f"uncorrelated: {r.describe()}" for r in bad],
                       trace_ids=[r.trace_id or 0 for r in bad])
    warnings = sum(r.severity_number >= 13 for r in logs)
    return _ok("logs_correlated", f"{len(logs)} logs ({warnings} warnings/errors) carry a "
               "captured span's ids")


def _has_exception(span: Any) -> bool:
    return any(e.name == "exception" for e in span.events)


def error_spans_carry_exception(run: ScenarioRun) -> CheckResult:
    """Every ERROR span records its exception, or (an outcome like "rejected") says why in
    its status and has a descendant that recorded the exception behind it."""
    children: dict[int, list[Any]] = defaultdict(list)
    for s in run.spans:
        if s.parent is not None:
            children[s.parent.span_id].append(s)

    def caused_below(span: Any) -> bool:
        stack = list(children.get(span.context.span_id, ()))
        while stack:
            child = stack.pop()
            if child.status.status_code is StatusCode.ERROR and _has_exception(child):
                return True
            stack.extend(children.get(child.context.span_id, ()))
        return False

    errors = [s for s in run.spans if s.status.status_code is StatusCode.ERROR]
    bad = []
    traces = []
    own = 0
    for s in errors:
        problem = ""
        if _has_exception(s):
            own += 1
            if not all((e.attributes or {}).get("exception.type")
                       for e in s.events if e.name == "exception"):
                problem = f"{s.name}: exception event without exception.type"
        elif not (s.status.description or "").strip():
            problem = f"{s.name}: ERROR status with no exception and no description"
        elif not caused_below(s):
            problem = f"{s.name} ({s.status.description}): no exception on it or below it"
        if problem:
            bad.append(problem)
            traces.append(s.context.trace_id)
    if bad:
        return _broken("error_spans_carry_exception", bad, trace_ids=traces)
    return _ok("error_spans_carry_exception",
               f"{len(errors)} error spans: {own} record their exception, "
               f"{len(errors) - own} outcomes point to one below them")


def retries_are_error_siblings(run: ScenarioRun) -> CheckResult:
    """Attempts of one call are sibling ``mexc-api-request`` spans numbered 1..n, and every
    attempt that was retried ended with ERROR status."""
    by_parent: dict[int, list[Any]] = defaultdict(list)
    for s in run.spans:
        if s.name == "mexc-api-request" and s.parent is not None:
            by_parent[s.parent.span_id].append(s)
    problems: list[str] = []
    traces: list[int] = []
    retried = 0
    for siblings in by_parent.values():
        siblings.sort(key=lambda s: (s.start_time, (s.attributes or {}).get("mexc.attempt", 0)))
        previous: Any = None
        for s in siblings:
            attrs = s.attributes or {}
            attempt = int(attrs.get("mexc.attempt", 1))
            if attempt > 1:
                retried += 1
                prev_attrs = (previous.attributes or {}) if previous is not None else {}
                if previous is None or prev_attrs.get("mexc.attempt") != attempt - 1 or (
                    prev_attrs.get("mexc.endpoint") != attrs.get("mexc.endpoint")
                ):
                    problems.append(f"attempt {attempt} of {attrs.get('mexc.endpoint')} has no "
                                    f"sibling attempt {attempt - 1} before it")
                    traces.append(s.context.trace_id)
                elif previous.status.status_code is not StatusCode.ERROR:
                    problems.append(f"attempt {attempt - 1} of {attrs.get('mexc.endpoint')} was "
                                    f"retried but its span is {previous.status.status_code.name}")
                    traces.append(s.context.trace_id)
            previous = s
    if problems:
        return _broken("retries_are_error_siblings", problems, trace_ids=traces)
    return _ok("retries_are_error_siblings",
               f"{retried} retries, each a sibling of an ERROR attempt")


def circuit_breaker(run: ScenarioRun) -> CheckResult:
    want = run.scenario.breaker
    halts = run.bot.halts
    events = Counter(e.name for s in run.spans for e in s.events)  # one pass over the spans
    opened_events = events["circuit_breaker.opened"]
    closed_events = events["circuit_breaker.closed"]
    problems: list[str] = []
    if opened_events != len(halts):
        problems.append(f"{len(halts)} halts but {opened_events} circuit_breaker.opened events")
    # every halt ends with exactly one resume, or is the one still open
    unresumed = [h for h in halts[:-1] if h.resumed_at is None]
    if unresumed:
        problems.append(f"{len(unresumed)} earlier halts never resumed "
                        f"(first at +{unresumed[0].at - run.t0:.0f}s: {unresumed[0].reason})")
    still_open = run.bot.safety.breaker != "closed"
    if halts and (halts[-1].resumed_at is None) != still_open:
        problems.append(f"the last halt {'has a' if still_open else 'has no'} resume "
                        f"but the breaker is {run.bot.safety.breaker}")
    if not halts and still_open:
        problems.append(f"breaker {run.bot.safety.breaker} without any halt")
    resumed = sum(h.resumed_at is not None for h in halts)
    if closed_events != resumed:
        problems.append(f"{closed_events} circuit_breaker.closed events for "
                        f"{resumed} resumptions")
    if want == "closed" and halts:
        problems.append(f"breaker opened ({halts[0].reason}) but should stay closed")
    if want == "opens_and_closes":
        if not halts:
            problems.append("breaker never opened")
        first_fault = run.fault_start_abs
        early = [h for h in halts if first_fault is not None and h.at < first_fault]
        if early:
            problems.append(f"breaker opened before any fault ({early[0].reason})")
        if halts and still_open:
            problems.append(f"breaker still {run.bot.safety.breaker} at the end "
                            f"({halts[-1].reason})")
    if problems:
        return _broken("circuit_breaker", problems)
    if halts:
        spans = [f"+{h.at - run.t0:.0f}s.." + (f"+{h.resumed_at - run.t0:.0f}s"
                                               if h.resumed_at is not None else "still open")
                 + (f" ({h.reopens} reopened)" if h.reopens else "")
                 for h in halts]
        return _ok("circuit_breaker", f"opened and closed as specified: {', '.join(spans)}")
    return _ok("circuit_breaker", "stayed closed as specified")


def telemetry_accounted(run: ScenarioRun) -> CheckResult:
    """accepted == exported + dropped + queued, and every drop is in telemetry_dropped_total."""
    stats = run.pipeline_stats
    problems = []
    for signal in ("traces", "logs"):
        total = stats.exported[signal] + stats.dropped_total(signal) + run.queued.get(signal, 0)
        if stats.accepted[signal] != total:
            problems.append(f"{signal}: accepted {stats.accepted[signal]} != exported "
                            f"{stats.exported[signal]} + dropped {stats.dropped_total(signal)} + "
                            f"queued {run.queued.get(signal, 0)}")
    metric: Counter[tuple[str, str]] = Counter()
    for p in run.final_snapshot.points("telemetry_dropped_total"):
        metric[(str(p.attributes.get("signal")), str(p.attributes.get("reason")))] += int(
            p.value or 0)
    if +metric != +stats.dropped:
        problems.append(f"telemetry_dropped_total {dict(metric)} != dropped {dict(stats.dropped)}")
    if problems:
        return _broken("telemetry_accounted", problems)
    dropped = stats.dropped_total()
    return _ok("telemetry_accounted",
               f"{sum(stats.accepted.values())} items: {sum(stats.exported.values())} exported, "
               f"{dropped} dropped and counted")


def trading_not_blocked(run: ScenarioRun) -> CheckResult:
    """Discovery kept its cadence and no export wait exceeded the pipeline's timeout."""
    cfg = run.bot.config
    expected = int(run.expected_active_seconds / cfg.discovery_interval)
    ran = sum(
        1 for s in run.spans
        if s.name == "workflow-execution"
        and (s.attributes or {}).get("workflow.name") == "pattern-discovery"
    )
    problems = []
    if ran < 0.9 * expected:
        problems.append(f"only {ran} discovery cycles ran, {expected} expected")
    limit = run.export_timeout * 2 + 0.25
    if run.pipeline_stats.longest_pump > limit:
        problems.append(f"an export wait took {run.pipeline_stats.longest_pump:.3f}s wall "
                        f"(limit {limit:.3f}s)")
    if run.bot_errors:
        problems.append(f"the bot raised: {run.bot_errors[0]}")
    if problems:
        return _broken("trading_not_blocked", problems)
    return _ok("trading_not_blocked", f"{ran}/{expected} discovery cycles; longest export wait "
               f"{run.pipeline_stats.longest_pump * 1000:.1f} ms wall")


def alerts(run: ScenarioRun) -> CheckResult:
    problems = []
    for a in run.alert_results:
        if a.problem:
            problems.append(a.problem)
    unexpected = run.unexpected_alerts
    if unexpected and run.scenario.quiet_alerts:
        problems.append(f"unexpected alerts fired: {', '.join(unexpected)}")
    if problems:
        return _broken("alerts", problems)
    parts = [f"{a.alert} fired +{a.detection_delay:.0f}s"
             + (f", resolved +{a.resolution_delay:.0f}s after rollback"
                if a.resolution_delay is not None else "")
             for a in run.alert_results]
    if unexpected:
        parts.append(f"also fired: {', '.join(unexpected)}")
    return _ok("alerts", "; ".join(parts) or "no alert expected, none required")


def faults_struck(run: ScenarioRun) -> CheckResult:
    """Every fault struck at least once while active, unless its schedule says ``may_miss``:
    a fault that never strikes (a target with no traffic on that path in its window, a
    probability that never came up) would let the scenario pass having tested nothing."""
    problems: list[str] = []
    struck: list[str] = []
    missed: list[str] = []
    for f in run.faults:
        why = f.never_struck()
        if why is None:
            struck.append(f"{f.name} x{f.total_hits()}")
        elif f.schedule.may_miss:
            missed.append(why)
        else:
            problems.append(why)
    if problems:
        return _broken("faults_struck", problems)
    parts = [f"{len(struck)} of {len(run.faults)} faults struck: {', '.join(struck)}"
             if struck else "no fault struck" if run.faults else "no faults"]
    if missed:
        parts.append(f"allowed to miss (may_miss): {'; '.join(missed)}")
    return _ok("faults_struck", "; ".join(parts))


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))


CHECK_FUNCTIONS: dict[str, Callable[[ScenarioRun], CheckResult]] = {
    "steady_state": steady_state,
    "ledger_reconciles": ledger_reconciles,
    "one_outcome_per_intent": one_outcome_per_intent,
    "orders_counted": orders_counted,
    "spans_ended": spans_ended,
    "logs_correlated": logs_correlated,
    "error_spans_carry_exception": error_spans_carry_exception,
    "retries_are_error_siblings": retries_are_error_siblings,
    "circuit_breaker": circuit_breaker,
    "telemetry_accounted": telemetry_accounted,
    "trading_not_blocked": trading_not_blocked,
    "alerts": alerts,
    "faults_struck": faults_struck,
}
