"""Run faults on simulated time: the fault timeline, targets, and the scenario runner.

:class:`FaultTimeline` is the engine shared by the ``chaos`` fixture and
:func:`run_scenario`: it injects each fault when its schedule starts, steps it while active
and rolls it back when the schedule ends, or when :meth:`FaultTimeline.rollback_all` is
called (always, in a ``finally``).

:func:`run_scenario` runs a :class:`~.scenario.Scenario` against the reference bot: it
builds the bot on the simulated clock, advances it in steps (5 s, plus every fault
boundary), pumps the telemetry export pipeline, scrapes metrics for the alert evaluator
every 15 s of scenario time, then verifies the invariants and writes a journal.

Scrape times are the scenario's own monotonic timeline (the Prometheus server's clock), so a
clock fault that steps the bot's wall clock back does not confuse alert evaluation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import did_you_mean
from .faults import Fault, FaultError, FaultSpec

if TYPE_CHECKING:
    from ..alerts.evaluator import AlertEvaluator
    from ..alerts.rules import RuleSet
    from ..clock import SimClock
    from ..flow.bot import SniperBot
    from ..flow.config import BotConfig
    from ..telemetry import Telemetry
    from .checks import CheckResult
    from .export import ExportPipeline, PipelineStats
    from .scenario import Scenario

STEP = 5.0
EVALUATION_INTERVAL = 15.0
Progress = Callable[[str, float], None]


# -- targets ---------------------------------------------------------------------------------
@dataclass
class ClockTarget:
    """The ``clock`` target: the simulated clock and the components whose clock can skew."""

    clock: Any
    components: dict[str, Any] = field(default_factory=dict)


@dataclass
class Targets:
    """The objects faults act on, by target name (see :mod:`.faults` for each seam)."""

    exchange: Any = None
    market: Any = None
    feed: Any = None
    redis: Any = None
    clock: Any = None
    model: Any = None
    telemetry: Any = None

    def get(self, name: str, fault: str = "") -> Any:
        value = getattr(self, name, None)
        if value is None:
            bound = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]
            raise FaultError(
                f"fault {fault or name}: no {name!r} target to act on "
                f"(bound targets: {', '.join(bound) or 'none'})"
            )
        return value

    @classmethod
    def of_bot(cls, bot: SniperBot, pipeline: ExportPipeline | None = None) -> Targets:
        """Every seam of the reference bot."""
        return cls(
            exchange=bot.client,
            market=bot.exchange,
            feed=bot.feed,
            redis=bot.cache,
            clock=ClockTarget(bot.clock, {"exchange": bot.exchange, "model": bot.model,
                                          "cache": bot.cache, "client": bot.client}),
            model=bot.model,
            telemetry=pipeline,
        )


# -- the timeline -------------------------------------------------------------------------------
@dataclass
class JournalEntry:
    at: float
    action: str
    fault: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 6), "action": self.action, "fault": self.fault,
                "detail": self.detail}


class FaultTimeline:
    """Faults bound to targets, driven by a scenario-relative time ``t`` (seconds)."""

    def __init__(
        self, seed: int, *, offset: float = 0.0, until: float = math.inf,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.seed = seed
        self.clock = clock  # the system's clock, recorded in each fault's activity
        self.offset = offset  # scenario time at which schedules' zero falls
        self.until = until  # scenario time at which every fault is rolled back
        self.entries: list[tuple[Fault, Any]] = []
        self.journal: list[JournalEntry] = []

    def add(self, spec: FaultSpec, target: Any) -> Fault:
        f = spec.build(len(self.entries), self.seed)
        if self.clock is not None:
            f.clock_now = self.clock
        self.entries.append((f, target))
        return f

    @property
    def faults(self) -> list[Fault]:
        return [f for f, _ in self.entries]

    def boundaries(self) -> list[float]:
        out = set()
        for f, _ in self.entries:
            out.add(self.offset + f.schedule.start)
            end = self.offset + f.schedule.end
            if math.isfinite(end):
                out.add(end)
        if math.isfinite(self.until):
            out.add(self.until)
        return sorted(out)

    def update(self, t: float, dt: float = 0.0) -> None:
        """Inject what is due at ``t``, roll back what ended, step what stays active."""
        for f, target in self.entries:
            rel = t - self.offset
            due = f.schedule.active_at(rel) and t < self.until
            if due and not f.active and not f.records:
                f.inject(target, at=rel)
                self.journal.append(JournalEntry(rel, "inject", f.name, repr(f)))
            elif f.active and not due:
                self._rollback(f, rel)
            elif f.active and dt > 0:
                f.step(target, rel, dt)

    def _rollback(self, f: Fault, rel: float) -> None:
        try:
            f.rollback(at=rel)
            self.journal.append(JournalEntry(rel, "rollback", f.name))
        except Exception as exc:  # keep rolling back the others; report this one
            self.journal.append(JournalEntry(rel, "rollback_failed", f.name, repr(exc)))
            raise

    def rollback_all(self, t: float) -> None:
        """Roll back every active fault (newest first); raises the first failure at the end."""
        first: Exception | None = None
        for f, _ in reversed(self.entries):
            if f.active:
                try:
                    self._rollback(f, t - self.offset)
                except Exception as exc:
                    first = first or exc
        if first is not None:
            raise first


# -- the result -------------------------------------------------------------------------------
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
    alert_results: list[dict[str, Any]] = field(default_factory=list)
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
        return self.error is None and all(c.held for c in self.checks)

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
            "status": "completed" if self.ok else ("aborted" if self.error else "failed"),
            "deviated": not self.ok,
            "start": self.started,
            "wall_seconds": round(self.wall_seconds, 3),
            "simulated_seconds": self.simulated_seconds,
            "steady_states": self.hypothesis,
            "run": [e.to_json() for e in self.journal if e.action == "inject"],
            "rollbacks": [e.to_json() for e in self.journal if e.action != "inject"],
            "faults": [f.to_json() for f in self.faults],
            "verification": [c.to_json() for c in self.checks],
            "alerts": {"expected": self.alert_results, "unexpected": self.unexpected_alerts,
                       "baseline": self.baseline_alerts, "transitions": self.transitions},
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


# -- the runner ------------------------------------------------------------------------------------
def run_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    telemetry: Telemetry | None = None,
    clock: SimClock | None = None,
    redis: Any = None,
    rules: RuleSet | None = None,
    progress: Progress | None = None,
    step: float = STEP,
) -> ScenarioRun:
    """Run ``scenario`` and verify it. Never raises for a broken invariant: read ``.ok``.

    ``telemetry``/``clock`` default to a fresh capture window and simulated clock (outside
    pytest); ``redis`` to a private fakeredis. Bad input raises :class:`FaultError` before
    the bot is built.
    """
    from ..alerts.defaults import default_rules
    from ..alerts.evaluator import AlertEvaluator

    rules = rules if rules is not None else default_rules()
    scenario.validate_alerts(rules)
    run_seed = scenario.seed if scenario.seed is not None else (seed or 0)
    # build every fault once up front so that bad input fails before anything runs
    for i, spec in enumerate(scenario.faults):
        spec.build(i, run_seed)
    run = ScenarioRun(scenario, run_seed, started=dt.datetime.now(dt.UTC).isoformat())
    wall0 = _wall()
    try:
        configured(scenario)  # a hook that raises, or sets nothing real, fails this scenario
    except FaultError as exc:
        run.error = str(exc)
        run.wall_seconds = _wall() - wall0
        return run
    if scenario.baseline and scenario.faults:
        fresh = _baseline_key(scenario, run_seed, rules, redis) not in _BASELINES
        if fresh and progress is not None:
            # an uncached baseline costs as much as the run: show it as the first half
            outer = progress
            outer(scenario.name, 0.0)
            run.baseline = _baseline(scenario, run_seed, clock, redis, rules, step,
                                     lambda _, f: outer(scenario.name, f / 2))
            progress = lambda name, f: outer(name, 0.5 + f / 2)  # noqa: E731
        else:
            run.baseline = _baseline(scenario, run_seed, clock, redis, rules, step)
        run.baseline_alerts = list(run.baseline.unexpected_alerts)
    with ExitStack() as stack:
        if clock is None:
            from ..clock import SimClock

            clock = stack.enter_context(SimClock())
        if telemetry is None:
            from ..capture import install_session

            telemetry = stack.enter_context(install_session().capture())
        try:
            _execute(run, scenario, clock, telemetry, redis, rules, AlertEvaluator, progress,
                     step)
        except Exception as exc:
            # Input was validated above; anything raised now (a fault that cannot act on
            # its target, a crash) is a broken run, reported with its cause.
            run.error = f"{type(exc).__name__}: {exc}"
    run.wall_seconds = _wall() - wall0
    return run


def configured(scenario: Scenario) -> BotConfig:
    """A fresh :class:`BotConfig` after the scenario's ``configure`` hook.

    The hook's exception, a value it returns (a new config is ignored: the hook changes the
    one it is given) and a setting the config does not have (``config.retyr = ...``) raise
    :class:`FaultError` naming the scenario.
    """
    from ..flow.config import BotConfig

    config = BotConfig()
    if scenario.configure is None:
        return config
    where = f"scenario {scenario.name!r}: configure"
    try:
        returned = scenario.configure(config)
    except Exception as exc:
        raise FaultError(f"{where} raised {type(exc).__name__}: {exc}") from exc
    if returned is not None:
        raise FaultError(f"{where} returned {type(returned).__name__}; it must change the "
                         "BotConfig it is given and return None")
    unknown = _unknown_settings(config, "config")
    if unknown:
        raise FaultError(f"{where} set {'; '.join(unknown)}")
    return config


def _unknown_settings(obj: Any, path: str) -> list[str]:
    """Attributes set on a config dataclass (at any depth) that are none of its fields."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return []
    fields = [f.name for f in dataclasses.fields(obj)]
    found = []
    for key in getattr(obj, "__dict__", {}):
        if key not in fields:
            hint = did_you_mean(key, fields, template=" ({})")
            found.append(f"{path}.{key}, which {type(obj).__name__} does not have{hint}")
    for name in fields:
        found += _unknown_settings(getattr(obj, name), f"{path}.{name}")
    return found


