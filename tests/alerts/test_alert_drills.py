"""Every default rule fires on its fault, resolves after rollback, and nothing else fires."""

from __future__ import annotations

import pytest

from pytest_sniper_otel.alerts import DEFAULT_RULES, DRILLS, Drill, run_drill
from pytest_sniper_otel.alerts.drills import format_results


def test_every_default_rule_has_a_drill() -> None:
    assert {n for d in DRILLS for n in d.expected} == {r.name for r in DEFAULT_RULES}


@pytest.mark.parametrize("drill", DRILLS, ids=[d.name for d in DRILLS])
def test_drill(drill: Drill) -> None:
    result = run_drill(drill)
    ev = result.evaluator
    ev.assert_never_fired(between=(ev.start, result.fault_start))
    for name in drill.expected:
        ev.assert_fired(name, within=drill.fire_within, after=result.fault_start)
        ev.assert_resolved(name, within=drill.resolve_within, after=result.rollback)
    assert result.unexpected == [], ev.report()
    assert ev.firing() == [], "all quiet again at the end"
    assert result.ok


def test_results_table_reports_expected_fired_resolved_and_delays() -> None:
    drill = next(d for d in DRILLS if d.expected == ("CircuitBreakerOpen",))
    table = format_results([run_drill(drill)])
    header, row = table.splitlines()
    assert header.split() == ["drill", "expected", "fired", "resolved", "detect", "resolve", "ok"]
    assert row == (
        "circuit breaker  CircuitBreakerOpen  CircuitBreakerOpen  CircuitBreakerOpen  "
        "45s     45s      yes"
    )
