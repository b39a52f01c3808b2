"""The exchange fault catalogue and the wire faults act on the served exchange: each one
through a real client (ccxt, aiohttp, httpx, requests), with the client-side effect and
the CLIENT span the contrib instrumentation records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Protocol

import aiohttp
import ccxt
import httpx
import pytest
import requests
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor

from pytest_sniper_otel.chaos import fault
from pytest_sniper_otel.chaos.fixture import ChaosController
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow.client import Credentials, ExchangeClient, RetryPolicy
from pytest_sniper_otel.flow.exchange import (
    ExchangeSimulator,
    ListingSpec,
    MarketConditions,
    SimulatedTransport,
)
from pytest_sniper_otel.flow.server import ExchangeServer
from pytest_sniper_otel.telemetry import Telemetry

OPEN = [ListingSpec("SNIPEUSDT", "v-snipe", launch_offset=-600, initial_price=2.0)]
TICKER = "/api/v3/ticker/price?symbol=SNIPEUSDT"
pytestmark = pytest.mark.sniper_otel_exchange(listings=OPEN, hold_limit=5.0)


class Instrumentor(Protocol):
    """What the fixture uses of OTel's instrumentors (their base class is untyped)."""

    def instrument(self, **kwargs: Any) -> None: ...

    def uninstrument(self, **kwargs: Any) -> None: ...


@pytest.fixture(scope="module", autouse=True)
def instrumented() -> Iterator[None]:
    instrumentors: list[Instrumentor] = [
        AioHttpClientInstrumentor(), HTTPXClientInstrumentor(), RequestsInstrumentor()]
    for i in instrumentors:
        i.instrument()
    yield
    for i in instrumentors:
        i.uninstrument()


def _client_spans(telemetry: Telemetry) -> list[Any]:
    return [s for s in telemetry.find_spans("GET") if s.kind == "CLIENT"]


def _outcome(call: Any) -> str:
    try:
        result = call()
    except Exception as exc:
        return type(exc).__name__
    return f"ok {result!r}"


# -- the catalogue, through ccxt --------------------------------------------------------------
@pytest.mark.parametrize(("spec", "seen"), [
    (fault("exchange.http_error", status=503), "ExchangeNotAvailable"),
    (fault("exchange.rate_limit", retry_after=2), "RateLimitExceeded"),
    (fault("exchange.timeout", after=2.0), "RequestTimeout"),
    (fault("exchange.malformed", mode="not_json"), "ok None"),  # ccxt swallows non-JSON
    (fault("exchange.connection_reset"), "NetworkError"),
    (fault("exchange.truncated_body"), "NetworkError"),
    (fault("exchange.no_answer"), "RequestTimeout"),
], ids=lambda v: getattr(v, "name", ""))
def test_each_fault_reaches_ccxt(
    spec: Any, seen: str, chaos: ChaosController, exchange_server: ExchangeServer,
) -> None:
    ex = ccxt.mexc(exchange_server.ccxt_config(timeout=300))
    ex.load_markets()
    chaos.bind(exchange=exchange_server)
    chaos.inject(spec)
    assert _outcome(lambda: ex.fetch_ticker("SNIPE/USDT")["last"]) == seen
    assert chaos.faults[0].total_hits() == 1


def test_a_timeout_after_the_exchange_acted_leaves_the_order(
    chaos: ChaosController, exchange_server: ExchangeServer,
) -> None:
    ex = ccxt.mexc(exchange_server.ccxt_config(timeout=300))
    ex.load_markets()
    chaos.bind(exchange=exchange_server)
    chaos.inject(fault("exchange.no_answer", endpoints=("order.place",), server_acted=True))
    with pytest.raises(ccxt.RequestTimeout):
        ex.create_order("SNIPE/USDT", "market", "buy", None, None,
                        {"cost": 50, "clientOrderId": "snipe-1"})
    assert exchange_server.exchange.orders["snipe-1"].status in ("NEW", "FILLED",
                                                                  "PARTIALLY_CANCELED")
    chaos.rollback()
    # the retry with the same client order id finds the first order, not a second one
    again = ex.create_order("SNIPE/USDT", "market", "buy", None, None,
                            {"cost": 50, "clientOrderId": "snipe-1"})
    assert list(exchange_server.exchange.orders) == ["snipe-1"]
    assert again["clientOrderId"] == "snipe-1"


