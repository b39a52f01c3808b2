"""ccxt's mexc, sync and async, trades against the served simulator: every call a sniper
needs, and each answer is what the simulator's own books say."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import ccxt
import ccxt.async_support as accxt
import pytest

from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow.exchange import ListingSpec, MarketConditions
from pytest_sniper_otel.flow.server import ExchangeServer

LISTINGS = [
    ListingSpec("SNIPEUSDT", "v-snipe", launch_offset=-600, initial_price=2.0, hype=0.0),
    ListingSpec("LATERUSDT", "v-later", launch_offset=3600),
]
SYMBOL = "SNIPE/USDT"


@pytest.fixture
def server() -> Iterator[ExchangeServer]:
    # On a simulated clock prices only move when the test says so; ccxt's own timestamps
    # (time.time) follow it, so its signatures stay inside the recvWindow.
    with SimClock() as clock, ExchangeServer.create(seed=3, listings=LISTINGS,
                                                    clock=clock) as srv:
        # no partial fills or risk rejects: each order's outcome is known in advance
        srv.exchange.conditions = MarketConditions(partial_fill_rate=0.0, reject_rate=0.0,
                                                   fill_delay=(0.0, 0.0))
        yield srv


def _by_asset(server: ExchangeServer) -> dict[str, float]:
    return {a: round(free + locked, 8) for a, (free, locked) in server.exchange.balances.items()
            if free + locked}


class SyncDriver:
    def __init__(self, server: ExchangeServer) -> None:
        self.ex = ccxt.mexc(server.ccxt_config(timeout=5000))

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.ex, method)(*args, **kwargs)

    def close(self) -> None:
        pass


class AsyncDriver:
    """ccxt.async_support on one event loop for the whole test."""

    def __init__(self, server: ExchangeServer) -> None:
        self.loop = asyncio.new_event_loop()
        self.ex = accxt.mexc(server.ccxt_config(timeout=5000))

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(getattr(self.ex, method)(*args, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.ex.close())
        self.loop.close()


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest, server: ExchangeServer) -> Iterator[Any]:
    driver = SyncDriver(server) if request.param == "sync" else AsyncDriver(server)
    try:
        yield driver
    finally:
        driver.close()


def test_every_sniper_call_matches_the_ledger(call: Any, server: ExchangeServer) -> None:
    sim = server.exchange
    markets = call("load_markets")
    assert set(markets) == {"SNIPE/USDT", "LATER/USDT"}
    assert markets[SYMBOL]["active"] and not markets["LATER/USDT"]["active"]
    assert markets[SYMBOL]["spot"] and markets[SYMBOL]["precision"]["amount"] == 1e-8
    # with credentials, load_markets also asks for currencies (a signed call)
    assert server.endpoints()[:3] == ["currencies", "exchange_info", "contracts"]

    # ccxt's rate limiter sleeps before each call, which moves the simulated clock: prices
    # are compared at the time each answer carries
    def price(at_ms: int) -> float | None:
        return sim.price_at("SNIPEUSDT", at_ms / 1000)

    ticker = call("fetch_ticker", SYMBOL)
    mid = price(ticker["timestamp"])
    assert mid is not None and ticker["last"] == pytest.approx(mid, rel=1e-9)
    book = call("fetch_order_book", SYMBOL, 5)
    assert len(book["bids"]) == len(book["asks"]) == 5
    assert book["bids"][0][0] < price(book["timestamp"]) < book["asks"][0][0]
    candles = call("fetch_ohlcv", SYMBOL, "1m", limit=3)
    now_ms = int(sim.clock.time() * 1000)
    assert len(candles) == 3 and candles[-1][4] == pytest.approx(price(now_ms), rel=1e-9)
    assert candles[-1][0] <= now_ms < candles[-1][0] + 60_000

    bought = call("create_order", SYMBOL, "market", "buy", None, None, {"cost": 100})
    placed = sim.orders[bought["clientOrderId"]]
    assert bought["id"] == placed.order_id
    settled = call("fetch_order", bought["id"], SYMBOL)
    assert settled["status"] == "closed"
    assert settled["filled"] == pytest.approx(placed.executed_qty, abs=1e-8)
    assert settled["cost"] == pytest.approx(100.0)

    resting_price = round(mid * 0.5, 8)  # far below the market: it rests
    resting = call("create_order", SYMBOL, "limit", "buy", 10, resting_price)
    assert resting["status"] == "open"
    assert [o["id"] for o in call("fetch_open_orders", SYMBOL)] == [resting["id"]]
    assert sim.balances["USDT"][1] == pytest.approx(10 * resting_price)
    canceled = call("cancel_order", resting["id"], SYMBOL)
    assert canceled["status"] == "canceled"
    assert call("fetch_open_orders", SYMBOL) == []
    assert sim.balances["USDT"][1] == pytest.approx(0.0)

    sold = call("create_order", SYMBOL, "market", "sell", placed.executed_qty)
    assert call("fetch_order", sold["id"], SYMBOL)["status"] == "closed"

    trades = call("fetch_my_trades", SYMBOL)
    assert [(t["order"], t["side"]) for t in trades] == [(bought["id"], "buy"),
                                                          (sold["id"], "sell")]
    assert [t["amount"] for t in trades] == pytest.approx([f.qty for f in sim.fills])
    assert [t["cost"] for t in trades] == pytest.approx([f.quote for f in sim.fills])

    balance = call("fetch_balance")
    held = _by_asset(server)
    assert {a: balance["total"][a] for a in held} == pytest.approx(held)
    assert balance["USDT"]["total"] == pytest.approx(10_000 - 100 + sim.fills[1].quote)


def test_a_limit_order_fills_when_the_price_crosses_it(server: ExchangeServer) -> None:
    ex = ccxt.mexc(server.ccxt_config())
    ex.load_markets()
    mid = ex.fetch_ticker(SYMBOL)["last"]
    order = ex.create_order(SYMBOL, "limit", "buy", 5, round(mid * 1.5, 8))  # marketable
    filled = ex.fetch_order(order["id"], SYMBOL)
    assert filled["status"] == "closed" and filled["filled"] == 5
    fill = server.exchange.fills[-1]
    assert filled["cost"] == pytest.approx(fill.quote) and fill.price <= mid * 1.5


def test_wrong_secret_is_an_authentication_error(server: ExchangeServer) -> None:
    ex = ccxt.mexc(server.ccxt_config(secret="not-the-secret"))
    with pytest.raises(ccxt.AuthenticationError, match="700002"):
        ex.fetch_balance()


def test_a_clock_out_of_the_recv_window_is_refused(server: ExchangeServer) -> None:
    ex = ccxt.mexc(server.ccxt_config())
    ex.options["timeDifference"] = 10_000  # ccxt signs with a timestamp 10 s behind
    with pytest.raises(ccxt.InvalidNonce, match="outside of the recvWindow"):
        ex.fetch_balance()
