"""What the ``chaos`` fixture yields: a :class:`ChaosController` for one test.

Two ways to use it:

* run a whole :class:`~.scenario.Scenario` (the ``scenarios/`` modules do this)::

      def test_redis_outage(chaos):
          chaos.run(SCENARIO)          # raises AssertionError listing broken invariants

* drive faults against your own code, on the test's simulated clock::

      def test_client_survives_rate_limits(chaos, clock):
          client = MyClient(transport=..., clock=clock)
          chaos.bind(exchange=client)
          chaos.add(fault("exchange.rate_limit", start=10, duration=60, retry_after=2))
          chaos.advance(120, step=1.0, run=lambda dt: client.poll_for(dt))
          assert chaos.faults[0].total_hits() > 0

Faults from the ``sniper_otel_chaos(*faults, seed=None)`` marker are scheduled the same
way once their target is bound. Every fault is rolled back at teardown, whether the test
passed, failed or raised.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..interrupts import raise_if_interrupted, terminable
from .faults import Fault, FaultError, FaultSpec, Schedule
from .result import ScenarioRun
from .runner import run_scenario
from .targets import Targets
from .timeline import FaultTimeline

if TYPE_CHECKING:
    from ..clock import SimClock
    from ..telemetry import Telemetry
    from .export import ExportPipeline
    from .scenario import Scenario


def marker_options(
    *faults: FaultSpec, seed: int | None = None
) -> tuple[list[FaultSpec], int | None]:
    """The ``sniper_otel_chaos`` marker's signature, checked like a call."""
    for f in faults:
        if not isinstance(f, FaultSpec):
            raise FaultError(
                f"sniper_otel_chaos takes fault(...) specs as positional arguments, got {f!r}"
            )
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise FaultError(f"sniper_otel_chaos seed must be an int, got {seed!r}")
    return list(faults), seed