_BASELINES: dict[tuple[Any, ...], ScenarioRun] = {}


def _baseline_key(scenario: Scenario, seed: int, rules: RuleSet, redis: Any) -> tuple[Any, ...]:
    return (seed, scenario.total, scenario.warmup, scenario.configure, id(rules), redis is None)


def _baseline(
    scenario: Scenario, seed: int, clock: SimClock | None, redis: Any, rules: RuleSet,
    step: float, progress: Progress | None = None,
) -> ScenarioRun:
    """The same bot, seed and duration without any fault (cached per process)."""
    key = _baseline_key(scenario, seed, rules, redis)
    cached = _BASELINES.get(key)
    if cached is not None:
        return cached
    from ..capture import install_session
    from ..clock import SimClock

    control = dataclasses.replace(
        scenario, name=f"{scenario.name}_baseline", faults=(), alerts=(), checks=(),
        baseline=False, verify=None, breaker="any",
    )
    with ExitStack() as stack:
        if clock is None:
            clock = stack.enter_context(SimClock())
        # A window of its own: the control run must not pollute the test's telemetry.
        window = stack.enter_context(install_session().capture(nested=True))
        result = run_scenario(control, seed=seed, telemetry=window, clock=clock,
                              redis=redis, rules=rules, step=step, progress=progress)
    if result.error is not None:
        raise RuntimeError(f"the baseline run of {scenario.name!r} crashed: {result.error}")
    _BASELINES[key] = result
    return result