def test_partial_fills_bind_through_the_server(
    chaos: ChaosController, exchange_server: ExchangeServer, clock: SimClock,
) -> None:
    exchange_server.exchange.conditions.reject_rate = 0.0
    ex = ccxt.mexc(exchange_server.ccxt_config())
    ex.load_markets()
    chaos.bind(exchange=exchange_server)  # binds `market` to its simulator too
    chaos.inject(fault("market.partial_fills", rate=1.0))
    order = ex.create_order("SNIPE/USDT", "market", "buy", None, None, {"cost": 100})
    clock.tick(1)
    settled = ex.fetch_order(order["id"], "SNIPE/USDT")
    assert settled["status"] == "canceled"  # MEXC's PARTIALLY_CANCELED
    assert settled["info"]["status"] == "PARTIALLY_CANCELED"
    assert 30 <= settled["cost"] <= 90


@pytest.mark.sniper_otel_exchange(seed=2)  # the generated calendar, not the module's listing
def test_calendar_faults_over_http(chaos: ChaosController, exchange_server: ExchangeServer,
                                   clock: SimClock) -> None:
    clock.tick(60)
    chaos.bind(exchange=exchange_server)
    url = exchange_server.url + "/api/v3/calendar"
    clean = httpx.get(url).json()["data"]
    assert clean
    chaos.inject(fault("exchange.duplicate_calendar"))
    entries = httpx.get(url).json()["data"]
    assert entries[0::2] == clean
    assert entries[1::2] == [{**e, "sts": 1, "st": 1, "tt": 1, "tradingOpen": False}
                             for e in clean]
    chaos.rollback()
    chaos.inject(fault("exchange.stale_calendar"))
    first = httpx.get(url).json()
    clock.tick(300)
    assert httpx.get(url).json() == first


# -- time: simulated in process, real across processes ----------------------------------------
@pytest.mark.parametrize(("spec", "seconds"), [
    (fault("exchange.latency", latency=2.0, jitter=0.0), 2.0),
    (fault("exchange.slow_body", seconds=3.0, chunks=6), 3.0),
])
def test_latency_is_simulated_time_for_a_client_in_this_process(
    spec: Any, seconds: float, chaos: ChaosController, exchange_server: ExchangeServer,
    clock: SimClock, telemetry: Telemetry,
) -> None:
    chaos.bind(exchange=exchange_server)
    chaos.inject(spec)
    before = clock.time()
    assert requests.get(exchange_server.url + TICKER, timeout=5).json()["symbol"] == "SNIPEUSDT"
    assert clock.time() - before == pytest.approx(seconds)
    (client,) = _client_spans(telemetry)
    assert client.duration_ms == pytest.approx(seconds * 1000)
    assert client.status == "UNSET"


def test_latency_is_a_real_delay_on_the_real_clock(exchange_server: ExchangeServer,
                                                   telemetry: Telemetry) -> None:
    # no `clock` fixture: the server runs on real time, as for a bot in another process
    f = fault("exchange.latency", latency=0.2, jitter=0.0).build(0, 0)
    f.inject(exchange_server, 0.0)
    try:
        requests.get(exchange_server.url + TICKER, timeout=5)
    finally:
        f.rollback(1.0)
    (client,) = _client_spans(telemetry)
    assert client.duration_ms >= 200


# -- wire faults and the CLIENT spans of instrumented clients ---------------------------------
def _aiohttp_get(url: str, timeout: float = 2.0) -> str:
    async def get() -> str:
        limit = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(timeout=limit) as session, session.get(url) as r:
            return (await r.read()).decode()

    return asyncio.run(get())


@pytest.fixture
def wire(exchange_server: ExchangeServer) -> Iterator[Any]:
    """Inject one fault on the real-clock server for the test (aiohttp's timeouts run on
    its event loop's clock, which a simulated clock would stop)."""
    active: list[Any] = []

    def inject(spec: Any) -> None:
        f = spec.build(len(active), 0)
        f.inject(exchange_server, 0.0)
        active.append(f)

    yield inject
    for f in active:
        f.rollback(0.0)


@pytest.mark.parametrize("name", ["exchange.connection_reset", "exchange.truncated_body"])
def test_a_broken_body_fails_the_read_after_the_aiohttp_span_ended(
    name: str, wire: Any, exchange_server: ExchangeServer, telemetry: Telemetry,
) -> None:
    wire(fault(name))
    assert _outcome(lambda: _aiohttp_get(exchange_server.url + TICKER)) == "ClientPayloadError"
    # aiohttp's instrumentation ends the span at the response headers: a body that breaks
    # afterwards leaves a 200 span. Wrap the body read in a span of your own to see it.
    (client,) = _client_spans(telemetry)
    assert client.status == "UNSET"
    assert client.attributes["http.status_code"] == 200


