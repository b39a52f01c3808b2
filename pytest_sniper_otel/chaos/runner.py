"""The scenario runner: :func:`run_scenario`.

Its pieces live beside it: the fault timeline (:mod:`.timeline`), what faults act on
(:mod:`.targets`), the result (:mod:`.result`) and the fault-free control run
(:mod:`.baselines`).

:func:`run_scenario` runs a :class:`~.scenario.Scenario` against the reference bot: it
builds the bot on the simulated clock, advances it in steps (5 s, plus every fault
boundary), pumps the telemetry export pipeline, scrapes metrics for the alert evaluator
every 15 s of scenario time, then verifies the invariants and writes a journal.

Scrape times are the scenario's own monotonic timeline (the Prometheus server's clock), so a
clock fault that steps the bot's wall clock back does not confuse alert evaluation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from .. import did_you_mean, real_monotonic
from ..interrupts import handled, raise_if_interrupted
from .baselines import BASELINES, baseline_key, baseline_run
from .faults import FaultError
from .result import AlertResult, ScenarioRun
from .targets import SystemContext, Targets
from .timeline import FaultTimeline

if TYPE_CHECKING:
    from ..alerts.evaluator import AlertEvaluator
    from ..alerts.rules import RuleSet
    from ..clock import SimClock
    from ..flow.config import BotConfig
    from ..telemetry import Telemetry
    from .scenario import Scenario

STEP = 5.0
SCRAPE_INTERVAL = 15.0  # rules run on Prometheus' own schedule (AlertEvaluator)
Progress = Callable[[str, float], None]


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

    if rules is None:
        rules = scenario.rules if scenario.rules is not None else default_rules()
    scenario.validate_alerts(rules)
    run_seed = scenario.seed if scenario.seed is not None else (seed or 0)
    # build every fault once up front so that bad input fails before anything runs
    for i, spec in enumerate(scenario.faults):
        spec.build(i, run_seed)
    run = ScenarioRun(scenario, run_seed, started=dt.datetime.now(dt.UTC).isoformat())
    wall0 = real_monotonic()
    try:
        configured(scenario)  # a hook that raises, or sets nothing real, fails this scenario
    except FaultError as exc:
        run.error = str(exc)
        run.wall_seconds = real_monotonic() - wall0
        return run
    try:
        _run(run, scenario, run_seed, telemetry, clock, redis, rules, progress, step)
    except KeyboardInterrupt as exc:
        # SIGINT/SIGTERM: faults were rolled back on the way out; leave nothing behind
        # either, and hand the partial run to whoever reports it
        run.interrupted = handled(exc)
        _abandon(run)
        run.wall_seconds = real_monotonic() - wall0
        exc.partial_run = run  # type: ignore[attr-defined]
        raise
    run.wall_seconds = real_monotonic() - wall0
    return run


def _abandon(run: ScenarioRun) -> None:
    """After an interrupt: what the bot did so far, then its cache keys and gauges gone."""
    bot = run.bot
    if bot is None:
        return
    with contextlib.suppress(Exception):
        run.summary = bot.summary()
    with contextlib.suppress(Exception):
        bot.cache.close()
    with contextlib.suppress(Exception):
        from ..flow.telemetry import unregister_source

        unregister_source(bot)


def _run(
    run: ScenarioRun, scenario: Scenario, run_seed: int, telemetry: Telemetry | None,
    clock: SimClock | None, redis: Any, rules: RuleSet, progress: Progress | None,
    step: float,
) -> None:
    from ..alerts.evaluator import AlertEvaluator

    if scenario.baseline and scenario.faults:
        fresh = baseline_key(scenario, run_seed, rules, redis, step) not in BASELINES
        if fresh and progress is not None:
            # an uncached baseline costs as much as the run: show it as the first half
            outer = progress
            outer(scenario.name, 0.0)
            run.baseline = baseline_run(scenario, run_seed, clock, redis, rules, step,
                                     lambda _, f: outer(scenario.name, f / 2))
            progress = lambda name, f: outer(name, 0.5 + f / 2)  # noqa: E731
        else:
            run.baseline = baseline_run(scenario, run_seed, clock, redis, rules, step)
        run.baseline_alerts = list(run.baseline.unexpected_alerts)
    with ExitStack() as stack:
        if clock is None:
            from ..clock import SimClock

            clock = stack.enter_context(SimClock(real_time_callers=False))
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
    evaluator = evaluator_cls(rules, interval=SCRAPE_INTERVAL)
    timeline = FaultTimeline(run.seed, offset=warm, until=method_end, clock=clock.time)
    run.telemetry = telemetry
    noise = set(run.baseline_alerts)
    with pipeline.enabled():
        bot: Any
        if scenario.system is not None:
            bot = scenario.system(SystemContext(run.seed, clock, redis))
            known = {f.name for f in dataclasses.fields(Targets)}
            targets = Targets(**{k: v for k, v in bot.targets().items() if k in known})
            targets.telemetry = pipeline
        else:
            bot = SniperBot.create(seed=run.seed, clock=clock, redis=redis, config=config)
            targets = Targets.of_bot(bot, pipeline)
        run.bot = bot
        run.journal = timeline.journal  # filled as faults act; partial if interrupted
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
                # an interrupt dropped inside a finaliser or weakref callback surfaces here
                raise_if_interrupted()
                dt_ = nxt - t
                try:
                    bot.run_for(dt_)
                except Exception as exc:  # the bot must never raise; record it and go on
                    run.bot_errors.append(f"{type(exc).__name__}: {exc}")
                    # keep simulated time moving so the run still ends
                    clock.tick(max(0.0, t0 + nxt - clock.time()))
                t = nxt
                run.simulated_seconds = t
                timeline.update(t, dt_)
                pipeline.pump(t)
                if _on_grid(t, SCRAPE_INTERVAL):
                    scrape()
                if math.isclose(t, warm):
                    run.hypothesis["before"] = _hypothesis(evaluator, bot, "before", noise)
                if progress is not None:
                    progress(scenario.name, t / total)
        finally:
            timeline.rollback_all(t)
        raise_if_interrupted()  # dropped during the last step: the run is still partial
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
    summary = getattr(bot, "summary", None)
    run.summary = summary() if callable(summary) else {}
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
    evaluator: AlertEvaluator, bot: Any, when: str, noise: set[str],
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
    # a system of your own may have no ledger to reconcile
    reconcile: list[str] = list(bot.reconcile()) if hasattr(bot, "reconcile") else []
    if reconcile:
        problems.append(f"ledger does not reconcile: {reconcile[0]}")
    ledger = getattr(bot, "ledger", None)
    return {"when": when, "met": not problems, "problems": problems,
            "probes": {"alerts": alerts, "baseline_noise": sorted(noise & set(seen)),
                       "reconcile_problems": len(reconcile),
                       "intents": len(ledger) if ledger is not None else None}}


def _alert_results(
    run: ScenarioRun, scenario: Scenario, evaluator: AlertEvaluator, t0: float
) -> None:
    start = evaluator.start
    run.transitions = [tr.describe(start) for tr in evaluator.history]
    expected = [a.alert for a in scenario.alerts]
    # the same scrapes with the expected alerts' rules run at every scrape: how much
    # Prometheus' schedule adds (rules are evaluated one by one: the others change nothing)
    if scenario.alerts:
        from ..alerts.rules import RuleSet

        every_scrape = type(evaluator)(
            RuleSet([evaluator.rules.get(name) for name in dict.fromkeys(expected)],
                    catalog=evaluator.rules.catalog),
            interval=evaluator.interval, evaluation_interval=evaluator.interval,
        )
        every_scrape.observe_all(evaluator.snapshots)
    for a in scenario.alerts:
        start_rel, end_rel = scenario.fault_window(a.cause)
        fault_start = t0 + scenario.warmup + start_rel
        rollback = t0 + scenario.warmup + end_rel
        delay = evaluator.detection_delay(a.alert, fault_start)
        delay_every_scrape = every_scrape.detection_delay(a.alert, fault_start)
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
        run.alert_results.append(AlertResult(
            alert=a.alert, cause=a.cause or "all faults", expected_within=a.within,
            fired=delay is not None, detection_delay=delay,
            resolved=resolution is not None, resolution_delay=resolution, problem=problem,
            detection_delay_every_scrape=delay_every_scrape,
        ))
    run.unexpected_alerts = [n for n in evaluator.fired()
                             if n not in expected and n not in run.baseline_alerts]


__all__ = ["run_scenario"]