def _wall() -> float:
    from .export import _real_perf_counter

    return _real_perf_counter()()


def _execute(
    run: ScenarioRun, scenario: Scenario, clock: SimClock, telemetry: Telemetry, redis: Any,
    rules: RuleSet, evaluator_cls: type[AlertEvaluator], progress: Progress | None, step: float,
) -> None:
    from ..flow.bot import SniperBot
    from .checks import CHECK_FUNCTIONS
    from .export import export_pipeline

    config = configured(scenario)
    pipeline = export_pipeline()
    run.export_timeout = pipeline.export_timeout
    warm, method_end, total = scenario.warmup, scenario.warmup + scenario.duration, scenario.total
    evaluator = evaluator_cls(rules, interval=EVALUATION_INTERVAL)
    timeline = FaultTimeline(run.seed, offset=warm, until=method_end, clock=clock.time)
    run.telemetry = telemetry
    noise = set(run.baseline_alerts)
    with pipeline.enabled():
        bot = SniperBot.create(seed=run.seed, clock=clock, redis=redis, config=config)
        run.bot = bot
        targets = Targets.of_bot(bot, pipeline)
        for spec in scenario.faults:
            target = targets.get(spec.target, spec.name)
            timeline.add(spec, target)
        run.faults = timeline.faults
        t0 = clock.time()
        run.t0 = t0
        scrape_base = int(t0 * 1e9)
        start_rel, _ = scenario.fault_window()
        run.fault_start_abs = t0 + warm + start_rel if scenario.faults else None
        t = 0.0

        def scrape() -> None:
            snapshot = telemetry.metrics_snapshot()
            evaluator.observe(dataclasses.replace(
                snapshot, time_unix_nano=scrape_base + round(t * 1e9)))

        points = sorted({*(_grid(step, total)), *timeline.boundaries(), warm, method_end, total})
        scrape()
        try:
            for nxt in points:
                if nxt <= t:
                    continue
                dt_ = nxt - t
                try:
                    bot.run_for(dt_)
                except Exception as exc:  # the bot must never raise; record it and go on
                    run.bot_errors.append(f"{type(exc).__name__}: {exc}")
                    # keep simulated time moving so the run still ends
                    clock.tick(max(0.0, t0 + nxt - clock.time()))
                t = nxt
                timeline.update(t, dt_)
                pipeline.pump(t)
                if _on_grid(t, EVALUATION_INTERVAL):
                    scrape()
                if math.isclose(t, warm):
                    run.hypothesis["before"] = _hypothesis(evaluator, bot, "before", noise)
                if progress is not None:
                    progress(scenario.name, t / total)
        finally:
            timeline.rollback_all(t)
        run.journal = timeline.journal
        if "before" not in run.hypothesis:
            run.hypothesis["before"] = _hypothesis(evaluator, bot, "before", noise)
        run.hypothesis["after"] = _hypothesis(evaluator, bot, "after", noise, firing_only=True)
        bot.close()  # settles every intent: outcomes are final from here
        pipeline.drain(t)
        run.pipeline_stats = pipeline.stats
        run.queued = {s: pipeline.queued(s) for s in ("traces", "logs")}
        run.open_spans = pipeline.open_spans()
    run.evaluator = evaluator
    run.spans = telemetry.spans
    run.final_snapshot = telemetry.metrics_snapshot()
    run.summary = bot.summary()
    run.simulated_seconds = round(t, 3)
    run.expected_active_seconds = total - sum(
        max(0.0, -float(f.params().get("seconds", 0.0)))
        for f in run.faults if f.name == "clock.jump" and f.records
    )
    _alert_results(run, scenario, evaluator, t0)
    run.checks = [CHECK_FUNCTIONS[name](run) for name in scenario.checks]
    if scenario.verify is not None:
        from .checks import CheckResult

        try:
            scenario.verify(run)
            run.checks.append(CheckResult("verify", True, "the scenario's own verification held"))
        except AssertionError as exc:
            run.checks.append(CheckResult("verify", False, str(exc).splitlines()[0]))
    if progress is not None:
        progress(scenario.name, 1.0)


