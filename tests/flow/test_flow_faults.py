"""The seams the chaos harness uses, exercised one fault at a time: the bot copes, loses
nothing, and its telemetry says what happened."""

from __future__ import annotations

import itertools
from typing import NoReturn

import fakeredis
import pytest
import redis

from pytest_sniper_otel import Telemetry, span
from pytest_sniper_otel.chaos import fault
from pytest_sniper_otel.chaos.fixture import ChaosController
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import (
    BotConfig,
    MarketConditions,
    ModelKnobs,
    Outcome,
    SniperBot,
    Workflow,
)

from .flowkit import Faults, install, listings, one_listing

CALM = MarketConditions(partial_fill_rate=0.0, reject_rate=0.0)
pytestmark = pytest.mark.sniper_otel_bot(seed=1, config=one_listing())


def the_buy(bot: SniperBot):  # type: ignore[no-untyped-def]
    return next(i for i in bot.ledger if i.side == "BUY")


def test_malformed_payload_gives_error_span_error_log_counter_and_no_crash(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    install(sniper_bot).next("order.place", Faults.respond(200, b"{not json"))
    sniper_bot.run_for(101)
    [bad] = telemetry.find_spans("mexc-api-request", status="ERROR",
                                 attributes={"error.type": "malformed"})
    assert bad.attributes["mexc.endpoint"] == "order.place"
    assert "MalformedResponse" in (bad.status_description or "")
    [record] = [r for r in telemetry.logs if r.severity_text == "ERROR"]
    assert record.body == "malformed exchange response rejected"
    assert record.span_id == bad.span.context.span_id
    assert record.attributes["exception.type"] == "MalformedResponse"
    assert telemetry.metric("api_errors_total",
                            {"endpoint": "order.place", "error_type": "malformed"}).value == 1
    assert the_buy(sniper_bot).outcome == Outcome.FILLED  # the retry went through
    assert len(sniper_bot.exchange.orders) == 1
    assert sniper_bot.reconcile() == []


def test_a_schema_violation_is_malformed_too(sniper_bot: SniperBot, telemetry: Telemetry) -> None:
    def drop_executed(payload: dict) -> dict:  # type: ignore[type-arg]
        return {k: v for k, v in payload.items() if k != "executedQty"}

    faults = install(sniper_bot)
    faults.next("order.status", faults.mangle(drop_executed))
    sniper_bot.run_for(101)
    [bad] = telemetry.find_spans("mexc-api-request", attributes={"error.type": "malformed"})
    assert "executedQty: missing" in (bad.status_description or "")
    assert the_buy(sniper_bot).outcome == Outcome.FILLED
    assert sniper_bot.reconcile() == []


def test_a_lost_reply_is_retried_with_the_same_client_order_id_and_fills_once(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    faults = install(sniper_bot)
    faults.next("order.place", faults.lose_reply)
    sniper_bot.run_for(101)
    buy = the_buy(sniper_bot)
    assert buy.outcome == Outcome.FILLED
    assert [f.client_order_id for f in sniper_bot.exchange.fills] == [buy.client_order_id]
    assert faults.calls["order.place"] == 2
    telemetry.assert_span_tree(span("workflow-execution", children=[
        "risk-assessment",
        span("trading-execution-flow", status="OK", children=[
            span("place-order", children=[
                span("mexc-api-request", status="ERROR",
                     attributes={"mexc.attempt": 1, "error.type": "timeout"}),
                span("mexc-api-request", status="UNSET", attributes={"mexc.attempt": 2}),
            ], exact=True),
            "poll-order-status", "track-position",
        ]),
    ]))
    assert sniper_bot.reconcile() == []


def test_429_waits_exactly_retry_after_on_the_simulated_clock(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    install(sniper_bot).next("order.place", Faults.respond(429, b"{}", {"Retry-After": "2.5"}))
    sniper_bot.run_for(101)
    first, second = telemetry.find_spans("mexc-api-request",
                                         attributes={"mexc.endpoint": "order.place"})
    assert first.attributes["error.type"] == "rate_limited"
    assert second.span.start_time is not None and first.span.end_time is not None
    gap_ns = second.span.start_time - first.span.end_time
    assert gap_ns == pytest.approx(2.5e9, abs=1e3)
    assert the_buy(sniper_bot).outcome == Outcome.FILLED


def test_persistent_5xx_ends_the_intent_failed_after_asking_the_exchange(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    install(sniper_bot).always("order.place", Faults.respond(503, b"busy"))
    sniper_bot.run_for(101)
    buy = the_buy(sniper_bot)
    assert buy.outcome == Outcome.FAILED
    assert buy.reason == "the order never reached the exchange"
    attempts = sniper_bot.client.retry.max_attempts
    assert telemetry.metric("api_errors_total", {"endpoint": "order.place",
                                                 "error_type": "server_error"}).value == attempts
    assert telemetry.metric("orders_total", {"outcome": "failed"}).value == 1
    assert sniper_bot.reconcile() == []
    sniper_bot.run_for(5)  # the next safety check looks at the agents
    execution = {"agent_id": "sniper-1/execution"}
    assert telemetry.metric("agent_health_score", execution).value == 0.0
    assert [r.attributes["agent"] for r in telemetry.logs if r.body == "agent unhealthy"] == [
        "sniper-1/execution"]
    assert telemetry.find_spans("safety-check", attributes={"safety.min_agent_health": 0.0})
    # with no further orders, the failures age out of the health window and it recovers
    sniper_bot.run_for(sniper_bot.config.health_window)
    assert telemetry.metric("agent_health_score", execution).value == 1.0


def test_an_unknown_outcome_stays_pending_until_the_exchange_answers(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    faults = install(sniper_bot)
    faults.next("order.place", faults.lose_reply)
    faults.always("order.place", Faults.unreachable).always("order.status", Faults.unreachable)
    sniper_bot.run_for(101)
    buy = the_buy(sniper_bot)
    assert buy.pending  # the exchange filled it, but the bot cannot know yet
    faults.always("order.place", None).always("order.status", None)
    sniper_bot.run_for(10)
    assert buy.outcome == Outcome.FILLED
    telemetry.assert_span_tree(span("workflow-execution",
                                    attributes={"workflow.name": "safety-monitoring"},
                                    children=[span("trading-execution-flow", attributes={
                                        "trading.operation": "order_recovery",
                                        "order.outcome": "filled"}), "safety-check"]))
    assert sniper_bot.reconcile() == []


def test_settle_gives_up_honestly_and_reconcile_says_so(sniper_bot: SniperBot) -> None:
    faults = install(sniper_bot)
    faults.next("order.place", faults.lose_reply)
    faults.always("order.place", Faults.unreachable).always("order.status", Faults.unreachable)
    sniper_bot.run_for(101)
    sniper_bot.settle(max_seconds=20)
    buy = the_buy(sniper_bot)
    assert buy.outcome == Outcome.FAILED and buy.reason.startswith("unresolved")
    assert any(p.startswith(buy.client_order_id) for p in sniper_bot.reconcile())


class UnreachableRedis(fakeredis.FakeRedis):
    def execute_command(self, *args: object, **options: object) -> object:
        raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    def pipeline(self, transaction: bool = True, shard_hint: object = None) -> NoReturn:
        raise redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused.")


@pytest.mark.sniper_otel_bot(seed=1, config=one_listing(), redis=UnreachableRedis())
def test_the_bot_keeps_trading_when_redis_is_down(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(300)
    assert [i.outcome for i in sniper_bot.ledger] == [Outcome.FILLED, Outcome.FILLED]
    assert telemetry.metric("cache_errors_total", {"operation": "get",
                                                   "error_type": "ConnectionError"}).value > 0
    assert telemetry.metric("cache_operation_latency_ms", {"result": "error"}).count > 0
    assert not telemetry.find_spans("redis.get", status="OK")
    assert any(r.body == "cache unavailable, falling through" for r in telemetry.logs)
    assert sniper_bot.summary()["workflow_errors"] == 0
    assert sniper_bot.reconcile() == []


def test_websocket_disconnect_falls_back_to_rest_and_reconnects(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(102)  # holding the position
    sniper_bot.feed.disconnect("chaos", down_for=20)
    sniper_bot.run_for(6)
    assert telemetry.metric("websocket_connections_active").value == 0
    sniper_bot.run_for(40)
    assert sniper_bot.feed.connected
    assert telemetry.find_spans("websocket-reconnect", attributes={"feed.reconnected": False})
    assert telemetry.find_spans("websocket-reconnect", attributes={"feed.reconnected": True})
    assert telemetry.find_spans("mexc-api-request", attributes={"mexc.endpoint": "ticker"})
    telemetry.clear()
    assert telemetry.metric("websocket_connections_active").value == 1


def test_duplicated_and_stale_calendar_entries_are_dropped(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    def duplicate(payload: dict) -> dict:  # type: ignore[type-arg]
        return {**payload, "data": payload["data"] * 2}

    def regress(payload: dict) -> dict:  # type: ignore[type-arg]
        return {**payload, "data": [{**e, "sts": 1, "st": 1, "tt": 1} for e in payload["data"]]}

    faults = install(sniper_bot)
    faults.always("calendar", faults.mangle(duplicate))
    sniper_bot.run_for(61)  # fetches at 0 and 60 (30 was cached)
    faults.always("calendar", faults.mangle(regress))
    sniper_bot.run_for(60)  # the fetch at 120 goes backwards: stale
    fetches = telemetry.find_spans("fetch-calendar-data", attributes={"calendar.cache_hit": False})
    assert [f.attributes["calendar.duplicates_dropped"] for f in fetches] == [1, 1, 0]
    assert [f.attributes["calendar.stale_dropped"] for f in fetches] == [0, 0, 1]
    snipes = telemetry.find_spans("workflow-execution", attributes={"workflow.name": "snipe"})
    assert len(snipes) == 1
    assert sniper_bot.summary()["calendar_dropped"] == {"duplicates": 2, "stale": 1}


@pytest.mark.sniper_otel_bot(seed=1, config=BotConfig(
    listings=listings(100, 110, 120, 130, 215), conditions=MarketConditions(
        partial_fill_rate=0.0, reject_rate=1.0), max_open_positions=5))
def test_consecutive_failures_open_the_breaker_which_later_closes(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(135)
    assert [i.outcome for i in sniper_bot.ledger] == [Outcome.REJECTED] * 3
    [halt] = sniper_bot.halts
    assert halt.reason == "3 consecutive entry failures" and halt.resumed_at is None
    assert telemetry.metric("circuit_breaker_open").value == 1
    telemetry.assert_span_tree(span("workflow-execution", attributes={"workflow.name": "snipe"},
                                    children=[span("risk-assessment", attributes={
                                        "trading.symbol": "L003USDT",
                                        "risk.approved": False,
                                        "risk.reason": "circuit_breaker_open"})], exact=True))
    assert any(r.body == "trading halted: 3 consecutive entry failures" and
               r.severity_text == "WARN" for r in telemetry.logs)
    sniper_bot.exchange.conditions.reject_rate = 0.0
    sniper_bot.run_for(85)  # half-open after 60 s; the +215 s snipe fills and closes it
    assert sniper_bot.safety.breaker == "closed"
    assert halt.resumed_at is not None
    assert the_last(sniper_bot).outcome == Outcome.FILLED
    assert sniper_bot.reconcile() == []


def the_last(bot: SniperBot):  # type: ignore[no-untyped-def]
    return list(bot.ledger)[-1]


@pytest.mark.sniper_otel_bot(seed=1, config=BotConfig(
    listings=listings(100, 140, genuine=False), conditions=CALM,
    model=ModelKnobs(false_positive_burst=1.0, inference_slowdown=10.0)))
def test_model_knobs_make_false_positives_and_slow_inference(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(260)
    # duds scored as ready: the snipes meet a market that never opens
    assert {i.outcome for i in sniper_bot.ledger} == {Outcome.REJECTED}
    assert all(i.reason.startswith("30001") for i in sniper_bot.ledger)
    assert telemetry.metric("pattern_false_positive_rate").value == 1.0
    # each dud's "will open" call is judged once its launch has passed, and counted false
    assert telemetry.metric("pattern_positive_calls_judged_total").value == 2
    assert telemetry.metric("pattern_false_positives_total").value == 2
    assert telemetry.metric("model_accuracy_score").value == 0.0
    assert telemetry.metric("model_inference_latency_ms").min >= 250


@pytest.mark.sniper_otel_bot(seed=1, config=BotConfig(listings=listings(100, 140, 400),
                                                      conditions=CALM))
def test_dud_listings_are_announced_ready_but_never_open(
    sniper_bot: SniperBot, telemetry: Telemetry, chaos: ChaosController
) -> None:
    chaos.bind_bot(sniper_bot)
    duds = chaos.add(fault("market.dud_listings", start=0, duration=200))
    chaos.advance(460, step=5.0, run=sniper_bot.run_for)
    # the launches in the fault's window are called off; the one after it opens
    assert sorted(sniper_bot.exchange.called_off) == ["L000USDT", "L001USDT"]
    assert duds.total_hits() == 2
    buys = {i.symbol: i for i in sniper_bot.ledger if i.side == "BUY"}
    assert sorted(buys) == ["L000USDT", "L001USDT", "L002USDT"]
    for symbol in ("L000USDT", "L001USDT"):  # shown ready, sniped, refused as not open
        assert buys[symbol].outcome == Outcome.REJECTED
        assert buys[symbol].reason.startswith("30001"), buys[symbol].reason
    assert buys["L002USDT"].outcome == Outcome.FILLED
    assert sniper_bot.exchange.balances["USDT"][1] == 0.0  # nothing locked on a dud
    assert sniper_bot.reconcile() == []
    # each "will open" call judged at its launch: the duds' false, the genuine one true
    assert telemetry.metric("pattern_positive_calls_judged_total").value == 3
    assert telemetry.metric("pattern_false_positives_total").value == 2
    assert telemetry.metric("orders_total", {"outcome": "rejected", "side": "BUY"}).value == 2


@pytest.mark.sniper_otel_bot(seed=1, config=BotConfig(listings=listings(100, 140),
                                                      conditions=CALM))
def test_dud_listings_rolled_back_early_let_the_launches_still_to_come_open(
    sniper_bot: SniperBot, chaos: ChaosController
) -> None:
    chaos.bind_bot(sniper_bot)
    duds = chaos.add(fault("market.dud_listings", start=0, duration=600))
    chaos.advance(120, step=5.0, run=sniper_bot.run_for)
    assert sorted(sniper_bot.exchange.called_off) == ["L000USDT", "L001USDT"]
    chaos.rollback()  # before L001's launch: it opens as announced, and is no strike
    assert sniper_bot.exchange.called_off == {"L000USDT"}
    assert duds.total_hits() == 1
    chaos.advance(60, step=5.0, run=sniper_bot.run_for)
    outcomes = {i.symbol: i.outcome for i in sniper_bot.ledger if i.side == "BUY"}
    assert outcomes == {"L000USDT": Outcome.REJECTED, "L001USDT": Outcome.FILLED}
    assert sniper_bot.reconcile() == []


@pytest.mark.sniper_otel_bot(seed=1, config=BotConfig(
    listings=listings(100, 105), conditions=CALM, initial_balance=1_000.0,
    max_position_usd=950.0, max_position_fraction=0.9, max_exposure_fraction=1.0))
def test_a_fill_invalidates_the_cached_balance_so_risk_sizes_from_a_fresh_one(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(106)
    [first] = sniper_bot.ledger
    assert first.outcome == Outcome.FILLED
    assert telemetry.metric("cache_invalidations_total",
                            attributes={"reason": "balance_changed"}).value == 1
    # the second entry is refused by risk (fresh balance), not by the exchange (stale one)
    [risk] = telemetry.find_spans("risk-assessment", attributes={"trading.symbol": "L001USDT"})
    assert risk.attributes["risk.reason"] == "max_exposure"
    [check] = [c for c in risk.children if c.name == "portfolio-check"]
    assert check.attributes["portfolio.free_usd"] == pytest.approx(1_000.0 - first.filled_quote)
    assert [c.attributes["redis.hit"] for c in check.children if c.name == "redis.get"] == ["false"]
    assert sniper_bot.reconcile() == []


@pytest.mark.sniper_otel_bot(seed=1, config=one_listing(
    conditions=MarketConditions(partial_fill_rate=1.0, reject_rate=0.0)))
def test_partial_fills_are_partially_filled_outcomes_that_reconcile(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(101)
    buy = the_buy(sniper_bot)
    assert buy.outcome == Outcome.PARTIALLY_FILLED
    assert 0.3 * buy.quote_qty <= buy.filled_quote <= 0.9 * buy.quote_qty
    assert sniper_bot.positions["SNIPEUSDT"].qty == buy.filled_qty
    assert telemetry.find_spans("poll-order-status",
                                attributes={"order.status": "PARTIALLY_CANCELED"})
    assert telemetry.metric("trading_success_rate").value == 100.0
    assert sniper_bot.reconcile() == []


def test_knobs_turned_on_one_bot_do_not_reach_another_from_the_same_config(clock: SimClock) -> None:
    config = one_listing()
    a = SniperBot.create(seed=1, clock=clock, config=config, redis=fakeredis.FakeRedis())
    b = SniperBot.create(seed=1, clock=clock, config=config, redis=fakeredis.FakeRedis())
    try:
        a.exchange.conditions.reject_rate = 1.0
        a.model.knobs.confidence_drift = -0.5
        a.transport.latency.multiplier = 10.0
        assert b.exchange.conditions.reject_rate == 0.0
        assert b.model.knobs.confidence_drift == 0.0
        assert b.transport.latency.multiplier == 1.0
        assert config.conditions.reject_rate == 0.0
    finally:
        a.close()
        b.close()


def test_a_periodic_workflow_that_overruns_skips_the_slots_it_missed(
    sniper_bot: SniperBot, clock: SimClock
) -> None:
    """A run longer than its period (every order-status poll timing out, say) must not be
    followed by its missed runs back to back: each would be as slow, and the clock would
    run ever further ahead of the schedule (a chaos run once never returned)."""
    runs: list[float] = []

    def slow() -> None:
        runs.append(clock.time())
        clock.tick(60)

    start = clock.time()
    sniper_bot.orchestrator.schedule(start + 1, Workflow("slow", ("poll",), slow), every=5)
    for _ in range(3):
        sniper_bot.run_for(5)
    # one run per call once the clock is ahead of the schedule (the missed slots would
    # make 12 more runs in the second call alone), each a full 60 s apart
    assert len(runs) == 3
    assert runs[0] == pytest.approx(start + 1)
    assert all(later - earlier >= 60 for earlier, later in itertools.pairwise(runs))
    assert clock.time() - start < 3 * 60 + 3 * 5
