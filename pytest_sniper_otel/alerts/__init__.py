"""Alerting on the bot's OpenTelemetry metrics: rules as data, an evaluator, Prometheus export.

Rules
    ``rule(name, expr, *, for_=0.0, severity="warning", labels=None, annotations=None)`` builds an
    :class:`AlertRule`; :func:`load_rules` takes rules, dicts or a JSON file and returns a
    :class:`RuleSet` validated against a metric catalogue (the reference bot's
    ``pytest_sniper_otel.catalog.METRICS`` unless ``catalog=`` names your bot's). Bad input
    fails at load time with a :class:`RuleError` naming the rule: unknown metric or
    attribute, malformed expression, negative window, wrong metric kind for the function.
    :func:`default_rules` is the shipped set (:data:`DEFAULT_RULES`); add yours with
    ``default_rules() + [...]``.

    Expressions (full grammar in :mod:`.expr`)::

        max(portfolio_drawdown_ratio) > 0.1                       threshold (max min sum avg)
        increase(telemetry_dropped_total[5m]) > 0                 rate / increase over a window
        rate(api_request_latency_ms{outcome="error"}[5m])
          / rate(api_request_latency_ms[5m]) > 0.05               ratio of rates
        quantile(0.99, execution_latency_ms[5m]) > 2000           histogram quantile over a window
        absent(agent_health_score)                                absence
        rate(pattern_false_positives_total[15m])
          / rate(pattern_positive_calls_judged_total[15m]) > 0.85
          and increase(pattern_positive_calls_judged_total[15m]) >= 5   every clause must hold

Evaluation
    ``ev = AlertEvaluator(rules=None, *, interval=15.0, source=telemetry.metrics_snapshot)``
    (``rules=None``: the defaults). Feed it with ``ev.observe(snapshot)`` (one scrape and one
    evaluation at the snapshot's simulated time), ``ev.poll()`` (``observe(source())``),
    ``ev.observe_all(timeline)`` or ``ev.run(duration, advance)`` (poll, ``advance(interval)``,
    repeat; ``advance`` is e.g. ``clock.tick`` or ``bot.run_for``; scrapes are stamped on the
    scraper's schedule even if ``advance`` overshoots). Each returns the :class:`Transition`
    list it caused. Read ``ev.states`` (name -> :class:`AlertState`: inactive, pending, firing,
    resolved), ``ev.history`` (every transition, with time and value), ``ev.episodes``
    (pending_at / fired_at / resolved_at per episode), ``ev.timeline()`` (one
    :class:`Evaluation` per observation), ``ev.fired()``, ``ev.report()``.
    Semantics are Prometheus 2.42's (staleness, ``extrapolatedRate``, ``histogram_quantile``,
    ``for``), which the promtool cross-check enforces. Times are seconds since the epoch on
    the simulated clock; ``ev.start`` is the first observation.

    Counters are cumulative per test from their first sample: as in Prometheus, what a
    series counted before its first scrape is not part of any rate. A series missing from a
    snapshot is stale at once (Prometheus' staleness marker), not kept for 5 minutes.

Assertions (each failure lists every transition with its time since the start)
    ``ev.assert_fired(name, *, within, after) -> delay``
    ``ev.assert_resolved(name, *, within, after) -> delay``
    ``ev.assert_never_fired(name=None, *, between=None)``
    ``ev.detection_delay(name, fault_start) -> float | None``
    ``after``/``fault_start``/``between`` take epoch seconds or aware datetimes.

Prometheus
    :func:`export` writes the rule file (PromQL over the names opentelemetry-exporter-prometheus
    exposes) and, from :class:`Recording` s (``Recording.of(ev, name)``, ``.save``/``.load``),
    promtool unit tests that expect, at every evaluation, our alerts and our values.
    ``sniper-otel rules list|drills|export DIR|verify DIR``; :func:`find_promtool` honours
    ``$PROMTOOL``.

Drills
    :data:`DRILLS` runs :class:`SyntheticBot` healthy, faulty, healthy for each default rule;
    :func:`run_drill` returns what fired and resolved, and the delays.
"""

from __future__ import annotations

from .. import parse_duration  # the package's one duration grammar, at hand for rule authors
from .defaults import DEFAULT_RULES, default_rules
from .drills import (
    DRILLS,
    HEALTHY,
    Conditions,
    Drill,
    DrillResult,
    SyntheticBot,
    run_drill,
    run_timeline,
)
from .evaluator import AlertEvaluator, AlertState, Episode, Evaluation, Transition
from .expr import ExpressionError, parse_expression
from .prometheus import export, find_promtool, promql, run_promtool
from .recording import Recording
from .rules import AlertRule, RuleError, RuleSet, load_rules, rule

__all__ = [
    "DEFAULT_RULES",
    "DRILLS",
    "HEALTHY",
    "AlertEvaluator",
    "AlertRule",
    "AlertState",
    "Conditions",
    "Drill",
    "DrillResult",
    "Episode",
    "Evaluation",
    "ExpressionError",
    "Recording",
    "RuleError",
    "RuleSet",
    "SyntheticBot",
    "Transition",
    "default_rules",
    "export",
    "find_promtool",
    "load_rules",
    "parse_duration",
    "parse_expression",
    "promql",
    "rule",
    "run_drill",
    "run_promtool",
    "run_timeline",
]
