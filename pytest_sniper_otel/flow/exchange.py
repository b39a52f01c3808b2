"""A deterministic MEXC-like exchange: listings calendar, prices, orders, balances.

Everything derives from the seed. Per-entity random streams are keyed by stable names
(``Random(f"{seed}:price:{symbol}")``, ``Random(f"{seed}:fill:{client_order_id}")``), so a
listing's prices and an order's fill do not depend on how often, or in which order, the
bot happens to ask. Time is the simulated clock's.

The simulator speaks MEXC's spot REST API v3 over :class:`ApiRequest` / :class:`ApiResponse`
(JSON bodies, decimals as strings, HMAC-signed private endpoints with ``timestamp`` and
``recvWindow``, MEXC's error bodies and codes); :data:`ROUTES` lists every endpoint and its
logical name. The same :meth:`ExchangeSimulator.handle` answers the in-process
:class:`SimulatedTransport` (the default ``Transport``, which charges the latency model's
delay on the simulated clock) and the HTTP server of :mod:`.server`, so a fault written
once against the ``transport`` seam acts on both. :class:`PriceFeed` is the websocket-like
push channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import string
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..clock import Clock

QUOTE = "USDT"


# -- wire types ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiRequest:
    """One HTTP call. ``endpoint`` is the low-cardinality logical name for telemetry;
    ``params`` of a signed call carry ``timestamp`` and ``signature`` (never log them).
    ``query`` and ``body`` are the bytes as sent when the call came over a wire."""

    method: str
    path: str
    endpoint: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    query: str | None = None
    body: bytes = b""

    def signed_payload(self) -> str:
        """What the signature covers, as MEXC defines it: the query string as sent without
        ``signature``, then the body. In process: the parameters url-encoded in order."""
        if self.query is None:
            return urllib.parse.urlencode(
                [(k, v) for k, v in self.params.items() if k != "signature"]
            )
        kept = [p for p in self.query.split("&") if p and not p.startswith("signature=")]
        return "&".join(kept) + self.body.decode("utf-8", "replace")


WIRE_KINDS = ("reset", "truncate", "no_answer", "slow")


@dataclass(frozen=True)
class WireFault:
    """A broken delivery of an answer: what only a wire can do.

    * ``reset``: the connection is reset after ``fraction`` of the body went out;
    * ``truncate``: the connection closes cleanly after ``fraction`` of the body, short of
      the announced ``Content-Length``;
    * ``no_answer``: the request is read and never answered (the client times out); the
      server holds the connection for at most ``seconds`` of real time;
    * ``slow``: the body trickles out in ``chunks`` over ``seconds`` on the server's clock.
    """

    kind: str
    fraction: float = 0.5
    seconds: float = 0.0
    chunks: int = 8

    def __post_init__(self) -> None:
        if self.kind not in WIRE_KINDS:
            raise ValueError(f"wire fault kind must be one of {', '.join(WIRE_KINDS)}, "
                             f"got {self.kind!r}")

    def cut(self, body: bytes) -> int:
        """How many body bytes go out before a reset or a truncation."""
        return min(len(body) - 1, int(len(body) * self.fraction)) if body else 0


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    wire: WireFault | None = None

    def json(self) -> Any:
        return json.loads(self.body)


Transport = Callable[[ApiRequest], ApiResponse]
"""The exchange client's seam: wrap it to inject faults."""


class TransportError(Exception):
    """The call did not produce a response (connection reset, DNS, ...)."""


class TransportTimeout(TransportError):
    """No response within the client's timeout. The server may still have acted."""


def receive(response: ApiResponse, clock: Clock, timeout: float) -> ApiResponse:
    """What a client in this process gets from ``response``: the in-process counterpart of
    what the HTTP server does with a :class:`WireFault` on a socket. Slow bytes and a
    missing answer cost ``clock`` time; a reset or a short body is a transport error."""
    wire = response.wire
    if wire is None:
        return response
    if wire.kind == "no_answer":
        clock.tick(timeout)
        raise TransportTimeout(f"no response within {timeout:g}s")
    if wire.kind == "slow":
        clock.tick(wire.seconds)
        return replace(response, wire=None)
    sent, total = wire.cut(response.body), len(response.body)
    if wire.kind == "reset":
        raise TransportError(f"connection reset by peer after {sent} of {total} body bytes")
    raise TransportError(f"response ended after {sent} of {total} body bytes")


def sign(secret: str, params: Mapping[str, str]) -> str:
    """MEXC's HMAC-SHA256 over the url-encoded parameters in order (without ``signature``)."""
    return hmac_sha256(secret, urllib.parse.urlencode(
        [(k, v) for k, v in params.items() if k != "signature"]))


