"""Stateful: any interleaving of injects, rollbacks and time restores every seam of the bot.

Hypothesis injects random faults (overlapping ones on the same seam included), rolls them
back in random order, and lets the bot run in between. After the last rollback the bot must
be exactly as it was: original transport, no connection-pool hook, model knobs, market
conditions, clocks and the export pipeline's exporter and queue.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pytest_sniper_otel.chaos.export import export_pipeline
from pytest_sniper_otel.chaos.faults import Fault
from pytest_sniper_otel.chaos.strategies import fault_specs
from pytest_sniper_otel.chaos.targets import Targets
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow.bot import SniperBot

# every fault but the clock jump, which moves time for good by design (a dud listing's
# launch, once passed, stays called off: only the launches still to come must come back)
NAMES = tuple(n for n in (
    "exchange.http_error", "exchange.rate_limit", "exchange.timeout", "exchange.latency",
    "exchange.malformed", "exchange.stale_calendar", "exchange.duplicate_calendar",
    "market.partial_fills", "market.dud_listings", "feed.disconnect", "redis.outage",
    "redis.latency", "redis.eviction", "clock.skew", "model.confidence_drift",
    "model.inference_slowdown", "model.false_positive_burst", "telemetry.exporter_raises",
    "telemetry.exporter_hangs", "telemetry.exporter_slow", "telemetry.queue_overflow",
))


def _seams(bot: SniperBot, pipeline: Any) -> dict[str, Any]:
    knobs = bot.model.knobs
    return {
        "transport": bot.client.transport,
        "pool hook": "get_connection" in vars(bot.cache.client.connection_pool),
        "knobs": (knobs.confidence_drift, knobs.inference_slowdown, knobs.false_positive_burst),
        "partial_fill_rate": bot.exchange.conditions.partial_fill_rate,
        "launches called off": sorted(
            spec.symbol for spec in bot.exchange.listings()
            if spec.symbol in bot.exchange.called_off
            and bot.exchange.launch_time(spec) > bot.clock.time()),
        "clocks": (bot.exchange.clock, bot.model.clock, bot.cache.clock, bot.client.clock),
        "exporters": (pipeline.exporter, pipeline.log_exporter),
        "queue": (pipeline.max_queue, pipeline.max_batch),
    }


class Rollbacks(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = SimClock().start()
        self.bot = SniperBot.create(seed=0, clock=self.clock)
        self._recording = export_pipeline().enabled()
        self.pipeline = self._recording.__enter__()
        self.targets = Targets.of_bot(self.bot, self.pipeline)
        self.before = _seams(self.bot, self.pipeline)
        self.active: list[Fault] = []
        self.now = 0.0
        self.count = 0

    @rule(spec=fault_specs(duration=600.0, names=NAMES))
    def inject(self, spec: Any) -> None:
        f = spec.build(self.count, 0)
        self.count += 1
        f.inject(self.targets.get(f.target), at=self.now)
        self.active.append(f)

    @precondition(lambda self: self.active)
    @rule(data=st.data())
    def rollback(self, data: st.DataObject) -> None:
        f = self.active.pop(data.draw(st.integers(0, len(self.active) - 1)))
        f.rollback(at=self.now)
        assert f.records[-1].ended == self.now

    @rule(seconds=st.sampled_from([1.0, 5.0, 30.0]))
    def advance(self, seconds: float) -> None:
        self.bot.run_for(seconds)
        self.now += seconds
        for f in self.active:
            f.step(self.targets.get(f.target), self.now, seconds)
        self.pipeline.pump(self.now)

    @invariant()
    def no_fault_is_lost(self) -> None:
        assert all(f.active for f in self.active)

    def teardown(self) -> None:
        try:
            for f in reversed(self.active):
                f.rollback(at=self.now)
            assert _seams(self.bot, self.pipeline) == self.before
        finally:
            self._recording.__exit__(None, None, None)
            self.bot.close()
            self.clock.stop()


Rollbacks.TestCase.settings = settings(
    max_examples=15, stateful_step_count=12, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRollbacks = Rollbacks.TestCase
