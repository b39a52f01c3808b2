"""The fault-free control run of a scenario (same bot, seed and duration), cached per
process: an alert that fires there is noise of the rules, not evidence of a fault."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from .. import SimClock, install_session

if TYPE_CHECKING:
    from ..alerts.rules import RuleSet
    from .result import ScenarioRun
    from .runner import Progress
    from .scenario import Scenario

BASELINES: dict[tuple[Any, ...], ScenarioRun] = {}


def baseline_key(
    scenario: Scenario, seed: int, rules: RuleSet, redis: Any, step: float
) -> tuple[Any, ...]:
    """What a fault-free run depends on, by value: scenarios with the same seed, schedule,
    bot configuration (or system) and rules share one baseline (the suite builds its rules
    afresh for each scenario, and a key holding their identity never matched). A real Redis server
    keeps state between runs: its baselines are shared only on the same client."""
    from .runner import configured

    return (
        seed, scenario.warmup, scenario.duration, scenario.total, step,
        repr(configured(scenario)), tuple(map(repr, rules)), id(rules.catalog),
        None if redis is None else id(redis),
        # a system of your own is another bot: its baseline is its own
        None if scenario.system is None else id(scenario.system),
    )


def baseline_run(
    scenario: Scenario, seed: int, clock: SimClock | None, redis: Any, rules: RuleSet,
    step: float, progress: Progress | None = None,
) -> ScenarioRun:
    """The same bot, seed and duration without any fault (cached per process)."""
    key = baseline_key(scenario, seed, rules, redis, step)
    cached = BASELINES.get(key)
    if cached is not None:
        return cached
    from .runner import run_scenario

    control = dataclasses.replace(
        scenario, name=f"{scenario.name}_baseline", faults=(), alerts=(), checks=(),
        baseline=False, verify=None, breaker="any",
    )
    with ExitStack() as stack:
        if clock is None:
            clock = stack.enter_context(SimClock(real_time_callers=False))
        # A window of its own: the control run must not pollute the test's telemetry.
        window = stack.enter_context(install_session().capture(nested=True))
        result = run_scenario(control, seed=seed, telemetry=window, clock=clock,
                              redis=redis, rules=rules, step=step, progress=progress)
    if result.error is not None:
        raise RuntimeError(f"the baseline run of {scenario.name!r} crashed: {result.error}")
    BASELINES[key] = result
    return result
