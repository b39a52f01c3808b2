"""The example sniper's own tests, written as its team would: only the public fixtures
(`telemetry`, `clock`, `chaos`, `exchange_server`) and the real ccxt, aiohttp and redis
clients, instrumented by the contrib packages."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterator
from typing import Any

import ccxt.async_support as ccxt
import fakeredis
import pytest
from ccxt_sniper import SNIPED, Sniper, client_order_id, instrument, instrumentors

from pytest_sniper_otel import span
from pytest_sniper_otel.chaos import fault
from pytest_sniper_otel.flow.exchange import ListingSpec

# two listings: one trading, one opening ten minutes in
LISTINGS = [ListingSpec("SNIPEUSDT", "v-snipe", launch_offset=-60),
            ListingSpec("LATERUSDT", "v-later", launch_offset=600)]
# no risk-control rejects: each listing's outcome is known in advance
pytestmark = pytest.mark.sniper_otel_exchange(listings=LISTINGS)


@pytest.fixture(autouse=True)
def no_rejects(exchange_server: Any) -> None:
    exchange_server.exchange.conditions.reject_rate = 0.0


@pytest.fixture(scope="module", autouse=True)
def instrumented() -> Iterator[None]:
    instrument()
    yield
    for instrumentor in instrumentors():
        instrumentor.uninstrument()


@pytest.fixture
def run(exchange_server: Any, clock: Any) -> Iterator[Any]:
    """``run(seconds)`` drives a fresh sniper on an event loop on the test's clock."""
    loop = asyncio.new_event_loop()
    exchange = ccxt.mexc(exchange_server.ccxt_config())
    cache = fakeredis.FakeAsyncRedis()
    sniper = Sniper(exchange, cache)

    def run_for(seconds: float) -> Sniper:
        loop.run_until_complete(sniper.run(seconds))
        return sniper

    run_for.cache = cache  # type: ignore[attr-defined]
    run_for.loop = loop  # type: ignore[attr-defined]
    yield run_for
    loop.run_until_complete(exchange.close())
    loop.run_until_complete(cache.aclose())
    loop.close()


def test_buys_each_listing_once_when_it_opens(run: Any, exchange_server: Any, clock: Any,
                                              telemetry: Any) -> None:
    start = clock.time()
    sniper = run(15 * 60)  # fifteen simulated minutes, in no wall time to speak of
    # Real waits count in simulated time (a DNS lookup on the loop's executor, an answer in
    # flight), so a poll running at the end can take the run a little past its 900 s: on a
    # loaded CI machine it was 3.8 s.
    assert 900 - 1 <= clock.time() - start < 900 + 60
    orders = exchange_server.exchange.orders
    assert sorted(orders) == [client_order_id("LATER/USDT"), client_order_id("SNIPE/USDT")]
    later = orders[client_order_id("LATER/USDT")]
    # a poll every 5 s, plus ccxt's own rate limiting (it sleeps on the simulated clock):
    # bought within a poll or two of the opening
    assert 0 <= later.created_at - exchange_server.exchange.launch_time(LISTINGS[1]) <= 15
    assert telemetry.metric("sniper_snipes_total").value == 2
    assert telemetry.metric("sniper_polls_total").value == sniper.polls > 60
    # the bot's spans sit over the real HTTP and Redis spans of the instrumentations
    telemetry.assert_span_tree(span("sniper.poll", attributes={"sniper.bought": 1}, children=[
        span("sniper.snipe", attributes={"sniper.symbol": "SNIPE/USDT"}, children=[
            span("GET", kind="CLIENT"), span("POST", kind="CLIENT"),
            span("SADD", kind="CLIENT"), span("HSET", kind="CLIENT")]),
    ]))


def test_signatures_stay_out_of_the_telemetry(run: Any, exchange_server: Any,
                                              telemetry: Any) -> None:
    run(60)
    urls = [s.attributes["http.url"] for s in telemetry.find_spans("GET", kind="CLIENT")]
    assert urls and not any("?" in u for u in urls)  # the url_filter cut the query
    telemetry.assert_no_secrets(exchange_server.api_secret, re.compile(r"signature=\w+"))


def test_backs_off_in_simulated_time_while_the_exchange_is_down(
    run: Any, chaos: Any, exchange_server: Any, clock: Any, telemetry: Any,
) -> None:
    chaos.bind(exchange=exchange_server)
    chaos.inject(fault("exchange.http_error", duration="5m", status=503))
    sniper = run(5 * 60)
    # 10, 20, 40, 60, 60, 60 seconds between failed polls
    assert sniper.failures == 1 + 6 and exchange_server.exchange.orders == {}
    assert telemetry.metric("sniper_errors_total",
                            {"error_type": "ExchangeNotAvailable"}).value == sniper.failures
    failed = telemetry.find_spans("sniper.poll", status="ERROR")
    assert len(failed) == sniper.failures
    # the pause from the end of one failed poll to the start of the next
    gaps = [round((b.span.start_time - a.span.end_time) / 1e9)
            for a, b in itertools.pairwise(failed)]
    assert gaps == [10, 20, 40, 60, 60, 60]
    chaos.rollback()
    run(60)
    assert sorted(exchange_server.exchange.orders) == [client_order_id("SNIPE/USDT")]


def test_a_lost_answer_does_not_buy_twice(run: Any, chaos: Any, exchange_server: Any,
                                          telemetry: Any) -> None:
    chaos.bind(exchange=exchange_server)
    # the order goes through but its answer never comes: the client times out (simulated)
    chaos.inject(fault("exchange.no_answer", endpoints=("order.place",), server_acted=True))
    sniper = run(60)
    # ccxt's 10 s timeout, in simulated time
    timeouts = telemetry.find_spans("POST", kind="CLIENT", status="ERROR")
    assert timeouts and {round(s.duration_ms) for s in timeouts} == {10_000}
    assert telemetry.metric("sniper_errors_total",
                            {"error_type": "RequestTimeout"}).value == sniper.failures >= 2
    chaos.rollback()
    run(120)
    # the retry found the first order by its client order id
    assert sorted(exchange_server.exchange.orders) == [client_order_id("SNIPE/USDT")]
    members = run.loop.run_until_complete(run.cache.smembers(SNIPED))
    assert members == {b"SNIPE/USDT"}
