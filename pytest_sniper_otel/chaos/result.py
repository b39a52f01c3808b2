"""What a scenario run produced: :class:`ScenarioRun` (checks, alerts, spans, the journal)
and, per expected alert, an :class:`AlertResult`."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .faults import Fault

if TYPE_CHECKING:
    from .checks import CheckResult
    from .export import PipelineStats
    from .scenario import Scenario
    from .timeline import JournalEntry


@dataclass(frozen=True)
class AlertResult:
    """How one expected alert (:func:`~.scenario.expect_alert`) went in a run."""

    alert: str
    cause: str  # the fault it answers, or "all faults"
    expected_within: float
    fired: bool
    detection_delay: float | None  # seconds from the fault's start to firing
    resolved: bool
    resolution_delay: float | None  # seconds from the rollback to resolving (0 if before)
    problem: str  # "" when the expectation held
    # the same scrapes with the rules evaluated at every scrape, not on Prometheus' schedule
    detection_delay_every_scrape: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class ScenarioRun:
    """Everything a scenario run produced; :attr:`ok` is True when every check held."""

    scenario: Scenario
    seed: int
    bot: Any = None
    telemetry: Any = None
    t0: float = 0.0
    fault_start_abs: float | None = None
    faults: list[Fault] = field(default_factory=list)
    journal: list[JournalEntry] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    hypothesis: dict[str, Any] = field(default_factory=dict)
    alert_results: list[AlertResult] = field(default_factory=list)
    unexpected_alerts: list[str] = field(default_factory=list)
    baseline_alerts: list[str] = field(default_factory=list)
    baseline: ScenarioRun | None = None  # the fault-free run of the same seed, if any
    transitions: list[str] = field(default_factory=list)
    pipeline_stats: Any = None
    queued: dict[str, int] = field(default_factory=dict)
    open_spans: list[str] = field(default_factory=list)
    export_timeout: float = 0.0
    expected_active_seconds: float = 0.0
    bot_errors: list[str] = field(default_factory=list)
    spans: list[Any] = field(default_factory=list)
    final_snapshot: Any = None
    evaluator: Any = None
    summary: dict[str, Any] = field(default_factory=dict)
    simulated_seconds: float = 0.0
    wall_seconds: float = 0.0
    started: str = ""
    error: str | None = None
    interrupted: str | None = None  # "SIGINT"/"SIGTERM": stopped part-way, faults rolled back

    def window(self, index: int) -> tuple[float, float]:
        """The bot's clock (epoch seconds) when fault ``index`` was first injected and last
        rolled back: what span and ledger times compare against, even under clock faults."""
        f = self.faults[index]
        if not f.records:
            raise LookupError(f"fault {f.name} was never injected")
        first, last = f.records[0], f.records[-1]
        base = self.t0 + self.scenario.warmup
        start = first.clock_started if first.clock_started is not None else base + first.started
        end = last.clock_ended if last.clock_ended is not None else (
            base + last.ended if last.ended is not None else math.inf)
        return start, end

    def spans_between(self, name: str, start: float, end: float) -> list[Any]:
        """Spans called ``name`` that started within [start, end) (epoch seconds)."""
        lo, hi = int(start * 1e9), int(end * 1e9) if math.isfinite(end) else 2**63
        return [s for s in self.spans if s.name == name and lo <= (s.start_time or 0) < hi]

    def spans_in(self, name: str, start: float, end: float) -> list[Any]:
        """Like :meth:`spans_between` with times in seconds since the run's start, so the
        same window can be read from this run and from its :attr:`baseline`."""
        return self.spans_between(name, self.t0 + start, self.t0 + end)

    def relative_window(self, index: int) -> tuple[float, float]:
        """:meth:`window` in seconds since the run's start."""
        start, end = self.window(index)
        return start - self.t0, end - self.t0

    def timeline(self, metric: str) -> list[tuple[float, float]]:
        """(seconds since the run's start, max over series) of a gauge or counter at each
        scrape of the alert evaluator."""
        out = []
        for snap in self.evaluator.snapshots if self.evaluator is not None else ():
            values = [p.value for p in snap.points(metric) if p.value is not None]
            if values:
                out.append((snap.time_unix_nano / 1e9 - self.t0, max(values)))
        return out

    @property
    def ok(self) -> bool:
        return self.error is None and self.interrupted is None and all(
            c.held for c in self.checks)

    @property
    def broken(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.held]

    @property
    def dropped(self) -> dict[str, int]:
        stats: PipelineStats | None = self.pipeline_stats
        if stats is None:
            return {}
        return {f"{s}/{r}": n for (s, r), n in sorted(stats.dropped.items())}

    def failure_message(self) -> str:
        lines = [f"chaos scenario {self.scenario.name!r} (seed {self.seed}) broke:"]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  {c.name}: {c.detail}" for c in self.broken]
        if self.scenario.tags.get("origin") == "hypothesis":
            lines.append(f"reproduce: run_scenario(random_scenario({list(self.scenario.faults)!r}"
                         f"), seed={self.seed})")
        else:
            lines.append(f"reproduce: sniper-otel chaos --scenario {self.scenario.name} "
                         f"--seed {self.seed}")
        if self.transitions:
            lines += ["alert transitions:", *(f"  {t}" for t in self.transitions)]
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        if not self.ok:
            raise AssertionError(self.failure_message())

    def to_json(self) -> dict[str, Any]:
        """The journal: a Chaos Toolkit-like record of what happened, plus what the HTML
        report draws (:mod:`.report_data`)."""
        from .report_data import report_json

        return {
            "experiment": self.scenario.to_json(),
            "seed": self.seed,
            "status": "completed" if self.ok else (
                "interrupted" if self.interrupted else "aborted" if self.error else "failed"),
            "interrupted": self.interrupted,
            "deviated": not self.ok,
            "start": self.started,
            "wall_seconds": round(self.wall_seconds, 3),
            "simulated_seconds": self.simulated_seconds,
            "steady_states": self.hypothesis,
            "run": [e.to_json() for e in self.journal if e.action == "inject"],
            "rollbacks": [e.to_json() for e in self.journal if e.action != "inject"],
            "faults": [f.to_json() for f in self.faults],
            "verification": [c.to_json() for c in self.checks],
            "alerts": {"expected": [a.to_json() for a in self.alert_results],
                       "unexpected": self.unexpected_alerts, "baseline": self.baseline_alerts,
                       "transitions": self.transitions},
            "telemetry": {
                "pipeline": self.pipeline_stats.to_json() if self.pipeline_stats else None,
                "dropped": self.dropped,
            },
            "bot": self.summary,
            "error": self.error,
            **report_json(self),
        }

    def write_journal(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n",
                              encoding="utf-8")
