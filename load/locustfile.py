"""Locust load test: the reference sniper bot, in-process, under one telemetry variant.

    locust -f load/locustfile.py --headless -u 10 -r 10 -t 30s --sniper-variant all

Each locust user owns one bot (seeded by spawn order, so every variant replays the same
bots); one task run is one sniper cycle, a safety interval of the bot's schedule with the
discovery, snipes and exits that fall due in it (see ``driver``), reported as request
``SNIPER cycle``. A failed cycle or an order that does not reconcile when the user stops
(``CHECK reconcile``) is a failure in locust's stats: a real fault of the bot, never a
harness artefact.

Options (also environment variables): ``--sniper-variant`` (SNIPER_LOAD_VARIANT: none,
traces, metrics, logs, all, all-otlp), ``--sniper-latency`` (SNIPER_LOAD_LATENCY: ``zero``,
``realistic`` or a multiplier of the exchange's latency model), ``--sniper-otlp-endpoint``,
``--sniper-result`` (write this process's measurement as JSON; ``{pid}`` is replaced, for
``--processes``), ``--sniper-warmup`` (seconds excluded from the measurement).
Distributed runs work as usual: ``--processes N``, or ``--master`` / ``--worker``.
The ``all-otlp`` variant exports to a receiver: start one with ``sniper-otel collector``.
"""

from __future__ import annotations

# gevent must patch the standard library before anything can start a thread: a batch span
# processor thread started before the patch deadlocked a run. ``locust -f`` has already
# patched by now (importing locust does); this keeps a direct import of this module safe.
from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from array import array  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from locust import User, constant, events, task  # noqa: E402
from locust.argument_parser import LocustArgumentParser  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.rpc import Message  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import driver  # noqa: E402
import otel_setup  # noqa: E402
from stats import LatencyHistogram  # noqa: E402

REQUEST_TYPE = "SNIPER"
CYCLE = "cycle"
# Users finish their current cycle when the run ends (an order is never cut in half by
# the harness); locust's default of 0 would kill them mid-cycle.
DEFAULT_STOP_TIMEOUT = 30.0
# A distributed run ends with a handshake: the master asks every worker to stop its users,
# and each worker answers with its final stats report followed by FINAL_REPORT. Locust's own
# quit gives workers a fixed 0.5 s for that last report, which a loaded machine misses (the
# master then writes stats without the workers' last seconds or their reconcile checks).
STOP_AND_REPORT = "sniper_stop_and_report"
FINAL_REPORT = "sniper_final_report"
# beyond stop_timeout: time for a worker to flush and send its report after its users stopped
FINAL_REPORT_GRACE = 30.0


