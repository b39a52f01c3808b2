"""The lab's pytest plugin: the ``sniper_bot``, ``exchange_server`` and ``chaos`` fixtures,
chaos options, markers and header line. Loaded by :mod:`pytest_sniper_otel.lab_plugin` when
the ``lab`` extra is installed; heavy pieces load on use."""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..clock import SimClock
    from ..flow import BotConfig, SniperBot
    from ..flow.exchange import LatencyModel, ListingSpec
    from ..flow.server import ExchangeServer
    from ..telemetry import Telemetry
    from .faults import FaultSpec
    from .fixture import ChaosController

_CHAOS_SEED = pytest.StashKey[int]()
_CHAOS_INDEX = pytest.StashKey[str]()

BOT_MARKER = "sniper_otel_bot"
CHAOS_MARKER = "sniper_otel_chaos"
EXCHANGE_MARKER = "sniper_otel_exchange"
REAL_REDIS_MARKER = "sniper_otel_real_redis"
MARKERS = (
    f"{BOT_MARKER}(*, seed=0, config=None, redis=None): options of the `sniper_bot` fixture "
    "(a pytest_sniper_otel.flow.BotConfig; a redis-py client instead of a private fakeredis)",
    f"{CHAOS_MARKER}(*faults, seed=None): faults (pytest_sniper_otel.chaos.fault(...)) the "
    "`chaos` fixture schedules for this test once their target is bound, or adds to "
    "chaos.run(scenario); seed overrides --sniper-otel-chaos-seed",
    f"{EXCHANGE_MARKER}(*, seed=0, listings=None, initial_balance=10000.0, latency=None, "
    "hold_limit=30.0): options of the `exchange_server` fixture (the exchange simulator served "
    "as MEXC spot REST v3 on a loopback port)",
    f"{REAL_REDIS_MARKER}: needs a real Redis server (SNIPER_OTEL_REDIS_URL); deselect with "
    f"-m 'not {REAL_REDIS_MARKER}'; under pytest-xdist --dist loadgroup these tests run one "
    "after another on one worker (xdist_group sniper_otel_real_redis)",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sniper-otel")
    group.addoption(
        "--sniper-otel-chaos-seed",
        default=None,
        help="seed of chaos faults and scenarios: an int, or 'random' (printed in the header)",
    )
    parser.addini("sniper_otel_chaos_seed", "default for --sniper-otel-chaos-seed", default="0")
    parser.addini(
        "sniper_otel_scenario_files",
        "glob patterns of chaos scenario modules to collect besides python_files "
        "(default: scenario_*.py; empty: none)",
        type="args",
        default=["scenario_*.py"],
    )
    group.addoption(
        "--sniper-otel-chaos-journal",
        default=None,
        metavar="DIR",
        help="write the JSON journal of every chaos scenario run (chaos.run) into DIR",
    )
    group.addoption(
        "--sniper-otel-chaos-report",
        default=None,
        metavar="DIR",
        help="write an HTML report of every chaos scenario run into DIR, plus DIR/index.html "
        "(needs the report extra: matplotlib)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if config.getoption("--sniper-otel-chaos-report"):
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            raise pytest.UsageError(
                '--sniper-otel-chaos-report needs matplotlib: pip install '
                '"pytest-sniper-otel[report]"'
            )
    _configure_seed(config)
    if hasattr(config, "workerinput"):  # an xdist worker
        from .xdist_group import RealRedisGroup

        config.pluginmanager.register(RealRedisGroup(config), RealRedisGroup.name)


_WORKER_SEED = "sniper_otel_chaos_seed"


def _configure_seed(config: pytest.Config) -> None:
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None and _WORKER_SEED in worker_input:
        # An xdist worker: the controller drew the seed ("random" too) and handed it over.
        config.stash[_CHAOS_SEED] = worker_input[_WORKER_SEED]
        return
    if config.pluginmanager.has_plugin("xdist"):
        config.pluginmanager.register(_HandSeedToWorkers(), _HandSeedToWorkers.name)
    raw = config.getoption("--sniper-otel-chaos-seed") or config.getini("sniper_otel_chaos_seed")
    try:
        # An int (the default "0") needs no chaos import, which would cost every run ~20 ms.
        seed = int(raw)
        if seed >= 0:
            config.stash[_CHAOS_SEED] = seed
            return
    except (TypeError, ValueError):
        pass
    from .faults import FaultError
    from .fixture import parse_seed

    try:
        config.stash[_CHAOS_SEED] = parse_seed(raw)
    except FaultError as exc:
        raise pytest.UsageError(str(exc)) from None


class _HandSeedToWorkers:
    """pytest-xdist's hook (registered only with xdist: pytest refuses unknown hooks)."""

    name = "sniper-otel-chaos-seed-to-workers"

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[_WORKER_SEED] = node.config.stash[_CHAOS_SEED]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Scenario modules (``scenario_*.py``) are test modules wherever they are: the installed
    suite under ``--pyargs``, or one copied into a project that only collects ``test_*.py``."""
    config = parent.config
    if file_path.suffix != ".py" or not any(
        fnmatch(file_path.name, pattern) for pattern in config.getini("sniper_otel_scenario_files")
    ):
        return None
    # pytest's own collector takes files named on the command line and python_files matches
    if parent.session.isinitpath(file_path) or any(
        fnmatch(file_path.name, pattern) for pattern in config.getini("python_files")
    ):
        return None
    module: pytest.Module = config.hook.pytest_pycollect_makemodule(
        module_path=file_path, parent=parent
    )
    return module


def pytest_report_header(config: pytest.Config) -> list[str]:
    # Quiet unless chaos is in play (a seed, journal or report asked for) or -v: a suite that never
    # uses the lab should not read about it in every run.
    seed_chosen = bool(config.getoption("--sniper-otel-chaos-seed")) or config.getini(
        "sniper_otel_chaos_seed"
    ) not in ("", "0")
    written = bool(config.getoption("--sniper-otel-chaos-journal")
                   or config.getoption("--sniper-otel-chaos-report"))
    if not (seed_chosen or written or config.get_verbosity() > 0):
        return []
    seed = config.stash[_CHAOS_SEED]
    return [f"sniper-otel chaos seed: {seed} (reproduce with --sniper-otel-chaos-seed={seed})"]


@pytest.fixture
def sniper_bot(
    request: pytest.FixtureRequest, telemetry: Telemetry, clock: SimClock
) -> Iterator[SniperBot]:
    """The reference bot (pytest_sniper_otel.flow) on this test's clock and telemetry;
    options from ``@pytest.mark.sniper_otel_bot(seed=, config=, redis=)``."""
    from ..flow import SniperBot

    marker = request.node.get_closest_marker(BOT_MARKER)
    args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
    bot = SniperBot.create(clock=clock, **_bot_options(*args, **kwargs))
    try:
        yield bot
    finally:
        bot.close()


def _bot_options(
    *, seed: int = 0, config: BotConfig | None = None, redis: Any = None
) -> dict[str, Any]:
    return {"seed": seed, "config": config, "redis": redis}


@pytest.fixture
def exchange_server(request: pytest.FixtureRequest) -> Iterator[ExchangeServer]:
    """The exchange simulator served as MEXC spot REST v3 on a free loopback port for this
    test (``.url``, ``.ccxt_config()``), closed after it; options from
    ``@pytest.mark.sniper_otel_exchange``. It runs on the test's ``clock`` when the test uses
    that fixture (latency is then simulated time), else on real time."""
    from ..flow.server import ExchangeServer

    marker = request.node.get_closest_marker(EXCHANGE_MARKER)
    args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
    options = _exchange_options(*args, **kwargs)
    clock = request.getfixturevalue("clock") if "clock" in request.fixturenames else None
    with ExchangeServer.create(clock=clock, **options) as server:
        yield server


def _exchange_options(
    *, seed: int = 0, listings: list[ListingSpec] | None = None,
    initial_balance: float = 10_000.0, latency: LatencyModel | None = None,
    hold_limit: float = 30.0,
) -> dict[str, Any]:
    return {"seed": seed, "listings": listings, "initial_balance": initial_balance,
            "latency": latency, "hold_limit": hold_limit}


@pytest.fixture
def chaos(
    request: pytest.FixtureRequest, telemetry: Telemetry, clock: SimClock
) -> Iterator[ChaosController]:
    """Faults on this test's simulated clock, always rolled back at teardown; runs scenarios.
    See pytest_sniper_otel.chaos.fixture.ChaosController."""
    from .fixture import controller

    marker = request.node.get_closest_marker(CHAOS_MARKER)
    faults: tuple[FaultSpec, ...] = marker.args if marker else ()
    with controller(
        seed=request.config.stash[_CHAOS_SEED], clock=clock, telemetry=telemetry,
        marker_args=faults, marker_kwargs=marker.kwargs if marker else {},
        journal_dir=request.config.getoption("--sniper-otel-chaos-journal"),
        report_dir=request.config.getoption("--sniper-otel-chaos-report"),
        test_id=request.node.nodeid,
    ) as ctl:
        yield ctl


# the exit status of an interrupt, by signal (pytest_keyboard_interrupt is given no config)
_INTERRUPT_STATUS: list[int] = []


def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    from ..interrupts import interrupt_status

    _INTERRUPT_STATUS[:] = [interrupt_status(excinfo.value)]


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _INTERRUPT_STATUS and session.exitstatus == pytest.ExitCode.INTERRUPTED:
        # a shell expects 130 for SIGINT, 143 for SIGTERM (SIGTERM unwinds like Ctrl-C
        # inside chaos.run(), so faults are rolled back and the journal written)
        session.exitstatus = _INTERRUPT_STATUS.pop()
    directory = session.config.getoption("--sniper-otel-chaos-report")
    # xdist workers write their runs' files; the controller indexes them all at the end
    if not directory or hasattr(session.config, "workerinput"):
        return
    from pathlib import Path

    if any(p.name != "index.html" for p in Path(directory).glob("*.html")):
        from .report import write_index

        session.config.stash[_CHAOS_INDEX] = str(write_index(directory))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    index = config.stash.get(_CHAOS_INDEX, None)
    if index is not None:
        terminalreporter.write_line(f"sniper-otel chaos report: {index}")
