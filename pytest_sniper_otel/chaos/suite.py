"""Finding and running the scenario suite: what ``sniper-otel chaos`` and the benchmark use.

Scenarios live in modules named ``scenario_*.py``: by default the suite installed with the
lab (the repository's ``scenarios/``, as package ``pytest_sniper_otel.scenarios``), or any
directory given. Each module exposes ``SCENARIO`` (a :class:`~.scenario.Scenario`) or
``SCENARIOS`` (a list of them), plus ordinary ``test_*`` functions that run them through the
``chaos`` fixture, so the same modules are a pytest suite and the CLI's suite.

A scenario tagged ``requires="real_redis"`` runs only when a real server is given
(``--redis-url``); otherwise it is reported as skipped.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import did_you_mean, real_monotonic
from ..interrupts import handled
from .faults import FaultError
from .result import ScenarioRun
from .runner import run_scenario
from .scenario import Scenario

REAL_REDIS = "real_redis"


@dataclass(frozen=True)
class Unloadable:
    """A scenario module that could not be loaded, and why."""

    file: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


@dataclass
class SuiteResult:
    seed: int
    runs: list[ScenarioRun] = field(default_factory=list)
    skipped: list[tuple[Scenario, str]] = field(default_factory=list)
    wall_seconds: float = 0.0
    backend: str = "fakeredis"
    unloadable: list[Unloadable] = field(default_factory=list)
    interrupted: str | None = None  # "SIGINT"/"SIGTERM": the runs are the part that ran
    planned: int = 0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs) and not self.unloadable and not self.interrupted

    @property
    def simulated_seconds(self) -> float:
        return sum(r.simulated_seconds for r in self.runs)

    def to_json(self) -> dict[str, Any]:
        from .report_data import JOURNAL_VERSION

        return {
            "journal_version": JOURNAL_VERSION,
            "seed": self.seed,
            "backend": self.backend,
            "ok": self.ok,
            "wall_seconds": round(self.wall_seconds, 3),
            "simulated_seconds": round(self.simulated_seconds, 3),
            "scenarios": [r.to_json() for r in self.runs],
            "skipped": [{"scenario": s.name, "reason": why} for s, why in self.skipped],
            "unloadable": [{"file": str(u.file), "problem": u.problem} for u in self.unloadable],
            "interrupted": self.interrupted,
            "planned": self.planned,
        }


def installed_scenarios() -> Path:
    """The directory of the scenario suite installed with the lab."""
    from .. import scenarios

    return Path(scenarios.__file__).parent


def load_scenarios(path: str | Path | None = None) -> list[Scenario]:
    """Every scenario in ``path``'s ``scenario_*.py`` modules (default: the installed
    suite), in file order.

    Bad scenarios fail here, naming the module: before anything runs.
    """
    scenarios, unloadable = load_suite(path)
    if unloadable:
        raise FaultError("; ".join(str(u) for u in unloadable))
    return scenarios


def load_suite(path: str | Path | None = None) -> tuple[list[Scenario], list[Unloadable]]:
    """The scenarios of every module that loads, and each module that does not (a syntax or
    import error, a bad ``Scenario(...)``, ``SCENARIOS`` that is not a list, a skip or
    ``sys.exit()`` at import), so that one broken module does not hide the others."""
    root = installed_scenarios() if path is None else Path(path)
    if not root.is_dir():
        raise FaultError(f"no scenario directory {str(root)!r}")
    files = sorted(root.glob("scenario_*.py"))
    if not files:
        raise FaultError(f"no scenario_*.py modules in {str(root)!r}")
    found: list[Scenario] = []
    unloadable: list[Unloadable] = []
    names: dict[str, Path] = {}
    for file in files:
        try:
            items = _scenarios_of(file)
        except FaultError as exc:
            unloadable.append(Unloadable(file, str(exc)))
            continue
        for item in items:
            if item.name in names:
                unloadable.append(Unloadable(file, f"scenario name {item.name!r} is also used "
                                                   f"by {names[item.name]}"))
                continue
            names[item.name] = file
            found.append(item)
    return found, unloadable


def _scenarios_of(file: Path) -> list[Scenario]:
    module = _import(file)
    items = getattr(module, "SCENARIOS", None)
    if items is None:
        single = getattr(module, "SCENARIO", None)
        items = [single] if single is not None else []
    elif not isinstance(items, list | tuple):
        raise FaultError(f"SCENARIOS must be a list of Scenario, got {type(items).__name__}")
    if not items:
        raise FaultError("defines neither SCENARIO nor SCENARIOS")
    for item in items:
        if not isinstance(item, Scenario):
            raise FaultError(f"SCENARIO must be a Scenario, got {item!r}")
    return list(items)


def _import(file: Path) -> Any:
    """Execute a scenario module; whatever it raises becomes a FaultError naming the line."""
    name = f"sniper_otel_scenarios.{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always loads
        raise FaultError("cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # SystemExit and pytest's skip too: the module did not load
        sys.modules.pop(name, None)
        raise FaultError(_load_problem(file, exc)) from None
    return module


def _load_problem(file: Path, exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"line {exc.lineno}: syntax error: {exc.msg}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(file)]
    where = f"line {frames[-1].lineno}: " if frames else ""
    if isinstance(exc, SystemExit):
        return f"{where}sys.exit({exc.code!r}) at import"
    if type(exc).__name__ == "Skipped":  # pytest.skip / pytest.importorskip at module level
        return f"{where}skipped at import: {exc}"
    message = str(exc)
    keyword = re.search(r"unexpected keyword argument '(\w+)'", message)
    if isinstance(exc, TypeError) and keyword:
        fields = [f.name for f in dataclasses.fields(Scenario)]
        message += did_you_mean(keyword.group(1), fields) or f" (fields: {', '.join(fields)})"
    if isinstance(exc, FaultError):
        return f"{where}{message}"
    return f"{where}{type(exc).__name__}: {message}"


def select(scenarios: Sequence[Scenario], names: Sequence[str]) -> list[Scenario]:
    """The scenarios called ``names`` (all when empty); unknown names are an error."""
    if not names:
        return list(scenarios)
    by_name = {s.name: s for s in scenarios}
    chosen = []
    for name in names:
        if name not in by_name:
            hint = did_you_mean(name, by_name)
            raise FaultError(f"unknown scenario {name!r}{hint} (scenarios: {', '.join(by_name)})")
        chosen.append(by_name[name])
    return chosen


def validate(scenarios: Sequence[Scenario]) -> None:
    """Everything that can be checked without running: alerts exist, faults build."""
    from ..alerts.defaults import default_rules

    rules = default_rules()
    for s in scenarios:
        s.validate_alerts(s.rules if s.rules is not None else rules)
        for i, spec in enumerate(s.faults):
            spec.build(i, 0)


YOUNG_GC_THRESHOLD = 20_000


def run_suite(
    scenarios: Sequence[Scenario],
    *,
    seed: int = 0,
    redis_factory: Callable[[], Any] | None = None,
    progress: Callable[[int, Scenario, float], None] | None = None,
    unloadable: Sequence[Unloadable] = (),
) -> SuiteResult:
    """Run ``scenarios`` one after the other; ``redis_factory`` gives each a real client.
    ``unloadable`` modules (from :func:`load_suite`) are reported with the result."""
    validate(scenarios)
    wall = real_monotonic
    result = SuiteResult(seed, backend="redis" if redis_factory else "fakeredis",
                         unloadable=list(unloadable), planned=len(scenarios))
    t0 = wall()
    frozen_before = gc.get_freeze_count()
    thresholds = gc.get_threshold()
    # A run allocates millions of short-lived objects (spans, points, contexts) that
    # refcounting frees: collecting the young generation every 700 allocations took 5.5%
    # of the suite's CPU; every 20,000 it takes 2.9%, at the same peak memory.
    gc.set_threshold(max(thresholds[0], YOUNG_GC_THRESHOLD), *thresholds[1:])
    try:
        _run_each(scenarios, seed, redis_factory, progress, result)
    finally:
        gc.set_threshold(*thresholds)
        if not frozen_before:
            gc.unfreeze()
    result.wall_seconds = wall() - t0
    return result


def _run_each(
    scenarios: Sequence[Scenario],
    seed: int,
    redis_factory: Callable[[], Any] | None,
    progress: Callable[[int, Scenario, float], None] | None,
    result: SuiteResult,
) -> None:
    for index, scenario in enumerate(scenarios):
        if scenario.tags.get("requires") == REAL_REDIS and redis_factory is None:
            result.skipped.append((scenario, "needs a real Redis server (--redis-url)"))
            continue
        # Every run is kept (spans, metric snapshots) until the journal is written: without
        # this, each full collection walks all earlier runs again (13% of the suite's CPU).
        gc.freeze()
        client = redis_factory() if redis_factory is not None else None

        def report(name: str, fraction: float, i: int = index, s: Scenario = scenario) -> None:
            if progress is not None:
                progress(i, s, fraction)

        try:
            run = run_scenario(scenario, seed=seed, redis=client, progress=report)
        except KeyboardInterrupt as exc:  # SIGINT/SIGTERM: report what ran, marked as such
            result.interrupted = handled(exc)
            partial = getattr(exc, "partial_run", None)
            if partial is None:  # interrupted before the run began
                partial = ScenarioRun(scenario, seed)
                partial.interrupted = result.interrupted
            result.runs.append(partial)
            break
        finally:
            if client is not None:
                client.close()
        result.runs.append(run)
