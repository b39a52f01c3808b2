"""Scenario(system=...): a system of your own is checked like the reference bot is, with the
checks that need no bot, and bad combinations are refused when the scenario is written."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_sniper_otel.chaos import SYSTEM_CHECKS, FaultError, Scenario, SystemContext, fault


def _system(context: SystemContext) -> Any:
    raise AssertionError("never built")


def test_a_system_runs_the_checks_that_need_no_bot() -> None:
    s = Scenario(name="mine", title="t", faults=[], system=_system)
    assert s.checks == SYSTEM_CHECKS


@pytest.mark.parametrize(("options", "message"), [
    ({"checks": ("spans_ended", "ledger_reconciles")},
     "scenario 'mine': check(s) ledger_reconciles need the reference bot (with a system: "
     "steady_state, spans_ended, logs_correlated, error_spans_carry_exception, "
     "telemetry_accounted, alerts, faults_struck)"),
    ({"configure": lambda config: None},
     "scenario 'mine': configure adjusts the reference bot; a scenario with a system of its "
     "own configures it in system()"),
    ({"system": "not callable"},
     "scenario 'mine': system must be a callable building your system from a SystemContext, "
     "got 'not callable'"),
])
def test_bad_combinations_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultError, match=re.escape(message)):
        Scenario(**{"name": "mine", "title": "t", "faults": [fault("exchange.http_error")],
                    "system": _system, **options})