def _options(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("sniper-otel", "telemetry overhead load test")
    group.add_argument(
        "--sniper-variant",
        env_var="SNIPER_LOAD_VARIANT",
        default="none",
        help=f"telemetry variant: {', '.join(otel_setup.VARIANTS)}",
    )
    group.add_argument(
        "--sniper-latency",
        env_var="SNIPER_LOAD_LATENCY",
        default="zero",
        help="exchange latency: zero, realistic, or a multiplier of the latency model",
    )
    group.add_argument(
        "--sniper-otlp-endpoint",
        env_var="SNIPER_LOAD_OTLP_ENDPOINT",
        default=otel_setup.DEFAULT_OTLP_ENDPOINT,
        help="OTLP/HTTP receiver for the all-otlp variant (loopback)",
    )
    group.add_argument(
        "--sniper-result",
        env_var="SNIPER_LOAD_RESULT",
        default="",
        help="write this process's measurement here as JSON ({pid} is replaced)",
    )
    group.add_argument(
        "--sniper-warmup",
        env_var="SNIPER_LOAD_WARMUP",
        type=float,
        default=1.0,
        help="seconds after spawning that the measurement ignores",
    )


class _Measurement:
    """This process's measurement window: cycles, latency, CPU time and memory."""

    def __init__(self) -> None:
        self.variant = "?"
        self.latency = "?"
        self.installed: otel_setup.Installed | None = None
        self.open = False
        self.cycles = 0
        self.failures = 0
        self.reconcile_failures = 0
        self.orders = 0
        self.latency_hist = LatencyHistogram()
        self.t0 = self.cpu0 = 0.0
        self.t1 = self.cpu1 = 0.0
        self.rss0_kb = 0
        self.result_path = ""
        self.warmup = 1.0
        self.users = 0
        self.periods: dict[int, tuple[float, float, int]] = {}  # user -> first, last, n
        # Start time of every cycle, per bot seed: the runner compares variants over the
        # same cycles of the same bots (same work), not merely over the same seconds.
        self.starts: dict[int, array[float]] = {}
        self.outcomes: dict[str, int] = {}
        self.errors: list[str] = []

    def cycle_started(self, user: int, t: float) -> None:
        self.starts.setdefault(user, array("d")).append(t)
        if self.open:
            first, _, k = self.periods.get(user, (t, t, 0))
            self.periods[user] = (first, t, k + 1)

    def record(self, elapsed_ms: float, orders: int, error: BaseException | None) -> None:
        self.cycles += 1
        self.orders += orders
        if error is not None:
            self.failures += 1
            self.errors.append(f"{type(error).__name__}: {error}")
        if self.open:
            self.latency_hist.add(elapsed_ms)

    def finished(self, outcomes: dict[str, int], problems: list[str]) -> None:
        for k, n in outcomes.items():
            self.outcomes[k] = self.outcomes.get(k, 0) + n
        if problems:
            self.reconcile_failures += 1
            self.errors.extend(problems[:5])

    def start(self, users: int) -> None:
        self.users = users
        self.open = True
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        self.rss0_kb = _rss_kb()

    def stop(self) -> None:
        if self.open:
            self.open = False
            self.t1, self.cpu1 = time.perf_counter(), time.process_time()

    def as_dict(self) -> dict[str, Any]:
        wall = max(self.t1 - self.t0, 1e-9)
        n = self.latency_hist.count
        return {
            "variant": self.variant,
            "latency": self.latency,
            "pid": os.getpid(),
            "window_s": wall,
            "cycles": n,
            "cycles_total": self.cycles,
            "failures": self.failures,
            "reconcile_failures": self.reconcile_failures,
            "orders": self.orders,
            "users": self.users,
            "outcomes": self.outcomes,
            "errors": self.errors[:20],
            # Each user's cycle rate from its first to its last cycle start in the window,
            # summed. Counting completions in the window instead is off by up to one cycle
            # per user: +-10% in a few seconds at realistic latency.
            "throughput": sum(
                (k - 1) / (last - first) for first, last, k in self.periods.values() if k > 1
            ),
            "throughput_windowed": n / wall,
            "cpu_s": self.cpu1 - self.cpu0,
            "cpu_per_cycle_us": (self.cpu1 - self.cpu0) / n * 1e6 if n else None,
            "p50_ms": self.latency_hist.quantile(0.50),
            "p95_ms": self.latency_hist.quantile(0.95),
            "p99_ms": self.latency_hist.quantile(0.99),
            "rss_start_mb": self.rss0_kb / 1024,
            # ru_maxrss: the process's high-water mark, in KiB on Linux
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "exported": self.installed.exported() if self.installed else {},
            # seconds since the window opened (negative: warm-up), per seed
            "cycle_starts": {
                seed: [round(t - self.t0, 6) for t in ts] for seed, ts in self.starts.items()
            },
        }


M = _Measurement()


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def _init(environment: Environment, **_: Any) -> None:
    opts = environment.parsed_options
    if opts is None:  # used as a library, without locust's command line
        return
    try:
        v = otel_setup.variant(opts.sniper_variant)
        scale = driver.latency_scale(opts.sniper_latency)
    except ValueError as exc:
        sys.exit(f"locustfile: {exc}")
    if opts.sniper_warmup < 0:
        sys.exit(f"locustfile: --sniper-warmup must be >= 0, got {opts.sniper_warmup}")
    if not environment.stop_timeout:
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT
    M.variant, M.latency, M.result_path = v.name, opts.sniper_latency, opts.sniper_result
    M.warmup = opts.sniper_warmup
    driver.configure(latency_scale=scale)
    if isinstance(environment.runner, MasterRunner):
        _FinalReports(environment, environment.runner)
        return  # the master runs no users: no providers, no bots
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.register_message(STOP_AND_REPORT, _stop_and_report)
    # Installed here, not at import: with --processes locust forks after loading this
    # file, and every process needs its own providers (and export greenlets).
    M.installed = otel_setup.install(v, endpoint=opts.sniper_otlp_endpoint)


class _FinalReports:
    """Master side of the end-of-run handshake: when the run stops, wait until every worker
    has sent its final report. Messages from one worker arrive in the order it sent them, so
    FINAL_REPORT after the last stats report means the master's stats hold all it fired."""

    def __init__(self, environment: Environment, runner: MasterRunner) -> None:
        self.environment, self.runner = environment, runner
        self.received: set[str] = set()
        runner.register_message(FINAL_REPORT, self._received)
        environment.events.test_stopping.add_listener(self._collect)  # type: ignore[no-untyped-call]

    def _received(self, msg: Message, **_: Any) -> None:
        self.received.add(msg.node_id)

    def _collect(self, **_: Any) -> None:
        expected = {client.id for client in self.runner.clients.all}
        for worker in expected:
            self.runner.send_message(STOP_AND_REPORT, client_id=worker)
        deadline = time.monotonic() + self.environment.stop_timeout + FINAL_REPORT_GRACE
        while pending := expected - self.received:
            gone = pending - set(self.runner.clients)  # quit or was lost before reporting
            if gone or time.monotonic() > deadline:
                sys.stderr.write(
                    f"locustfile: no final report from worker(s) {', '.join(sorted(pending))}: "
                    "the master's stats are incomplete\n"
                )
                self.environment.process_exit_code = 1
                return
            gevent.sleep(0.05)


def _stop_and_report(environment: Environment, **_: Any) -> None:
    """Worker side: stop the users (each finishes its cycle and reconciles), then send the
    stats they produced and, after them, FINAL_REPORT."""
    runner = environment.runner
    assert isinstance(runner, WorkerRunner)
    runner.stop()
    data: dict[str, Any] = {}
    environment.events.report_to_master.fire(  # type: ignore[no-untyped-call]
        client_id=runner.client_id, data=data
    )
    runner.send_message("stats", data)
    runner.send_message(FINAL_REPORT)


def _spawned(user_count: int, **_: Any) -> None:
    gevent.spawn_later(M.warmup, M.start, user_count)


def _stopping(**_: Any) -> None:
    M.stop()


def _quitting(environment: Environment, **_: Any) -> None:
    M.stop()
    if M.installed is not None:
        M.installed.shutdown()  # flush what was recorded, so export counts are complete
    if M.result_path and not isinstance(environment.runner, MasterRunner):
        path = M.result_path.replace("{pid}", str(os.getpid()))
        with open(path, "w") as f:
            json.dump(M.as_dict(), f)


for _hook, _listener in (
    (events.init_command_line_parser, _options),
    (events.init, _init),
    (events.spawning_complete, _spawned),
    (events.test_stopping, _stopping),
    (events.quitting, _quitting),
):
    _hook.add_listener(_listener)  # type: ignore[no-untyped-call]  # untyped in locust


class SniperUser(User):
    """One bot per user; each task run is one sniper cycle (see ``driver``)."""

    wait_time = constant(0)
    _next_seed = 0

    def on_start(self) -> None:
        # Seeds follow spawn order, so every variant replays the same bots and schedules.
        SniperUser._next_seed += 1
        self.seed = SniperUser._next_seed
        self.bot = driver.BotDriver(seed=self.seed)

    @task
    def cycle(self) -> None:
        t0 = time.perf_counter()
        M.cycle_started(self.seed, t0)
        error: BaseException | None = None
        orders = 0
        try:
            orders = self.bot.cycle()
        except Exception as exc:  # a real fault of the bot: a failure in locust's stats
            error = exc
        elapsed_ms = (time.perf_counter() - t0) * 1000
        M.record(elapsed_ms, orders, error)
        self.environment.events.request.fire(
            request_type=REQUEST_TYPE,
            name=CYCLE,
            response_time=elapsed_ms,
            response_length=orders,
            exception=error,
            context={},
        )

    def on_stop(self) -> None:
        bot = getattr(self, "bot", None)
        if bot is None:
            return
        t0 = time.perf_counter()
        try:
            problems = bot.finish()
        except Exception as exc:  # closing must not lose the verdict either
            problems = [f"finish() raised {type(exc).__name__}: {exc}"]
        M.finished(bot.outcomes(), problems)
        self.environment.events.request.fire(
            request_type="CHECK",
            name="reconcile",
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=len(problems),
            exception=AssertionError("; ".join(problems[:5])) if problems else None,
            context={},
        )
