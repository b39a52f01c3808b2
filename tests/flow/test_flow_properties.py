"""Generated calendars, markets, model drift and flaky exchanges: the invariants hold.

Every intent ends in exactly one outcome with its execution span, the ledger reconciles
with the exchange, and every span that started also ended.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from pytest_sniper_otel import Telemetry
from pytest_sniper_otel.capture import install_session
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import (
    ApiRequest,
    ApiResponse,
    BotConfig,
    ListingSpec,
    MarketConditions,
    ModelKnobs,
    SniperBot,
    Transport,
    TransportTimeout,
)


class OpenSpans(SpanProcessor):
    """Spans started and not (yet) ended, while ``tracking``."""

    def __init__(self) -> None:
        self.open: dict[int, str] = {}
        self.tracking = False
        self._lock = threading.Lock()

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        if self.tracking and span.context is not None:
            with self._lock:
                self.open[span.context.span_id] = span.name

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None:
            with self._lock:
                self.open.pop(span.context.span_id, None)


@pytest.fixture(scope="module")
def open_spans() -> Iterator[OpenSpans]:
    install_session()
    provider = trace.get_tracer_provider()
    tracker = OpenSpans()
    provider.add_span_processor(tracker)  # type: ignore[attr-defined]
    yield tracker
    tracker.tracking = False


class Flaky:
    """Each call fails with probability ``rate``: 503, malformed, timeout or a lost reply."""

    def __init__(self, inner: Transport, seed: int, rate: float) -> None:
        self.inner, self.rate = inner, rate
        self.rng = random.Random(seed)

    def __call__(self, request: ApiRequest) -> ApiResponse:
        if self.rng.random() >= self.rate:
            return self.inner(request)
        kind = self.rng.choice(["503", "malformed", "timeout", "lost"])
        if kind == "503":
            return ApiResponse(503, b"upstream busy")
        if kind == "malformed":
            return ApiResponse(200, b'{"partial": ')
        if kind == "lost":
            self.inner(request)
        raise TransportTimeout(kind)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, BotConfig, float]:
    n = draw(st.integers(1, 4))
    specs = [
        ListingSpec(
            symbol=f"H{i:02d}USDT", vcoin_id=f"h{i}",
            launch_offset=draw(st.floats(10, 240)), genuine=draw(st.booleans()),
            hype=draw(st.floats(0, 1)), ready_lead=draw(st.floats(20, 150)),
            initial_price=draw(st.floats(0.001, 5)), volatility=draw(st.floats(0, 0.08)),
        )
        for i in range(n)
    ]
    conditions = MarketConditions(
        partial_fill_rate=draw(st.floats(0, 1)), reject_rate=draw(st.floats(0, 0.6)),
        fill_delay=(0.01, draw(st.floats(0.02, 3.0))),
    )
    model = ModelKnobs(confidence_drift=draw(st.floats(-0.3, 0.3)),
                       false_positive_burst=draw(st.floats(0, 1)))
    config = BotConfig(listings=specs, conditions=conditions, model=model,
                       max_open_positions=draw(st.integers(1, 4)))
    return draw(st.integers(0, 2**16)), config, draw(st.sampled_from([0.0, 0.1, 0.3]))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(scenario=scenarios())
def test_invariants_hold_for_generated_markets(
    scenario: tuple[int, BotConfig, float], telemetry: Telemetry, clock: SimClock,
    open_spans: OpenSpans,
) -> None:
    seed, config, fault_rate = scenario
    telemetry.clear()
    open_spans.open.clear()
    open_spans.tracking = True
    bot = SniperBot.create(seed=seed, clock=clock, config=config)
    try:
        bot.client.transport = Flaky(bot.client.transport, seed, fault_rate)
        bot.run_for(300)
        bot.settle()
        assert bot.ledger.pending() == []
        assert bot.reconcile() == []
        outcomes = Counter(s.attributes["order.client_order_id"]
                           for s in telemetry.find_spans("trading-execution-flow")
                           if "order.outcome" in s.attributes)
        assert outcomes == Counter(i.client_order_id for i in bot.ledger)
        if len(bot.ledger):
            assert telemetry.metric("orders_total").value == len(bot.ledger)
        assert bot.summary()["workflow_errors"] == 0
    finally:
        bot.close()
        open_spans.tracking = False
    assert open_spans.open == {}
    assert {root.name for root in telemetry.roots} <= {"workflow-execution"}
