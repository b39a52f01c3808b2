"""A small sniper that is not ours: ccxt.async_support.mexc, redis.asyncio, the OTel API.

It polls the exchange's markets; each market that is trading and not yet in its Redis set
gets one market buy of ``budget`` USDT (the client order id is derived from the symbol, so
a retry after a lost answer finds the first order instead of buying twice). A failed poll
(timeouts, 5xx, 429, resets, a rejected order: any ccxt error; Redis errors) backs off
exponentially.

Telemetry: spans ``sniper.poll`` and ``sniper.snipe`` around the real HTTP spans of the
aiohttp instrumentation and the Redis spans of the redis instrumentation; counters
``sniper_polls_total``, ``sniper_snipes_total`` and ``sniper_errors_total{error_type}``;
logs through ``logging``. :func:`instrument` turns the contrib instrumentations on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import ccxt.async_support as ccxt
from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode
from redis.exceptions import RedisError

log = logging.getLogger("ccxt_sniper")
tracer = trace.get_tracer("ccxt_sniper")
meter = metrics.get_meter("ccxt_sniper")
POLLS = meter.create_counter("sniper_polls_total", description="market polls")
SNIPES = meter.create_counter("sniper_snipes_total", description="new listings bought")
ERRORS = meter.create_counter("sniper_errors_total",
                              description="failed polls, by the error's type")
SNIPED = "sniper:sniped"


def without_query(url: Any) -> str:
    """Signed MEXC calls carry the signature in the query string: spans get the path."""
    return str(url).split("?", 1)[0]


def instrumentors() -> list[Any]:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    return [AioHttpClientInstrumentor(), RedisInstrumentor()]


def instrument() -> None:
    """The contrib instrumentations this bot relies on (idempotent)."""
    aiohttp_client, redis_client = instrumentors()
    if not aiohttp_client.is_instrumented_by_opentelemetry:
        aiohttp_client.instrument(url_filter=without_query)
    if not redis_client.is_instrumented_by_opentelemetry:
        redis_client.instrument()


def client_order_id(symbol: str) -> str:
    return f"snipe-{symbol.replace('/', '')}"


class Sniper:
    def __init__(
        self, exchange: ccxt.mexc, cache: Any, *, budget: float = 50.0,
        poll_interval: float = 5.0, max_backoff: float = 60.0,
    ) -> None:
        self.exchange = exchange
        self.cache = cache
        self.budget = budget
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.delay = poll_interval
        self.next_poll: float | None = None  # loop time of the next poll
        self.polls = 0
        self.failures = 0

    async def run(self, seconds: float) -> None:
        """Work for ``seconds`` of loop time, polling on schedule (kept across calls)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while True:
            if self.next_poll is None or loop.time() >= self.next_poll - 1e-6:
                await self.poll()
                self.next_poll = loop.time() + self.delay
            if self.next_poll >= end:
                await asyncio.sleep(max(0.0, end - loop.time()))
                return
            await asyncio.sleep(self.next_poll - loop.time())

    async def poll(self) -> None:
        self.polls += 1
        POLLS.add(1)
        with tracer.start_as_current_span("sniper.poll", record_exception=False,
                                          set_status_on_exception=False) as span:
            try:
                bought = await self._poll()
            except (ccxt.BaseError, RedisError) as exc:
                self.failures += 1
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                ERRORS.add(1, {"error_type": type(exc).__name__})
                self.delay = min(self.delay * 2, self.max_backoff)
                log.warning("poll failed (%s); next poll in %gs", type(exc).__name__,
                            self.delay)
                return
            span.set_attribute("sniper.bought", bought)
            self.delay = self.poll_interval

    async def _poll(self) -> int:
        markets = await self.exchange.load_markets(reload=True)
        bought = 0
        for symbol, market in sorted(markets.items()):
            if market["spot"] and market["active"] and not await self.cache.sismember(
                SNIPED, symbol
            ):
                await self.snipe(symbol)
                bought += 1
        return bought

    async def snipe(self, symbol: str) -> None:
        with tracer.start_as_current_span("sniper.snipe", attributes={"sniper.symbol": symbol}):
            ticker = await self.exchange.fetch_ticker(symbol)
            order = await self.exchange.create_order(
                symbol, "market", "buy", None, None,
                {"cost": self.budget, "clientOrderId": client_order_id(symbol)},
            )
            await self.cache.sadd(SNIPED, symbol)
            await self.cache.hset(f"sniper:order:{symbol}",
                                  mapping={"id": order["id"], "last": str(ticker["last"])})
            SNIPES.add(1)
            log.info("bought %s for %g USDT at about %s", symbol, self.budget, ticker["last"])
