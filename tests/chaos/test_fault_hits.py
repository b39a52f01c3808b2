"""Faults that change a state for their window count what the change touched: one hit per
occurrence it governed (a score taken with a drifted knob, a reading of a skewed clock, an
order settled at a changed fill rate, a span offered to a shrunk queue, a command a Redis
pause held). A window that saw no such occurrence fails ``faults_struck``, naming the fault.

Each fault runs in a scenario of a small system of its own built on the real target (the
pattern model, the exchange simulator, the export pipeline, a real Redis): it works once
per step, at every step or only outside the fault's window, and logs when it worked.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import trace

from pytest_sniper_otel.chaos import Scenario, SystemContext, fault, layers, run_scenario
from pytest_sniper_otel.chaos.faults import FaultError, FaultSpec
from pytest_sniper_otel.chaos.result import ScenarioRun
from pytest_sniper_otel.chaos.targets import ClockTarget
from pytest_sniper_otel.flow.client import CalendarEntry, ExchangeClient
from pytest_sniper_otel.flow.config import default_credentials
from pytest_sniper_otel.flow.exchange import (
    ExchangeSimulator,
    ListingSpec,
    MarketConditions,
    SimulatedTransport,
)
from pytest_sniper_otel.flow.model import ModelKnobs, PatternModel

WARMUP, START, DURATION = 10.0, 10.0, 20.0
WINDOW = (WARMUP + START, WARMUP + START + DURATION)  # seconds from the run's start


class _System:
    """Does one unit of work at the start of each step (``everywhere``) or only at steps
    outside the fault window, and logs (seconds from the start, occurrences per unit)."""

    def __init__(self, context: SystemContext, *, everywhere: bool) -> None:
        self.clock = context.clock
        self.t0 = self.clock.time()
        self.everywhere = everywhere
        self.log: list[float] = []

    def run_for(self, seconds: float) -> None:
        start = self.clock.time()
        at = round(start - self.t0, 3)  # the simulated clock is a float epoch
        if self.everywhere or not WINDOW[0] <= at < WINDOW[1]:
            self.log.append(at)
            self.work()
        self.clock.tick(max(0.0, start + seconds - self.clock.time()))

    def work(self) -> None:
        raise NotImplementedError

    def targets(self) -> dict[str, Any]:
        raise NotImplementedError

    def close(self) -> None:
        pass


# three calendar entries, one with the ready signal: each inference reads the drift once
# per entry, the burst once per entry without a ready signal, the slowdown once
ENTRIES = (((2, 2, 4), True), ((1, 1, 1), False), ((2, 1, 1), False))


class _ModelSystem(_System):
    def __init__(self, context: SystemContext, *, everywhere: bool) -> None:
        super().__init__(context, everywhere=everywhere)
        self.model = PatternModel(seed=context.seed, clock=self.clock)

    def work(self) -> None:
        now = self.clock.time()
        self.model.analyze([CalendarEntry(f"v{i}", f"L{i}USDT", now + 600.0, state, False)
                            for i, (state, _) in enumerate(ENTRIES)], "test")

    def targets(self) -> dict[str, Any]:
        return {"model": self.model}


class _ExchangeSystem(_System):
    """The exchange simulator with one open listing, called through the bot's client."""

    orders = True  # a unit: a market order placed and settled; otherwise one ticker read

    def __init__(self, context: SystemContext, *, everywhere: bool) -> None:
        super().__init__(context, everywhere=everywhere)
        credentials = default_credentials(context.seed)
        self.exchange = ExchangeSimulator(
            seed=context.seed, clock=self.clock, api_key=credentials.api_key,
            api_secret=credentials.api_secret,
            listings=[ListingSpec("SNIPEUSDT", "v1", launch_offset=-300.0)],
            conditions=MarketConditions(reject_rate=0.0))
        self.client = ExchangeClient(
            transport=SimulatedTransport(self.exchange, self.clock, seed=context.seed),
            clock=self.clock, credentials=credentials, seed=context.seed)

    def work(self) -> None:
        if not self.orders:
            self.client.get_ticker("SNIPEUSDT")
            return
        coid = f"order-{len(self.log)}"
        self.client.place_order("SNIPEUSDT", "BUY", coid, quote_qty=10.0)
        self.clock.tick(1.0)  # past the fill delay: the next call settles it
        self.client.get_order("SNIPEUSDT", coid)

    def targets(self) -> dict[str, Any]:
        return {"market": self.exchange,
                "clock": ClockTarget(self.clock, {"exchange": self.exchange})}


class _TickerSystem(_ExchangeSystem):
    orders = False


class _SpanSystem(_System):
    """Ends three spans per unit; each is offered to the export pipeline's queue."""

    def work(self) -> None:
        tracer = trace.get_tracer("fault-hits-test")
        for _ in range(3):
            with tracer.start_as_current_span("work"):
                pass

    def targets(self) -> dict[str, Any]:
        return {}


