"""The served exchange as a plain HTTP client sees it: MEXC's error bodies and codes, its
signature rules, a clean shutdown, loopback only, and the `sniper-otel exchange serve`
command."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import threading
import urllib.parse
from typing import Any

import aiohttp
import pytest
import requests

from pytest_sniper_otel.chaos import fault
from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow.exchange import ExchangeSimulator, ListingSpec, hmac_sha256
from pytest_sniper_otel.flow.server import DEFAULT_API_SECRET, ExchangeServer

OPEN = [ListingSpec("SNIPEUSDT", "v-snipe", launch_offset=-600)]
pytestmark = pytest.mark.sniper_otel_exchange(listings=OPEN)


def _signed(server: ExchangeServer, params: dict[str, Any], *, secret: str = DEFAULT_API_SECRET,
            timestamp: int | None = None) -> str:
    query = urllib.parse.urlencode({
        **params, "timestamp": timestamp if timestamp is not None
        else int(server.clock.time() * 1000)})
    return f"{query}&signature={hmac_sha256(secret, query)}"


def _answer(response: requests.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


def test_public_endpoints_answer_in_mexc_shapes(exchange_server: ExchangeServer,
                                                clock: SimClock) -> None:
    url = exchange_server.url
    assert _answer(requests.get(url + "/api/v3/ping")) == (200, {})
    assert _answer(requests.get(url + "/api/v3/time")) == (
        200, {"serverTime": int(clock.time() * 1000)})
    price = requests.get(url + "/api/v3/ticker/price", params={"symbol": "SNIPEUSDT"}).json()
    assert set(price) == {"symbol", "price"} and isinstance(price["price"], str)
    info = requests.get(url + "/api/v3/exchangeInfo").json()
    assert [(s["symbol"], s["status"], s["baseAsset"]) for s in info["symbols"]] == [
        ("SNIPEUSDT", "1", "SNIPE")]


@pytest.mark.parametrize(("path", "expected"), [
    ("/api/v3/nope", (404, {"code": 404, "msg": "Not Found"})),
    ("/api/v3/ticker/price?symbol=NOPEUSDT", (400, {"code": -1121, "msg": "Invalid symbol."})),
    ("/api/v3/klines?symbol=SNIPEUSDT&interval=7m",
     (400, {"code": 700004, "msg": "Invalid interval."})),
])
def test_errors_are_mexc_bodies(path: str, expected: Any,
                                exchange_server: ExchangeServer) -> None:
    assert _answer(requests.get(exchange_server.url + path)) == expected


@pytest.mark.parametrize(("change", "expected"), [
    ({"secret": "wrong"},
     (401, {"code": 700002, "msg": "Signature for this request is not valid."})),
    ({"key": "wrong"}, (401, {"code": 10072, "msg": "Api key info invalid"})),
    ({"age_ms": 6000},
     (400, {"code": 700003, "msg": "Timestamp for this request is outside of the recvWindow."})),
    ({"recvWindow": 70000}, (400, {"code": 700005, "msg": "recvWindow must less than 60000"})),
    ({}, (200, None)),
])
def test_signed_calls_check_key_timestamp_window_and_signature(
    change: dict[str, Any], expected: Any, exchange_server: ExchangeServer, clock: SimClock,
) -> None:
    params = {"recvWindow": change["recvWindow"]} if "recvWindow" in change else {}
    query = _signed(exchange_server, params, secret=change.get("secret", DEFAULT_API_SECRET),
                    timestamp=int(clock.time() * 1000) - change.get("age_ms", 0))
    key = change.get("key", exchange_server.api_key)
    status, body = _answer(requests.get(exchange_server.url + "/api/v3/account?" + query,
                                        headers={"X-MEXC-APIKEY": key}))
    if expected[1] is None:
        assert status == 200 and body["balances"] == [
            {"asset": "USDT", "free": "10000", "locked": "0"}]
    else:
        assert (status, body) == expected


def test_a_form_body_is_signed_after_the_query(exchange_server: ExchangeServer,
                                               clock: SimClock) -> None:
    query = f"timestamp={int(clock.time() * 1000)}"
    body = "symbol=SNIPEUSDT&side=BUY&type=MARKET&quoteOrderQty=25"
    signature = hmac_sha256(DEFAULT_API_SECRET, query + body)
    response = requests.post(
        f"{exchange_server.url}/api/v3/order?{query}&signature={signature}", data=body,
        headers={"X-MEXC-APIKEY": exchange_server.api_key,
                 "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    assert response.json()["origQuoteOrderQty"] == "25"


def test_every_answer_on_a_kept_alive_connection_reaches_a_loop_on_the_clock(
    exchange_server: ExchangeServer, clock: SimClock,
) -> None:
    """The server writes an answer's head and body separately. With Nagle's algorithm the
    body of a second answer on a connection would wait about 40 ms for the client's delayed
    ACK, after the server stopped counting as busy, and the loop would jump to the
    client's timeout; the server sends without delay, so every answer is there at once."""
    paths = ["/api/v3/time", "/api/v3/ticker/price?symbol=SNIPEUSDT",
             "/api/v3/exchangeInfo", "/api/v3/time"]

    async def get_all() -> list[tuple[int, float]]:
        loop = asyncio.get_running_loop()
        answers = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            for path in paths:
                start = loop.time()
                async with session.get(exchange_server.url + path) as response:
                    await response.read()
                    answers.append((response.status, loop.time() - start))
        return answers

    assert asyncio.run(get_all()) == [(200, 0.0)] * len(paths)


def test_close_releases_a_client_waiting_for_an_answer() -> None:
    server = ExchangeServer.create(listings=OPEN).start()
    fault("exchange.no_answer", hold=60).build(0, 0).inject(server, 0.0)
    outcome: list[str] = []

    def wait() -> None:
        try:
            requests.get(server.url + "/api/v3/ping", timeout=30)
            outcome.append("answered")
        except requests.RequestException as exc:
            outcome.append(type(exc).__name__)

    client = threading.Thread(target=wait)
    client.start()
    for _ in range(1000):  # until the server holds the request (at most 10 s)
        if server.calls:
            break
        threading.Event().wait(0.01)
    server.close()
    client.join(10)
    # the connection closed without an answer: not a 30 s read timeout
    assert outcome == ["ConnectionError"]
    assert not server.running and server.open_connections == 0
    with pytest.raises(RuntimeError, match="not running"):
        server.url  # noqa: B018
    server.close()  # twice is fine


def test_loopback_only() -> None:
    with SimClock() as clock:
        exchange = ExchangeSimulator(seed=0, clock=clock, api_key="k", api_secret="s")
        with pytest.raises(ValueError, match=re.escape("loopback only, got host '0.0.0.0'")):
            ExchangeServer(exchange, api_key="k", api_secret="s", host="0.0.0.0")


def test_the_serve_command_serves_until_interrupted() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_sniper_otel.cli", "exchange", "serve", "--seed", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("MEXC spot v3 simulator on http://127.0.0.1:")
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        assert requests.get(url + "/api/v3/ping", timeout=5).json() == {}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "stopped after 1 request"


def test_the_serve_command_refuses_bad_input() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_sniper_otel.cli", "exchange", "serve", "--port", "70000"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "--port must be 0-65535, got 70000" in done.stderr
