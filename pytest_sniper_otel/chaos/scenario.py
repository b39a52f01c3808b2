"""The scenario model: steady state -> method (faults over simulated time) -> verify -> rollback.

A :class:`Scenario` is data, validated when it is written: unknown faults, bad schedules,
unknown checks and alerts that the rule set does not define all fail before anything runs.

Phases, on the simulated clock (seconds)::

    |-- warmup --|------------ duration (the method) ------------|-- recovery --|
    steady-state  faults inject/rollback on their schedules,       every fault is
    hypothesis    relative to the start of the method              rolled back; alerts
    (no alert                                                      must resolve; the
    fires)                                                         hypothesis is re-checked

Fault schedules are relative to the start of the method; a fault still active when the
method ends is rolled back then (and in any case when the run stops, even on an error).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import did_you_mean
from .faults import FaultError, FaultSpec, seconds

if TYPE_CHECKING:
    from ..alerts.rules import RuleSet
    from ..flow.config import BotConfig
    from .result import ScenarioRun
    from .targets import SystemContext

# Invariant checks a scenario verifies (see :mod:`.checks`); all of them by default.
CHECKS = (
    "steady_state",
    "ledger_reconciles",
    "one_outcome_per_intent",
    "orders_counted",
    "spans_ended",
    "logs_correlated",
    "error_spans_carry_exception",
    "retries_are_error_siblings",
    "circuit_breaker",
    "telemetry_accounted",
    "trading_not_blocked",
    "alerts",
    "faults_struck",
)
BREAKER = ("closed", "opens_and_closes", "any")
# The checks that need nothing of the reference bot: all a scenario of your own system runs.
SYSTEM_CHECKS = (
    "steady_state",
    "spans_ended",
    "logs_correlated",
    "error_spans_carry_exception",
    "telemetry_accounted",
    "alerts",
    "faults_struck",
)


@dataclass(frozen=True)
class AlertExpectation:
    """``alert`` fires within ``within`` seconds of its cause's start and resolves within
    ``resolves_within`` seconds of the cause's rollback. The cause is the first fault named
    ``cause``, or all of the scenario's faults (first start, last rollback) when None."""

    alert: str
    within: float = 300.0
    resolves_within: float | None = 300.0
    cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"alert": self.alert, "within": self.within,
                "resolves_within": self.resolves_within, "cause": self.cause}


def expect_alert(
    alert: str, *, within: float | str = "5m", resolves_within: float | str | None = "5m",
    cause: str | None = None,
) -> AlertExpectation:
    """An alert that must fire within ``within`` of the fault and resolve after rollback."""
    w = seconds(within, what="within")
    r = None if resolves_within is None else seconds(resolves_within, what="resolves_within")
    if w <= 0 or (r is not None and r <= 0):
        raise FaultError(f"alert {alert!r}: within and resolves_within must be > 0")
    return AlertExpectation(alert, w, r, cause)