def hmac_sha256(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _floor8(value: float) -> float:
    return math.floor(value * 1e8 + 1e-6) / 1e8


def _dec(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".") or "0"


# -- market data -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ListingSpec:
    """A new listing. ``launch_offset`` is seconds after the exchange opened; a listing that
    is not ``genuine`` shows early signals but never opens for trading."""

    symbol: str
    vcoin_id: str
    launch_offset: float
    genuine: bool = True
    hype: float = 0.5
    ready_lead: float = 120.0
    initial_price: float = 0.5
    volatility: float = 0.02


@dataclass
class MarketConditions:
    """Exchange-side knobs (chaos may change them between steps)."""

    partial_fill_rate: float = 0.15
    reject_rate: float = 0.02
    fill_delay: tuple[float, float] = (0.02, 0.25)
    slippage: float = 0.002
    calendar_horizon: float = 1200.0
    calendar_lookback: float = 120.0


@dataclass
class ExchangeOrder:
    """A market order settles once, ``settle_at``; a limit order (``price`` > 0) rests
    until the price path crosses it or it is canceled."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    quote_qty: float
    base_qty: float
    created_at: float
    settle_at: float
    status: str = "NEW"
    executed_qty: float = 0.0
    quote_filled: float = 0.0
    order_type: str = "MARKET"
    price: float = 0.0
    updated_at: float = 0.0
    checked_until: int = -1  # limit orders: the last price step already compared


@dataclass(frozen=True)
class Fill:
    client_order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    quote: float
    time: float
    order_id: str = ""
    trade_id: str = ""
    maker: bool = False


FINAL_STATUSES = frozenset({"FILLED", "PARTIALLY_CANCELED", "CANCELED"})
ORDER_STATUSES = FINAL_STATUSES | {"NEW"}

# MEXC's error codes.
ERR_SIGNATURE = 700002
ERR_TIMESTAMP = 700003
ERR_RECV_WINDOW = 700005
ERR_API_KEY = 10072
ERR_PARAM = 700004
ERR_SYMBOL = 10007
ERR_INVALID_SYMBOL = -1121
ERR_NOT_OPEN = 30001
ERR_BALANCE = 30004
ERR_RISK_REJECT = 30027
ERR_NO_ORDER = -2013
ERR_CANCEL_REJECTED = -2011
ERR_NOT_FOUND = 404

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000

KLINE_INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "60m": 3600, "4h": 14_400,
                   "1d": 86_400, "1W": 604_800, "1M": 2_592_000}


@dataclass(frozen=True)
class Route:
    """One endpoint: its logical name (faults' ``endpoints``, telemetry), whether it is
    signed, and the simulator method answering it."""

    endpoint: str
    signed: bool
    handler: str


ROUTES: Mapping[tuple[str, str], Route] = {
    ("GET", "/api/v3/ping"): Route("ping", False, "_ping"),
    ("GET", "/api/v3/time"): Route("time", False, "_time"),
    ("GET", "/api/v3/exchangeInfo"): Route("exchange_info", False, "_exchange_info"),
    ("GET", "/api/v3/ticker/price"): Route("ticker", False, "_ticker"),
    ("GET", "/api/v3/ticker/24hr"): Route("ticker.24hr", False, "_ticker_24hr"),
    ("GET", "/api/v3/depth"): Route("depth", False, "_depth"),
    ("GET", "/api/v3/klines"): Route("klines", False, "_klines"),
    # the new-listings calendar (MEXC serves it off the v3 API; this is our documented path)
    ("GET", "/api/v3/calendar"): Route("calendar", False, "_calendar"),
    ("POST", "/api/v3/order"): Route("order.place", True, "_place_order"),
    ("GET", "/api/v3/order"): Route("order.status", True, "_query_order"),
    ("DELETE", "/api/v3/order"): Route("order.cancel", True, "_cancel_order"),
    ("GET", "/api/v3/openOrders"): Route("orders.open", True, "_open_orders"),
    ("GET", "/api/v3/allOrders"): Route("orders.all", True, "_all_orders"),
    ("GET", "/api/v3/myTrades"): Route("trades", True, "_my_trades"),
    ("GET", "/api/v3/account"): Route("account", True, "_account"),
    ("GET", "/api/v3/capital/config/getall"): Route("currencies", True, "_currencies"),
    # ccxt's mexc always asks for swap markets too: this exchange lists none
    ("GET", "/api/v1/contract/detail"): Route("contracts", False, "_contracts"),
}


# every logical endpoint the exchange serves (what a fault's ``endpoints=`` may name)
ENDPOINTS: tuple[str, ...] = tuple(dict.fromkeys(r.endpoint for r in ROUTES.values()))


def endpoint_of(method: str, path: str) -> str:
    """The logical endpoint name of a call, ``unknown`` for a path no route serves."""
    route = ROUTES.get((method, path))
    return route.endpoint if route else "unknown"


class ExchangeSimulator:
    """The exchange. Call :meth:`handle` through a transport; inspect ``orders``/``fills``."""

    SPACING = 600.0  # generated listings come in windows of ten minutes

    def __init__(
        self,
        *,
        seed: int,
        clock: Clock,
        api_key: str,
        api_secret: str,
        listings: Sequence[ListingSpec] | None = None,
        initial_balance: float = 10_000.0,
        conditions: MarketConditions | None = None,
    ) -> None:
        self.seed = seed
        self.clock = clock
        self.epoch = clock.time()
        self.conditions = conditions or MarketConditions()
        self._api_key = api_key
        self._api_secret = api_secret
        self.initial_balance = initial_balance
        self.balances: dict[str, list[float]] = {QUOTE: [initial_balance, 0.0]}  # free, locked
        self.orders: dict[str, ExchangeOrder] = {}  # by client order id
        self._order_ids: dict[str, str] = {}  # order id -> client order id
        self.fills: list[Fill] = []
        self._listings: dict[str, ListingSpec] = {}
        # launches called off (the ``market.dud_listings`` fault): announced, shown ready on
        # the calendar, but never open for trading
        self.called_off: set[str] = set()
        self._generated_windows: float = -1 if listings is None else math.inf
        for spec in listings or ():
            self._listings[spec.symbol] = spec
        self._paths: dict[str, list[float]] = {}
        self._path_rngs: dict[str, random.Random] = {}
        self._reject_rng = random.Random(f"{seed}:reject")
        self._order_seq = 0
        # the HTTP server answers from several threads; one call at a time acts
        self._lock = threading.RLock()

    # -- calendar ----------------------------------------------------------------------
    def _ensure_generated(self, until_offset: float) -> None:
        while self._generated_windows < until_offset // self.SPACING:
            self._generated_windows += 1
            window = int(self._generated_windows)
            rng = random.Random(f"{self.seed}:calendar:{window}")
            for i in range(rng.randint(4, 7)):
                symbol = ""
                while not symbol or symbol in self._listings:
                    symbol = "".join(rng.choices(string.ascii_uppercase, k=4)) + QUOTE
                start = 90.0 if window == 0 else 0.0
                self._listings[symbol] = ListingSpec(
                    symbol=symbol,
                    vcoin_id=f"v{window:03d}{i:02d}{rng.getrandbits(24):06x}",
                    launch_offset=window * self.SPACING + rng.uniform(start, self.SPACING),
                    genuine=rng.random() < 0.8,
                    hype=round(rng.random(), 3),
                    ready_lead=rng.uniform(60.0, 240.0),
                    initial_price=round(10 ** rng.uniform(-2.5, 0.5), 6),
                    volatility=rng.uniform(0.01, 0.03),
                )

    def listings(self) -> list[ListingSpec]:
        self._ensure_generated(self.clock.time() - self.epoch + self.conditions.calendar_horizon)
        return sorted(self._listings.values(), key=lambda s: (s.launch_offset, s.symbol))

    def launch_time(self, spec: ListingSpec) -> float:
        return self.epoch + spec.launch_offset

    def ready_state(self, spec: ListingSpec, now: float) -> tuple[int, int, int]:
        """(sts, st, tt): (2, 2, 4) is the ready signal; only genuine listings reach it."""
        to_launch = self.launch_time(spec) - now
        if to_launch <= spec.ready_lead:
            if spec.genuine:
                return (2, 2, 4)
            # A dud's signal stalls one step short; the 'hype' ones look almost ready.
            return (2, 2, 1) if spec.hype > 0.5 else (2, 1, 1)
        if to_launch <= 2 * spec.ready_lead:
            return (2, 1, 1)
        return (1, 1, 1)

    def is_open(self, spec: ListingSpec, now: float) -> bool:
        return spec.genuine and spec.symbol not in self.called_off \
            and now >= self.launch_time(spec)

    # -- prices --------------------------------------------------------------------------
    def price_at(self, symbol: str, now: float) -> float | None:
        """Price at ``now`` (one step per second after launch), None when not trading."""
        spec = self._listings.get(symbol)
        if spec is None or not self.is_open(spec, now):
            return None
        return self._step_price(spec, int(now - self.launch_time(spec)))

    def _step_price(self, spec: ListingSpec, step: int) -> float:
        path = self._paths.setdefault(spec.symbol, [spec.initial_price])
        rng = self._path_rngs.setdefault(spec.symbol,
                                         random.Random(f"{self.seed}:price:{spec.symbol}"))
        while len(path) <= step:
            # pump for the first minute (stronger with hype), then a slow bleed
            drift = spec.hype * 0.006 if len(path) < 60 else -0.002
            path.append(path[-1] * math.exp(drift + rng.gauss(0.0, spec.volatility)))
        return path[step]

    # -- orders ------------------------------------------------------------------------------
    def _settle_due(self, now: float) -> None:
        for order in self.orders.values():
            if order.status != "NEW":
                continue
            if order.order_type == "LIMIT":
                self._match_limit(order, now)
            elif order.settle_at <= now:
                self._settle(order)

    def _settle(self, order: ExchangeOrder) -> None:
        rng = random.Random(f"{self.seed}:fill:{order.client_order_id}")
        fraction = 1.0
        if rng.random() < self.conditions.partial_fill_rate:
            fraction = round(rng.uniform(0.3, 0.9), 4)
        mid = self.price_at(order.symbol, order.settle_at)
        base_asset = order.symbol.removesuffix(QUOTE)
        quote_bal = self.balances[QUOTE]
        asset_bal = self.balances.setdefault(base_asset, [0.0, 0.0])
        if mid is None:  # the market closed under the order: nothing fills
            fraction = 0.0
            mid = 0.0
        # quantities and amounts have a step of 1e-8, as on a real exchange
        if order.side == "BUY":
            price = mid * (1 + self.conditions.slippage)
            spent = round(order.quote_qty * fraction, 8)
            qty = _floor8(spent / price) if price else 0.0
            quote_bal[1] -= order.quote_qty
            quote_bal[0] += order.quote_qty - spent
            asset_bal[0] += qty
        else:
            price = mid * (1 - self.conditions.slippage)
            qty = _floor8(order.base_qty * fraction)
            spent = round(qty * price, 8)
            asset_bal[1] -= order.base_qty
            asset_bal[0] += order.base_qty - qty
            quote_bal[0] += spent
        order.executed_qty, order.quote_filled = qty, spent
        order.updated_at = order.settle_at
        order.status = (
            "FILLED" if fraction == 1.0 else "PARTIALLY_CANCELED" if fraction > 0 else "CANCELED"
        )
        if qty > 0:
            self._record_fill(order, qty, price, spent, order.settle_at, maker=False)

    def _match_limit(self, order: ExchangeOrder, now: float) -> None:
        """Fill a resting limit order, whole, at the first price step that crosses it."""
        spec = self._listings[order.symbol]
        if not self.is_open(spec, now):
            return
        launch = self.launch_time(spec)
        first = max(order.checked_until + 1, int(order.created_at - launch), 0)
        last = int(now - launch)
        for step in range(first, last + 1):
            price = self._step_price(spec, step)
            crossed = price <= order.price if order.side == "BUY" else price >= order.price
            if crossed:
                self._fill_limit(order, price, launch + step)
                return
        order.checked_until = max(order.checked_until, last)

    def _fill_limit(self, order: ExchangeOrder, price: float, at: float) -> None:
        base_asset = order.symbol.removesuffix(QUOTE)
        quote_bal = self.balances[QUOTE]
        asset_bal = self.balances.setdefault(base_asset, [0.0, 0.0])
        qty = order.base_qty
        spent = round(qty * price, 8)
        if order.side == "BUY":
            quote_bal[1] -= order.quote_qty  # the lock was qty x limit price
            quote_bal[0] += order.quote_qty - spent
            asset_bal[0] += qty
        else:
            asset_bal[1] -= qty
            quote_bal[0] += spent
        order.executed_qty, order.quote_filled = qty, spent
        order.status, order.updated_at = "FILLED", at
        self._record_fill(order, qty, price, spent, at, maker=at > order.created_at)

    def _record_fill(
        self, order: ExchangeOrder, qty: float, price: float, quote: float, at: float, *,
        maker: bool,
    ) -> None:
        self.fills.append(Fill(
            order.client_order_id, order.symbol, order.side, qty, price, quote, at,
            order_id=order.order_id, trade_id=f"{order.order_id}-{len(self.fills) + 1}",
            maker=maker,
        ))

    def settle(self) -> None:
        """Settle every order due by now (the bot's view never needs this; tests might)."""
        with self._lock:
            self._settle_due(self.clock.time())

    # -- the REST surface ------------------------------------------------------------------
    def handle(self, request: ApiRequest) -> ApiResponse:
        with self._lock:
            now = self.clock.time()
            self._settle_due(now)
            route = ROUTES.get((request.method, request.path))
            if route is None:
                return _error(404, ERR_NOT_FOUND, "Not Found")
            if route.signed:
                denied = self._authenticate(request, now)
                if denied is not None:
                    return denied
            answer: Callable[[Mapping[str, str], float], ApiResponse] = getattr(
                self, route.handler)
            return answer(request.params, now)

    def _authenticate(self, request: ApiRequest, now: float) -> ApiResponse | None:
        key = next((v for k, v in request.headers.items() if k.lower() == "x-mexc-apikey"), "")
        if not hmac.compare_digest(key, self._api_key):
            return _error(401, ERR_API_KEY, "Api key info invalid")
        params = request.params
        try:
            timestamp = int(params["timestamp"])
        except (KeyError, ValueError):
            return _error(400, ERR_PARAM, "Mandatory parameter 'timestamp' was not sent, "
                                          "was empty/null, or malformed.")
        try:
            window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except ValueError:
            return _error(400, ERR_PARAM, "Param 'recvWindow' is malformed.")
        if window > MAX_RECV_WINDOW_MS:
            return _error(400, ERR_RECV_WINDOW, "recvWindow must less than 60000")
        server_ms = int(now * 1000)
        if timestamp >= server_ms + 1000 or server_ms - timestamp > window:
            return _error(400, ERR_TIMESTAMP,
                          "Timestamp for this request is outside of the recvWindow.")
        given = params.get("signature", "")
        expected = hmac_sha256(self._api_secret, request.signed_payload())
        if not hmac.compare_digest(given, expected):
            return _error(401, ERR_SIGNATURE, "Signature for this request is not valid.")
        return None

    # public ------------------------------------------------------------------------------
    def _ping(self, params: Mapping[str, str], now: float) -> ApiResponse:
        return _ok({})

    def _time(self, params: Mapping[str, str], now: float) -> ApiResponse:
        return _ok({"serverTime": int(now * 1000)})

    def _exchange_info(self, params: Mapping[str, str], now: float) -> ApiResponse:
        wanted = {s for s in params.get("symbols", params.get("symbol", "")).split(",") if s}
        symbols = []
        for spec in self.listings():
            if wanted and spec.symbol not in wanted:
                continue
            symbols.append({
                "symbol": spec.symbol, "status": "1" if self.is_open(spec, now) else "2",
                "baseAsset": spec.symbol.removesuffix(QUOTE), "baseAssetPrecision": 8,
                "quoteAsset": QUOTE, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"], "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False, "quoteAmountPrecision": "1",
                "baseSizePrecision": "0", "permissions": ["SPOT"], "filters": [],
                "maxQuoteAmount": "2000000", "makerCommission": "0", "takerCommission": "0",
                "quoteOrderQtyMarketAllowed": True, "fullName": spec.symbol.removesuffix(QUOTE),
            })
        if wanted and not symbols:
            return _error(400, ERR_INVALID_SYMBOL, "Invalid symbol.")
        return _ok({"timezone": "CST", "serverTime": int(now * 1000), "rateLimits": [],
                    "exchangeFilters": [], "symbols": symbols})

    def _calendar(self, params: Mapping[str, str], now: float) -> ApiResponse:
        c = self.conditions
        entries = []
        for spec in self.listings():
            launch = self.launch_time(spec)
            if now - c.calendar_lookback <= launch <= now + c.calendar_horizon:
                sts, st, tt = self.ready_state(spec, now)
                entries.append({
                    "vcoinId": spec.vcoin_id, "symbol": spec.symbol,
                    "firstOpenTime": int(launch * 1000), "sts": sts, "st": st, "tt": tt,
                    "tradingOpen": self.is_open(spec, now),
                })
        return _ok({"code": 0, "data": entries, "serverTime": int(now * 1000)})

    def _trading(
        self, params: Mapping[str, str], now: float
    ) -> tuple[ListingSpec, float] | ApiResponse:
        symbol = params.get("symbol", "")
        spec = self._listings.get(symbol)
        if spec is None:
            return _error(400, ERR_INVALID_SYMBOL, "Invalid symbol.")
        price = self.price_at(symbol, now)
        if price is None:
            return _error(400, ERR_SYMBOL, f"symbol {symbol} not trading")
        return spec, price

    def _ticker(self, params: Mapping[str, str], now: float) -> ApiResponse:
        found = self._trading(params, now)
        if isinstance(found, ApiResponse):
            return found
        spec, price = found
        return _ok({"symbol": spec.symbol, "price": _dec(price)})

    def _ticker_24hr(self, params: Mapping[str, str], now: float) -> ApiResponse:
        found = self._trading(params, now)
        if isinstance(found, ApiResponse):
            return found
        spec, last = found
        launch = self.launch_time(spec)
        end = int(now - launch)
        start = max(0, end - 86_400)
        window = [self._step_price(spec, s) for s in range(start, end + 1)]
        opened = window[0]
        volume, quote_volume, count = self._traded(spec.symbol, launch + start, now + 1)
        bid, ask = self._best(last)
        return _ok({
            "symbol": spec.symbol, "priceChange": _dec_signed(last - opened),
            "priceChangePercent": _dec_signed((last - opened) / opened),
            "prevClosePrice": _dec(opened), "lastPrice": _dec(last), "lastQty": "",
            "bidPrice": _dec(bid), "bidQty": "", "askPrice": _dec(ask), "askQty": "",
            "openPrice": _dec(opened), "highPrice": _dec(max(window)),
            "lowPrice": _dec(min(window)), "volume": _dec(volume),
            "quoteVolume": _dec(quote_volume), "openTime": int((launch + start) * 1000),
            "closeTime": int(now * 1000), "count": count,
        })

    def _best(self, mid: float) -> tuple[float, float]:
        """Best bid and ask: what a market sell and a market buy fill at."""
        s = self.conditions.slippage
        return mid * (1 - s), mid * (1 + s)

    def _traded(self, symbol: str, start: float, end: float) -> tuple[float, float, int]:
        """Volume, quote volume and trade count of this account's fills in [start, end)."""
        fills = [f for f in self.fills if f.symbol == symbol and start <= f.time < end]
        return sum(f.qty for f in fills), sum(f.quote for f in fills), len(fills)

    def _depth(self, params: Mapping[str, str], now: float) -> ApiResponse:
        found = self._trading(params, now)
        if isinstance(found, ApiResponse):
            return found
        spec, mid = found
        limit = _int_param(params, "limit", 100, 1, 5000)
        if limit is None:
            return _error(400, ERR_PARAM, "Param 'limit' is malformed.")
        step = int(now - self.launch_time(spec))
        rng = random.Random(f"{self.seed}:depth:{spec.symbol}:{step}")
        bid, ask = self._best(mid)
        tick = mid * 0.0005
        levels = min(limit, 100)
        bids = [[_dec(bid - i * tick), _dec(round(rng.uniform(50, 5000) / mid, 2))]
                for i in range(levels)]
        asks = [[_dec(ask + i * tick), _dec(round(rng.uniform(50, 5000) / mid, 2))]
                for i in range(levels)]
        return _ok({"lastUpdateId": step + 1, "bids": bids, "asks": asks,
                    "timestamp": int(now * 1000)})

    def _klines(self, params: Mapping[str, str], now: float) -> ApiResponse:
        symbol = params.get("symbol", "")
        spec = self._listings.get(symbol)
        if spec is None:
            return _error(400, ERR_INVALID_SYMBOL, "Invalid symbol.")
        seconds = KLINE_INTERVALS.get(params.get("interval", ""))
        if seconds is None:
            return _error(400, ERR_PARAM, "Invalid interval.")
        limit = _int_param(params, "limit", 500, 1, 1000)
        start_ms = _int_param(params, "startTime", 0, 0, 2**63)
        end_ms = _int_param(params, "endTime", int(now * 1000) + 1, 0, 2**63)
        if limit is None or start_ms is None or end_ms is None:
            return _error(400, ERR_PARAM, "Param 'limit', 'startTime' or 'endTime' is malformed.")
        if not self.is_open(spec, now):
            return _ok([])
        launch = self.launch_time(spec)
        first = max(start_ms / 1000.0, launch)
        stop = min(end_ms / 1000.0, now + 0.001)  # endTime is exclusive
        # candles align on the interval, as MEXC's do; the last one is still forming
        opens = range(int(first // seconds) * seconds, math.ceil(stop), seconds)
        candles = []
        for t in opens:
            lo_step = max(0, math.ceil(t - launch))
            hi_step = min(int(now - launch), math.ceil(t + seconds - launch) - 1)
            if hi_step < lo_step:
                continue
            path = [self._step_price(spec, s) for s in range(lo_step, hi_step + 1)]
            volume, quote_volume, _ = self._traded(symbol, t, t + seconds)
            candles.append([t * 1000, _dec(path[0]), _dec(max(path)), _dec(min(path)),
                            _dec(path[-1]), _dec(volume), (t + seconds) * 1000,
                            _dec(quote_volume)])
        return _ok(candles[-limit:])

    def _contracts(self, params: Mapping[str, str], now: float) -> ApiResponse:
        return _ok({"success": True, "code": 0, "data": []})

    # signed ------------------------------------------------------------------------------
    def _currencies(self, params: Mapping[str, str], now: float) -> ApiResponse:
        assets = [QUOTE, *(s.symbol.removesuffix(QUOTE) for s in self.listings())]
        return _ok([{"coin": a, "name": a, "networkList": []} for a in assets])

    def _place_order(self, params: Mapping[str, str], now: float) -> ApiResponse:
        symbol, side = params.get("symbol", ""), params.get("side", "")
        order_type = params.get("type", "MARKET")
        if side not in ("BUY", "SELL"):
            return _error(400, ERR_PARAM, "Param 'side' must be BUY or SELL.")
        if order_type not in ("MARKET", "LIMIT"):
            return _error(400, ERR_PARAM, f"order type {order_type} is not supported")
        coid = params.get("newClientOrderId", "")
        existing = self.orders.get(coid) if coid else None
        if existing is not None:  # idempotent: a retried request sees the first order
            return _ok(self._order_json(existing))
        spec = self._listings.get(symbol)
        if spec is None:
            return _error(400, ERR_SYMBOL, "symbol not support api")
        if not self.is_open(spec, now):
            return _error(400, ERR_NOT_OPEN, "current trading pair not open")
        try:
            quote_qty = float(params.get("quoteOrderQty", "0"))
            base_qty = float(params.get("quantity", "0"))
            limit_price = float(params.get("price", "0"))
        except ValueError:
            return _error(400, ERR_PARAM, "bad quantity")
        mid = self.price_at(symbol, now) or 0.0
        if order_type == "LIMIT":
            if base_qty <= 0 or limit_price <= 0:
                return _error(400, ERR_PARAM, "a LIMIT order needs quantity and price")
            quote_qty = round(base_qty * limit_price, 8) if side == "BUY" else 0.0
        elif side == "BUY" and quote_qty <= 0 and base_qty > 0:
            # a market buy by quantity spends what that quantity costs now
            quote_qty, base_qty = round(base_qty * self._best(mid)[1], 8), 0.0
        elif side == "SELL" and base_qty <= 0 and quote_qty > 0:
            base_qty, quote_qty = _floor8(quote_qty / self._best(mid)[0]), 0.0
        base_asset = symbol.removesuffix(QUOTE)
        if side == "BUY":
            bal, need = self.balances[QUOTE], quote_qty
        else:
            bal, need = self.balances.setdefault(base_asset, [0.0, 0.0]), base_qty
        if need <= 0:
            return _error(400, ERR_PARAM, "quantity must be positive")
        # Amounts live on a 1e-8 step but are floats here: compare within half a step, or
        # float drift in a balance refuses a sell of exactly what the account holds.
        if bal[0] + 5e-9 < need:
            return _error(400, ERR_BALANCE, "Insufficient position")
        if self._reject_rng.random() < self.conditions.reject_rate:
            return _error(400, ERR_RISK_REJECT, "order rejected by risk control")
        need = min(need, bal[0])
        bal[0] -= need
        bal[1] += need
        self._order_seq += 1
        order_id = f"{self.seed % 100000:05d}{self._order_seq:08d}"
        coid = coid or f"sim-{order_id}"
        lo, hi = self.conditions.fill_delay
        delay = random.Random(f"{self.seed}:delay:{coid}").uniform(lo, hi)
        order = ExchangeOrder(
            order_id=order_id, client_order_id=coid, symbol=symbol, side=side,
            quote_qty=need if side == "BUY" else 0.0,
            base_qty=need if side == "SELL" else base_qty,
            created_at=now, settle_at=now + delay, order_type=order_type,
            price=limit_price if order_type == "LIMIT" else 0.0, updated_at=now,
        )
        self.orders[coid] = order
        self._order_ids[order_id] = coid
        if order_type == "LIMIT":
            self._match_limit(order, now)
        return _ok(self._order_json(order))

    def _find_order(self, params: Mapping[str, str]) -> ExchangeOrder | ApiResponse:
        coid = params.get("origClientOrderId") or self._order_ids.get(params.get("orderId", ""))
        if not params.get("origClientOrderId") and not params.get("orderId"):
            return _error(400, ERR_PARAM, "Param 'origClientOrderId' or 'orderId' must be "
                                          "sent, but both were empty/null!")
        order = self.orders.get(coid or "")
        symbol = params.get("symbol")
        if order is None or (symbol and order.symbol != symbol):
            return _error(400, ERR_NO_ORDER, "Order does not exist.")
        return order

    def _query_order(self, params: Mapping[str, str], now: float) -> ApiResponse:
        order = self._find_order(params)
        if isinstance(order, ApiResponse):
            return order
        return _ok(self._order_json(order))

    def _cancel_order(self, params: Mapping[str, str], now: float) -> ApiResponse:
        order = self._find_order(params)
        if isinstance(order, ApiResponse):
            return order
        if order.status != "NEW":
            return _error(400, ERR_CANCEL_REJECTED, "Unknown order sent.")
        base_asset = order.symbol.removesuffix(QUOTE)
        if order.side == "BUY":
            bal, locked = self.balances[QUOTE], order.quote_qty
        else:
            bal, locked = self.balances[base_asset], order.base_qty
        bal[1] -= locked
        bal[0] += locked
        order.status, order.updated_at = "CANCELED", now
        return _ok(self._order_json(order))

    def _listed(self, params: Mapping[str, str]) -> list[ExchangeOrder] | ApiResponse:
        symbol = params.get("symbol", "")
        if symbol and symbol not in self._listings:
            return _error(400, ERR_INVALID_SYMBOL, "Invalid symbol.")
        return [o for o in self.orders.values() if not symbol or o.symbol == symbol]

    def _open_orders(self, params: Mapping[str, str], now: float) -> ApiResponse:
        orders = self._listed(params)
        if isinstance(orders, ApiResponse):
            return orders
        return _ok([self._order_json(o) for o in orders if o.status == "NEW"])

    def _all_orders(self, params: Mapping[str, str], now: float) -> ApiResponse:
        if not params.get("symbol"):
            return _error(400, ERR_PARAM, "Mandatory parameter 'symbol' was not sent.")
        orders = self._listed(params)
        if isinstance(orders, ApiResponse):
            return orders
        limit = _int_param(params, "limit", 500, 1, 1000) or 500
        start = _int_param(params, "startTime", 0, 0, 2**63) or 0
        chosen = [o for o in orders if o.created_at * 1000 >= start]
        return _ok([self._order_json(o) for o in chosen[-limit:]])

    def _my_trades(self, params: Mapping[str, str], now: float) -> ApiResponse:
        symbol = params.get("symbol", "")
        if not symbol:
            return _error(400, ERR_PARAM, "Mandatory parameter 'symbol' was not sent.")
        if symbol not in self._listings:
            return _error(400, ERR_INVALID_SYMBOL, "Invalid symbol.")
        limit = _int_param(params, "limit", 100, 1, 100) or 100
        start = _int_param(params, "startTime", 0, 0, 2**63) or 0
        end = _int_param(params, "endTime", 2**62, 0, 2**63) or 2**62
        fills = [f for f in self.fills
                 if f.symbol == symbol and start <= f.time * 1000 < end]
        return _ok([{
            "symbol": f.symbol, "id": f.trade_id, "orderId": f.order_id, "orderListId": -1,
            "price": _dec(f.price), "qty": _dec(f.qty), "quoteQty": _dec(f.quote),
            "commission": "0", "commissionAsset": QUOTE, "time": int(f.time * 1000),
            "isBuyer": f.side == "BUY", "isMaker": f.maker, "isBestMatch": True,
            "isSelfTrade": False, "clientOrderId": f.client_order_id,
        } for f in fills[-limit:]])

    def _account(self, params: Mapping[str, str], now: float) -> ApiResponse:
        return _ok({
            "makerCommission": 0, "takerCommission": 0, "buyerCommission": 0,
            "sellerCommission": 0, "canTrade": True, "canWithdraw": True, "canDeposit": True,
            "updateTime": None, "accountType": "SPOT", "permissions": ["SPOT"],
            "balances": [
                {"asset": asset, "free": _dec(free), "locked": _dec(locked)}
                for asset, (free, locked) in sorted(self.balances.items())
            ],
        })

    @staticmethod
    def _order_json(order: ExchangeOrder) -> dict[str, Any]:
        orig = order.base_qty if order.side == "SELL" or order.order_type == "LIMIT" else 0.0
        return {
            "symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
            "clientOrderId": order.client_order_id, "price": _dec(order.price),
            "origQty": _dec(orig), "executedQty": _dec(order.executed_qty),
            "cummulativeQuoteQty": _dec(order.quote_filled), "status": order.status,
            "timeInForce": "GTC" if order.order_type == "LIMIT" else "",
            "type": order.order_type, "side": order.side, "stopPrice": "",
            "icebergQty": "", "time": int(order.created_at * 1000),
            "updateTime": int(order.updated_at * 1000), "isWorking": order.status == "NEW",
            "origQuoteOrderQty": _dec(order.quote_qty if order.order_type == "MARKET" else 0.0),
            "transactTime": int(order.created_at * 1000),
        }


def _dec_signed(value: float) -> str:
    return ("-" + _dec(-value)) if value < 0 else _dec(value)


def _int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int | None:
    """An integer parameter clamped to [lo, hi]; None when it is not an integer."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return min(max(int(raw), lo), hi)
    except ValueError:
        return None


def _ok(payload: Any) -> ApiResponse:
    return ApiResponse(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})


def _error(status: int, code: int, msg: str) -> ApiResponse:
    return ApiResponse(status, json.dumps({"code": code, "msg": msg}).encode(),
                       {"Content-Type": "application/json"})


# -- latency and transport -------------------------------------------------------------------
@dataclass
class LatencyModel:
    """Per-endpoint base latency (seconds) with log-normal jitter; ``multiplier`` slows all."""

    base: Mapping[str, float] = field(default_factory=lambda: {
        "calendar": 0.120, "ticker": 0.040, "order.place": 0.060, "order.status": 0.045,
        "account": 0.050,
    })
    jitter: float = 0.35
    multiplier: float = 1.0

    def sample(self, endpoint: str, rng: random.Random) -> float:
        base = self.base.get(endpoint, 0.080)
        return base * rng.lognormvariate(0.0, self.jitter) * self.multiplier


class SimulatedTransport:
    """The default transport: network delay on the simulated clock, then the exchange."""

    def __init__(
        self, exchange: ExchangeSimulator, clock: Clock, *, seed: int,
        latency: LatencyModel | None = None,
    ) -> None:
        self.exchange = exchange
        self.clock = clock
        self.latency = latency or LatencyModel()
        self._rng = random.Random(f"{seed}:latency")

    def __call__(self, request: ApiRequest) -> ApiResponse:
        self.clock.tick(self.latency.sample(request.endpoint, self._rng))
        return self.exchange.handle(request)


# -- websocket-like price feed -----------------------------------------------------------------
class FeedDisconnected(ConnectionError):
    """The price feed is not connected."""


class PriceFeed:
    """Pushed prices. ``source`` is the seam (replace it, or let it raise FeedDisconnected);
    :meth:`disconnect` drops the connection, optionally refusing reconnects for a while."""

    name = "mexc-ws"

    def __init__(self, source: Callable[[str], float | None], clock: Clock) -> None:
        self.source = source
        self.clock = clock
        self.connected = False
        self.disconnects = 0
        self.messages = 0
        self.last_reason = ""
        self._down_until = -math.inf

    def connect(self) -> None:
        if self.clock.time() < self._down_until:
            raise FeedDisconnected(f"reconnect refused: {self.last_reason}")
        self.connected = True

    def disconnect(self, reason: str = "closed by peer", *, down_for: float = 0.0) -> None:
        if self.connected:
            self.disconnects += 1
        self.connected = False
        self.last_reason = reason
        self._down_until = self.clock.time() + down_for

    def price(self, symbol: str) -> float | None:
        if not self.connected:
            raise FeedDisconnected(self.last_reason or "not connected")
        try:
            value = self.source(symbol)
        except FeedDisconnected as exc:
            self.disconnect(str(exc))
            raise
        self.messages += 1
        return value