def test_no_answer_is_a_client_timeout_on_the_aiohttp_span(
    wire: Any, exchange_server: ExchangeServer, telemetry: Telemetry,
) -> None:
    wire(fault("exchange.no_answer"))
    assert _outcome(lambda: _aiohttp_get(exchange_server.url + TICKER, 0.3)) == "TimeoutError"
    (client,) = _client_spans(telemetry)
    assert client.status == "ERROR"
    assert "http.status_code" not in client.attributes
    assert exchange_server.calls[-1].wire == "no_answer"


def test_requests_reads_the_body_inside_its_span(
    wire: Any, exchange_server: ExchangeServer, telemetry: Telemetry,
) -> None:
    wire(fault("exchange.connection_reset"))
    outcome = _outcome(lambda: requests.get(exchange_server.url + TICKER, timeout=2))
    assert outcome == "ChunkedEncodingError"
    (client,) = _client_spans(telemetry)
    assert client.status == "ERROR"
    assert "Connection reset by peer" in (client.status_description or "")
    assert [name for name, _ in client.events] == ["exception"]


@pytest.mark.parametrize(("spec", "status"), [
    (fault("exchange.rate_limit", retry_after=2), 429),
    (fault("exchange.http_error", status=502), 502),
])
def test_error_statuses_on_httpx_and_requests_spans(
    spec: Any, status: int, wire: Any, exchange_server: ExchangeServer, telemetry: Telemetry,
) -> None:
    wire(spec)
    via_httpx = httpx.get(exchange_server.url + TICKER)
    via_requests = requests.get(exchange_server.url + TICKER, timeout=2)
    assert via_httpx.status_code == via_requests.status_code == status
    if status == 429:
        assert via_httpx.headers["Retry-After"] == via_requests.headers["Retry-After"] == "2"
    spans = _client_spans(telemetry)
    assert [(s.status, s.attributes["http.status_code"]) for s in spans] == [("ERROR", status)] * 2


# -- the same faults on the in-process transport ---------------------------------------------
@pytest.mark.parametrize(("name", "error_type"), [
    ("exchange.connection_reset", "transport_error"),
    ("exchange.truncated_body", "transport_error"),
    ("exchange.no_answer", "timeout"),
])
def test_wire_faults_act_on_the_in_process_transport_too(
    name: str, error_type: str, chaos: ChaosController, clock: SimClock, telemetry: Telemetry,
) -> None:
    exchange = ExchangeSimulator(seed=1, clock=clock, api_key="k", api_secret="s",
                                 listings=OPEN, conditions=MarketConditions())
    client = ExchangeClient(transport=SimulatedTransport(exchange, clock, seed=1), clock=clock,
                            credentials=Credentials("k", "s"), seed=1,
                            retry=RetryPolicy(max_attempts=2, timeout=2.0))
    chaos.bind(exchange=client)
    chaos.inject(fault(name))
    with pytest.raises(Exception, match="2 attempts failed"):
        client.get_ticker("SNIPEUSDT")
    attempts = telemetry.find_spans("mexc-api-request")
    assert [s.attributes["error.type"] for s in attempts] == [error_type] * 2
    if error_type == "timeout":
        # the client's 2 s timeout, in simulated time
        assert [s.duration_ms for s in attempts] == [2000.0, 2000.0]


def test_no_answer_is_a_simulated_timeout_for_an_asyncio_client_on_the_clock(
    chaos: ChaosController, exchange_server: ExchangeServer, clock: SimClock,
    telemetry: Telemetry,
) -> None:
    # The server withholds the answer, so the event loop (on the simulated clock) jumps to
    # the client's 30 s timeout instead of waiting for it in real time.
    chaos.bind(exchange=exchange_server)
    chaos.inject(fault("exchange.no_answer"))
    before = clock.time()
    assert _outcome(lambda: _aiohttp_get(exchange_server.url + TICKER, 30.0)) == "TimeoutError"
    assert clock.time() - before == pytest.approx(30.0, abs=0.1)
    (client,) = _client_spans(telemetry)
    assert client.status == "ERROR"
    assert client.duration_ms == pytest.approx(30_000, abs=100)