@dataclass(frozen=True)
class Scenario:
    """One chaos experiment against the reference bot (or your own, via the runner's hooks).

    * ``faults``: :func:`~pytest_sniper_otel.chaos.faults.fault` specs, scheduled relative to
      the start of the method;
    * ``alerts``: what must fire and resolve (:func:`expect_alert`); every other alert of
      the rule set is reported if it fires, and fails the run when ``quiet_alerts`` is true;
    * ``breaker``: ``"closed"`` (must never open), ``"opens_and_closes"``, or ``"any"``;
    * ``checks``: the invariants to verify (default: all of :data:`CHECKS`);
    * ``configure``: adjusts the bot's :class:`~pytest_sniper_otel.flow.config.BotConfig`;
    * ``verify``: an extra verification of your own, given the finished run;
    * ``baseline``: also run the same seed without faults, so that an alert which fires in
      a healthy run too is reported as noise (``baseline_alerts``) instead of breaking the
      steady-state hypothesis;
    * ``system``: run your own system instead of the reference bot: called with a
      :class:`~.runner.SystemContext` (seed, simulated clock, redis), it returns an object
      with ``targets()`` (target name -> object, e.g. ``{"exchange": server}``),
      ``run_for(seconds)`` (work that long on the clock) and ``close()``; optionally
      ``summary()`` and ``reconcile()`` (a list of problems, for the steady state). Its
      checks default to :data:`SYSTEM_CHECKS`;
    * ``rules``: the alert rules of this scenario (default: the built-in ones).
    """

    name: str
    title: str
    faults: Sequence[FaultSpec]
    duration: float = 600.0
    warmup: float = 120.0
    recovery: float = 480.0
    alerts: Sequence[AlertExpectation] = ()
    quiet_alerts: bool = False
    breaker: str = "closed"
    checks: Sequence[str] = CHECKS
    seed: int | None = None
    baseline: bool = True
    configure: Callable[[BotConfig], None] | None = None
    verify: Callable[[ScenarioRun], None] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    system: Callable[[SystemContext], Any] | None = None
    rules: RuleSet | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "alerts", tuple(self.alerts))
        where = f"scenario {self.name!r}"
        if self.system is not None:
            if not callable(self.system):
                raise FaultError(f"{where}: system must be a callable building your system "
                                 f"from a SystemContext, got {self.system!r}")
            if self.configure is not None:
                raise FaultError(f"{where}: configure adjusts the reference bot; a scenario "
                                 "with a system of its own configures it in system()")
            if tuple(self.checks) == CHECKS:
                object.__setattr__(self, "checks", SYSTEM_CHECKS)
            bot_only = [c for c in self.checks if c in CHECKS and c not in SYSTEM_CHECKS]
            if bot_only:
                raise FaultError(f"{where}: check(s) {', '.join(bot_only)} need the reference "
                                 f"bot (with a system: {', '.join(SYSTEM_CHECKS)})")
        object.__setattr__(self, "checks", tuple(self.checks))
        if not isinstance(self.name, str) or not self.name.replace("_", "").isalnum():
            raise FaultError(f"scenario name {self.name!r} must be letters, digits and _")
        for spec in self.faults:
            if not isinstance(spec, FaultSpec):
                raise FaultError(f"{where}: faults must be fault(...) specs, got {spec!r}")
        for phase in ("duration", "warmup", "recovery"):
            value = getattr(self, phase)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value) or value < 0:
                raise FaultError(f"{where}: {phase} must be a finite number of seconds >= 0, "
                                 f"got {value!r}")
        if self.duration <= 0:
            raise FaultError(f"{where}: duration must be > 0 seconds")
        for spec in self.faults:
            if spec.schedule.start >= self.duration:
                raise FaultError(
                    f"{where}: fault {spec.name} starts at {spec.schedule.start:g}s, after the "
                    f"method ends ({self.duration:g}s)"
                )
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown:
            raise FaultError(
                f"{where}: unknown check(s) {', '.join(unknown)} (checks: {', '.join(CHECKS)})"
            )
        if self.breaker not in BREAKER:
            raise FaultError(f"{where}: breaker must be one of {', '.join(BREAKER)}, "
                             f"got {self.breaker!r}")
        names = [spec.name for spec in self.faults]
        for expectation in self.alerts:
            if not isinstance(expectation, AlertExpectation):
                raise FaultError(f"{where}: alerts must be expect_alert(...), got {expectation!r}")
            if expectation.cause is not None and expectation.cause not in names:
                raise FaultError(f"{where}: alert {expectation.alert!r} names cause "
                                 f"{expectation.cause!r}, which is not one of its faults "
                                 f"({', '.join(names) or 'none'})")

    @property
    def total(self) -> float:
        """Simulated seconds the scenario covers."""
        return self.warmup + self.duration + self.recovery

    def validate_alerts(self, rules: RuleSet) -> None:
        """Raise :class:`FaultError` if an expected alert is not defined by ``rules``."""
        names = rules.names()
        for expectation in self.alerts:
            if expectation.alert not in names:
                hint = did_you_mean(expectation.alert, names)
                raise FaultError(
                    f"scenario {self.name!r} expects alert {expectation.alert!r}, which no rule "
                    f"defines{hint} (alerts: {', '.join(names)})"
                )

    def fault_window(self, cause: str | None = None) -> tuple[float, float]:
        """(first start, last end) of the faults (those named ``cause`` if given: the first
        of them), relative to the method's start."""
        faults = [f for f in self.faults if cause in (None, f.name)][: 1 if cause else None]
        if not faults:
            return (0.0, 0.0)
        start = min(f.schedule.start for f in faults)
        end = max(min(f.schedule.end, self.duration) for f in faults)
        return (start, end)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "title": self.title, "duration": self.duration,
            "warmup": self.warmup, "recovery": self.recovery,
            "faults": [f.to_json() for f in self.faults],
            "alerts": [a.to_json() for a in self.alerts],
            "breaker": self.breaker, "checks": list(self.checks), "tags": dict(self.tags),
        }