def _grid(step: float, total: float) -> Iterator[float]:
    n = math.floor(total / step + 1e-9)
    for i in range(1, n + 1):
        yield round(i * step, 9)


def _on_grid(t: float, interval: float) -> bool:
    k = round(t / interval)
    return abs(t - k * interval) < 1e-6


def _hypothesis(
    evaluator: AlertEvaluator, bot: SniperBot, when: str, noise: set[str],
    *, firing_only: bool = False,
) -> dict[str, Any]:
    """The steady-state hypothesis: no alert (firing now, or ever before the faults) and
    a ledger that reconciles with the exchange (orders in flight on both sides allowed).
    Alerts in ``noise`` fire in a fault-free run of the same bot: reported, not counted."""
    problems = []
    seen = evaluator.firing() if firing_only else evaluator.fired()
    alerts = [a for a in seen if a not in noise]
    if alerts:
        problems.append(f"alerts {'firing' if firing_only else 'fired'}: {', '.join(alerts)}")
    reconcile = bot.reconcile()
    if reconcile:
        problems.append(f"ledger does not reconcile: {reconcile[0]}")
    return {"when": when, "met": not problems, "problems": problems,
            "probes": {"alerts": alerts, "baseline_noise": sorted(noise & set(seen)),
                       "reconcile_problems": len(reconcile),
                       "intents": len(bot.ledger)}}