def _run(spec: FaultSpec, system: type[_System], *, everywhere: bool,
         redis: Any = None) -> tuple[ScenarioRun, _System]:
    built: list[_System] = []

    def make(context: SystemContext) -> _System:
        built.append(system(context, everywhere=everywhere))
        return built[-1]

    scenario = Scenario(name="hits", title="t", faults=[spec], warmup=WARMUP, duration=40.0,
                        recovery=10.0, baseline=False, checks=("faults_struck",), system=make)
    return run_scenario(scenario, seed=0, redis=redis), built[0]


def _in_window(run: ScenarioRun, system: _System) -> int:
    """Units of work done while the fault was active (from its activity record)."""
    (activity,) = run.faults[0].records
    assert activity.clock_started is not None and activity.clock_ended is not None
    started = round(activity.clock_started - system.t0, 3)
    ended = round(activity.clock_ended - system.t0, 3)
    assert (started, ended) == WINDOW
    return sum(started <= at < ended for at in system.log)


def _never_struck(run: ScenarioRun) -> str:
    assert [c.name for c in run.broken] == ["faults_struck"], run.failure_message()
    (check,) = run.broken
    return check.detail


def _case(name: str, system: type[_System], per_unit: int, case_id: str) -> Any:
    """A fault active from START for DURATION, the system whose work it touches, and how
    many occurrences it changes per unit of that work."""
    return pytest.param(fault(name, start=START, duration=DURATION), system, per_unit,
                        id=case_id)


CASES = [
    _case("model.confidence_drift", _ModelSystem, 3, "confidence_drift"),
    _case("model.inference_slowdown", _ModelSystem, 1, "inference_slowdown"),
    _case("model.false_positive_burst", _ModelSystem, 2, "false_positive_burst"),
    _case("market.partial_fills", _ExchangeSystem, 1, "partial_fills"),
    _case("clock.skew", _TickerSystem, 1, "clock_skew"),
    _case("telemetry.queue_overflow", _SpanSystem, 3, "queue_overflow"),
]


@pytest.mark.parametrize(("spec", "system", "per_unit"), CASES)
def test_a_window_with_work_counts_each_occurrence_it_changed(
    spec: FaultSpec, system: type[_System], per_unit: int,
) -> None:
    run, built = _run(spec, system, everywhere=True)
    assert run.ok, run.failure_message()
    units = _in_window(run, built)
    assert units == 4  # the steps starting at +20, +25, +30 and +35 s
    assert run.faults[0].total_hits() == units * per_unit
    assert run.to_json()["faults"][0]["activity"][0]["hits"] == units * per_unit


NEVER_STRUCK = {
    "confidence_drift": "model.confidence_drift(shift=-0.35, ramp=0.0)",
    "inference_slowdown": "model.inference_slowdown(factor=20.0)",
    "false_positive_burst": "model.false_positive_burst(rate=0.6)",
    "partial_fills": "market.partial_fills(rate=0.9)",
    "clock_skew": "clock.skew(component='exchange', offset=30.0)",
    "queue_overflow": "telemetry.queue_overflow(max_queue=16)",
}


@pytest.mark.parametrize(("spec", "system", "per_unit"), CASES)
def test_a_window_without_work_fails_the_scenario_naming_the_fault(
    spec: FaultSpec, system: type[_System], per_unit: int, request: pytest.FixtureRequest,
) -> None:
    run, built = _run(spec, system, everywhere=False)
    assert _in_window(run, built) == 0 and built.log  # it worked, only not in the window
    described = NEVER_STRUCK[request.node.callspec.id]
    assert _never_struck(run) == (
        f"{described} +10s..+30s never struck: 0 occurrences seen, its target had no "
        "traffic on that path while it was active")


# -- a real Redis pause ----------------------------------------------------------------------
class _RedisSystem(_System):
    """Per unit: a SET (held by a WRITE pause) and a GET (answered through it)."""

    pipelined = False

    def __init__(self, context: SystemContext, *, everywhere: bool) -> None:
        super().__init__(context, everywhere=everywhere)
        self.client = context.redis
        self.timeouts = 0

    def work(self) -> None:
        import redis

        try:
            if self.pipelined:
                pipe = self.client.pipeline(transaction=False)
                pipe.set("sniper-otel-test:fault-hits", "1", ex=60)
                pipe.execute()
            else:
                self.client.set("sniper-otel-test:fault-hits", "1", ex=60)
        except redis.TimeoutError:
            self.timeouts += 1
        self.client.get("sniper-otel-test:fault-hits")

    def targets(self) -> dict[str, Any]:
        return {"redis": self.client}

    def close(self) -> None:
        self.client.delete("sniper-otel-test:fault-hits")


class _PipelinedRedisSystem(_RedisSystem):
    """The same, with the SET sent in a pipeline of one."""

    pipelined = True


@pytest.mark.sniper_otel_real_redis
@pytest.mark.parametrize(("everywhere", "system"), [
    (True, _RedisSystem), (False, _RedisSystem), (True, _PipelinedRedisSystem)],
    ids=["work", "no_work", "pipelined"])