class ChaosController:
    """Faults for one test, on its simulated clock; see the module docs."""

    def __init__(
        self,
        *,
        seed: int,
        clock: SimClock,
        telemetry: Telemetry,
        pending: Sequence[FaultSpec] = (),
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.telemetry = telemetry
        self.targets = Targets()
        self.timeline = FaultTimeline(seed, clock=clock.time)
        self.now = 0.0  # seconds since the fixture started
        self.runs: list[ScenarioRun] = []
        self._pending = list(pending)
        self._stack = ExitStack()
        self._pipeline: ExportPipeline | None = None

    # targets ------------------------------------------------------------------------------
    def bind(self, targets: Targets | None = None, **seams: Any) -> ChaosController:
        """Name the objects faults act on: ``bind(exchange=client, redis=cache, ...)``.

        An object offering ``chaos_targets()`` binds what it lists too, unless named
        explicitly: ``bind(exchange=server)`` with an
        :class:`~pytest_sniper_otel.flow.server.ExchangeServer` also binds ``market``."""
        if targets is not None:
            for f in dataclasses.fields(Targets):
                value = getattr(targets, f.name)
                if value is not None:
                    setattr(self.targets, f.name, value)
        known = [f.name for f in dataclasses.fields(Targets)]
        offered: dict[str, Any] = {}
        for value in seams.values():
            more = getattr(value, "chaos_targets", None)
            if callable(more):
                offered.update({k: v for k, v in more().items() if k in known})
        seams = {**offered, **seams}
        for name, value in seams.items():
            if name not in known:
                raise FaultError(f"unknown target {name!r} (targets: {', '.join(known)})")
            setattr(self.targets, name, value)
        self._adopt_pending()
        return self

    def bind_bot(self, bot: Any) -> ChaosController:
        """Bind every seam of a reference :class:`~pytest_sniper_otel.flow.SniperBot`."""
        return self.bind(Targets.of_bot(bot, self.pipeline))

    @property
    def pipeline(self) -> ExportPipeline:
        """The telemetry export pipeline, recording for the rest of this test."""
        if self._pipeline is None:
            from .export import export_pipeline

            self._pipeline = self._stack.enter_context(export_pipeline().enabled())
            if self.targets.telemetry is None:
                self.targets.telemetry = self._pipeline
        return self._pipeline

    def _adopt_pending(self) -> None:
        still = []
        for spec in self._pending:
            if spec.target == "telemetry":
                self.pipeline  # noqa: B018 - binds the pipeline target
            if getattr(self.targets, spec.target) is not None:
                self.add(spec)
            else:
                still.append(spec)
        self._pending = still

    # faults --------------------------------------------------------------------------------
    def add(self, spec: FaultSpec, target: Any = None) -> Fault:
        """Schedule ``spec`` (times relative to the fixture's start) against ``target``, or
        against the bound target its kind names."""
        if spec.target == "telemetry" and target is None:
            self.pipeline  # noqa: B018 - binds the pipeline target
        obj = target if target is not None else self.targets.get(spec.target, spec.name)
        f = self.timeline.add(spec, obj)
        self.timeline.update(self.now)
        return f

    def inject(self, spec: FaultSpec, target: Any = None) -> Fault:
        """Start ``spec`` now (its schedule's start counts from now)."""
        shifted = dataclasses.replace(
            spec.schedule, start=spec.schedule.start + self.now
        )
        return self.add(FaultSpec(spec.name, spec.params, shifted), target)

    @property
    def faults(self) -> list[Fault]:
        return self.timeline.faults

    def advance(
        self, seconds: float, *, step: float = 1.0, run: Callable[[float], object] | None = None
    ) -> None:
        """Move ``seconds`` of simulated time in steps, applying schedules at each step.

        ``run(dt)`` lets your system work for ``dt`` seconds (it must move the clock, as
        ``bot.run_for`` does); without it the clock just ticks.
        """
        if self._pending:
            missing = ", ".join(f"{s.name} (target {s.target!r})" for s in self._pending)
            raise FaultError(f"marker faults have no target: {missing}; bind them with "
                             "chaos.bind(...) or chaos.bind_bot(bot)")
        if seconds < 0 or step <= 0:
            raise FaultError(f"advance() needs seconds >= 0 and step > 0, got {seconds}, {step}")
        end = self.now + seconds
        stops = sorted({*(t for t in self.timeline.boundaries() if self.now < t < end), end})
        grid = []
        t = self.now
        for stop in stops:
            while t + step < stop - 1e-9:
                t += step
                grid.append(t)
            grid.append(stop)
            t = stop
        for nxt in grid:
            raise_if_interrupted()
            dt = nxt - self.now
            if run is not None:
                run(dt)
            else:
                self.clock.tick(dt)
            self.now = nxt
            self.timeline.update(self.now, dt)
            if self._pipeline is not None:
                self._pipeline.pump(self.now)

    def rollback(self) -> None:
        """Roll back every active fault now."""
        self.timeline.rollback_all(self.now)

    # scenarios -------------------------------------------------------------------------------
    def run(self, scenario: Scenario, *, check: bool = True, **options: Any) -> ScenarioRun:
        """Run ``scenario`` on this test's clock and telemetry (plus the marker's faults);
        raise ``AssertionError`` listing broken invariants unless ``check=False``."""
        if self._pending:
            scenario = dataclasses.replace(scenario, faults=(*scenario.faults, *self._pending))
            self._pending = []
        options.setdefault("seed", self.seed)
        try:
            # SIGTERM too unwinds like Ctrl-C: faults rolled back, keys removed
            with terminable():
                run = run_scenario(scenario, telemetry=self.telemetry, clock=self.clock,
                                   **options)
        except KeyboardInterrupt as exc:  # the journal keeps the part that ran
            partial = getattr(exc, "partial_run", None)
            if partial is not None:
                self.runs.append(partial)
            raise
        self.runs.append(run)
        if check:
            run.raise_for_failures()
        return run

    # teardown ---------------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self.timeline.rollback_all(self.now)
        finally:
            self._stack.close()
        if self._pending:
            missing = ", ".join(f"{s.name} (target {s.target!r})" for s in self._pending)
            raise FaultError(f"marker faults were never applied: {missing}; bind their targets "
                             "with chaos.bind(...) or run a scenario with chaos.run(...)")
        # a fault that tested nothing is an error here too, as in a scenario (faults_struck)
        silent = [why for f in self.faults if not f.schedule.may_miss
                  and (why := f.never_struck()) is not None]
        if silent:
            raise FaultError("chaos fault(s) of this test tested nothing (give "
                             "the schedule may_miss=True if that is expected): "
                             + "; ".join(silent))

    def journal(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.timeline.journal]


@contextmanager
def controller(
    *, seed: int, clock: SimClock, telemetry: Telemetry, marker_args: tuple[Any, ...] = (),
    marker_kwargs: dict[str, Any] | None = None, journal_dir: str | None = None,
    report_dir: str | None = None, test_id: str = "",
) -> Iterator[ChaosController]:
    faults, marker_seed = marker_options(*marker_args, **(marker_kwargs or {}))
    c = ChaosController(seed=seed if marker_seed is None else marker_seed, clock=clock,
                        telemetry=telemetry, pending=faults)
    try:
        yield c
    finally:
        try:
            c.close()
        finally:
            if journal_dir:
                write_journals(c.runs, Path(journal_dir), test_id)
            if report_dir:
                write_reports(c.runs, Path(report_dir), test_id)


def _stem(test_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", test_id).strip("_") or "chaos"


def write_journals(runs: Sequence[ScenarioRun], directory: Path, test_id: str) -> None:
    """One ``<test id>--<scenario>.json`` per run (pass or fail), for CI artifacts."""
    directory.mkdir(parents=True, exist_ok=True)
    for run in runs:
        run.write_journal(directory / f"{_stem(test_id)}--{run.scenario.name}.json")


def write_reports(runs: Sequence[ScenarioRun], directory: Path, test_id: str) -> None:
    """One HTML report ``<test id>--<scenario>.html`` per run (pass or fail); the session
    adds ``index.html`` over all of them at its end."""
    from . import report

    directory.mkdir(parents=True, exist_ok=True)
    for run in runs:
        report.write(directory / f"{_stem(test_id)}--{run.scenario.name}.html", [run.to_json()],
                     subtitle=test_id)


def parse_seed(value: str | int | None) -> int:
    """``--sniper-otel-chaos-seed``: an int, or ``random`` for a fresh one (printed)."""
    if value is None or value == "":
        return 0
    if isinstance(value, str) and value.strip().lower() == "random":
        import random

        return random.SystemRandom().randrange(1, 2**31)
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if seed < 0:
        raise FaultError(
            f"--sniper-otel-chaos-seed takes a non-negative int or 'random', got {value!r}"
        )
    return seed


__all__ = ["ChaosController", "Schedule", "controller", "marker_options", "parse_seed",
           "write_journals", "write_reports"]