def _alert_results(
    run: ScenarioRun, scenario: Scenario, evaluator: AlertEvaluator, t0: float
) -> None:
    start = evaluator.start
    run.transitions = [tr.describe(start) for tr in evaluator.history]
    expected = {a.alert for a in scenario.alerts}
    for a in scenario.alerts:
        start_rel, end_rel = scenario.fault_window(a.cause)
        fault_start = t0 + scenario.warmup + start_rel
        rollback = t0 + scenario.warmup + end_rel
        delay = evaluator.detection_delay(a.alert, fault_start)
        fired = [e for e in evaluator.episodes if e.rule == a.alert and e.fired_at is not None]
        # the last episode's resolution, counted from the rollback (0 if it came earlier)
        last = fired[-1].resolved_at if fired else None
        resolution = None if last is None else max(0.0, last - rollback)
        still = [e for e in evaluator.episodes if e.rule == a.alert and e.fired_at is not None
                 and e.resolved_at is None]
        problem = ""
        if delay is None:
            problem = f"{a.alert} never fired (expected within {a.within:g}s of the fault)"
        elif delay > a.within:
            problem = f"{a.alert} fired after {delay:g}s, later than {a.within:g}s"
        elif a.resolves_within is not None:
            if still:
                problem = f"{a.alert} still firing at the end, {a.resolves_within:g}s expected"
            elif resolution is not None and resolution > a.resolves_within:
                problem = (f"{a.alert} resolved {resolution:g}s after rollback, later than "
                           f"{a.resolves_within:g}s")
        run.alert_results.append({
            "alert": a.alert, "cause": a.cause or "all faults", "expected_within": a.within,
            "fired": delay is not None, "detection_delay": delay,
            "resolved": resolution is not None, "resolution_delay": resolution,
            "problem": problem,
        })
    run.unexpected_alerts = [n for n in evaluator.fired()
                             if n not in expected and n not in run.baseline_alerts]


def load_journal(path: str | Path) -> Mapping[str, Any]:
    data: Mapping[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


__all__ = [
    "ClockTarget",
    "FaultTimeline",
    "ScenarioRun",
    "Targets",
    "run_scenario",
]