def test_a_redis_pause_counts_the_commands_it_held(
    everywhere: bool, system: type[_RedisSystem], real_redis_url: str,
) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis.from_url(real_redis_url, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
    spec = fault("redis.client_pause", start=START, duration=DURATION)
    try:
        run, built = _run(spec, system, everywhere=everywhere, redis=client)
    finally:
        client.close()
    # the counting hooks are gone
    assert "execute_command" not in vars(client) and "pipeline" not in vars(client)
    units = _in_window(run, built)
    if everywhere:
        assert run.ok, run.failure_message()
        # each SET in the window was held (and timed out); no GET was
        assert units == 4 and run.faults[0].total_hits() == units
        assert isinstance(built, _RedisSystem) and built.timeouts == units
    else:
        assert units == 0
        assert _never_struck(run) == (
            "redis.client_pause(mode='WRITE', max_pause=0.5) +10s..+30s never struck: 0 "
            "occurrences seen, its target had no traffic on that path while it was active")


# -- the counted layers --------------------------------------------------------------------
def test_overlapping_knob_faults_count_only_while_their_value_shows() -> None:
    model = SimpleNamespace(knobs=ModelKnobs())
    first = fault("model.confidence_drift", shift=-0.2).build(0, 0)
    second = fault("model.confidence_drift", shift=-0.4).build(1, 0)
    first.inject(model, at=0.0)
    assert model.knobs.confidence_drift == pytest.approx(-0.2)
    second.inject(model, at=1.0)
    assert model.knobs.confidence_drift == pytest.approx(-0.4)
    assert model.knobs.confidence_drift == pytest.approx(-0.4)
    second.rollback(at=2.0)
    assert model.knobs.confidence_drift == pytest.approx(-0.2)
    first.rollback(at=3.0)
    assert model.knobs.confidence_drift == 0.0
    assert (first.total_hits(), second.total_hits()) == (2, 2)
    # the knobs are a plain ModelKnobs again, equal to a fresh one
    assert type(model.knobs) is ModelKnobs and model.knobs == ModelKnobs()


def test_a_knob_at_its_own_value_changes_nothing_and_strikes_nothing() -> None:
    model = SimpleNamespace(knobs=ModelKnobs())
    same = fault("model.inference_slowdown", factor=1.0).build(0, 0)
    ramped = fault("model.confidence_drift", shift=-0.4, ramp=100).build(1, 0)
    same.inject(model, at=0.0)
    ramped.inject(model, at=0.0)
    assert model.knobs.inference_slowdown == 1.0 and model.knobs.confidence_drift == 0.0
    assert (same.total_hits(), ramped.total_hits()) == (0, 0)
    ramped.step(model, at=50.0, dt=50.0)
    assert model.knobs.confidence_drift == pytest.approx(-0.2)
    assert ramped.total_hits() == 1
    same.rollback(at=60.0)
    ramped.rollback(at=60.0)


def test_a_copy_taken_during_the_window_keeps_the_value_but_counts_nothing() -> None:
    model = SimpleNamespace(knobs=ModelKnobs())
    drift = fault("model.confidence_drift", shift=-0.2).build(0, 0)
    drift.inject(model, at=0.0)
    copy = dataclasses.replace(model.knobs)
    hits = drift.total_hits()  # replace() read the value through the layer
    assert copy.confidence_drift == pytest.approx(-0.2) and drift.total_hits() == hits
    drift.rollback(at=1.0)
    assert copy.confidence_drift == pytest.approx(-0.2)


def test_knobs_whose_reads_cannot_be_counted_are_refused_at_inject() -> None:
    model = SimpleNamespace(knobs=SimpleNamespace(confidence_drift=0.0))
    drift = fault("model.confidence_drift").build(0, 0)
    with pytest.raises(FaultError, match=(
            r"model.confidence_drift: cannot count reads of SimpleNamespace.confidence_drift")):
        drift.inject(model, at=0.0)
    assert model.knobs.confidence_drift == 0.0 and not drift.active
    assert layers.base(model.knobs, "confidence_drift") == 0.0


def test_knobs_of_an_abstract_base_class_are_counted_too() -> None:
    import abc

    class Knobs(abc.ABC):  # noqa: B024 - a metaclass of its own is the point
        def __init__(self) -> None:
            self.inference_slowdown = 1.0

    model = SimpleNamespace(knobs=Knobs())
    slow = fault("model.inference_slowdown", factor=3.0).build(0, 0)
    slow.inject(model, at=0.0)
    assert type(model.knobs) is not Knobs and isinstance(model.knobs, Knobs)
    assert type(model.knobs).__qualname__ == Knobs.__qualname__
    assert model.knobs.inference_slowdown == 3.0 and slow.total_hits() == 1
    slow.rollback(at=1.0)
    assert type(model.knobs) is Knobs and model.knobs.inference_slowdown == 1.0
