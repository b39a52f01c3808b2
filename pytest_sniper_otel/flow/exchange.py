"""A deterministic MEXC-like exchange: listings calendar, prices, orders, balances.

Everything derives from the seed. Per-entity random streams are keyed by stable names
(``Random(f"{seed}:price:{symbol}")``, ``Random(f"{seed}:fill:{client_order_id}")``), so a
listing's prices and an order's fill do not depend on how often, or in which order, the
bot happens to ask. Time is the simulated clock's.

The simulator speaks a small REST dialect over :class:`ApiRequest` / :class:`ApiResponse`
(JSON bodies, decimals as strings, HMAC-signed private endpoints, MEXC-style error codes);
:class:`SimulatedTransport` is the default ``Transport`` and charges the latency model's
delay on the simulated clock. :class:`PriceFeed` is the websocket-like push channel.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import string
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock

QUOTE = "USDT"


# -- wire types ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiRequest:
    """One HTTP-like call. ``endpoint`` is the low-cardinality logical name for telemetry;
    ``params`` of a signed call carry ``timestamp`` and ``signature`` (never log them)."""

    method: str
    path: str
    endpoint: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


Transport = Callable[[ApiRequest], ApiResponse]
"""The exchange client's seam: wrap it to inject faults."""


class TransportError(Exception):
    """The call did not produce a response (connection reset, DNS, ...)."""


class TransportTimeout(TransportError):
    """No response within the client's timeout. The server may still have acted."""


def sign(secret: str, params: Mapping[str, str]) -> str:
    """MEXC-style HMAC-SHA256 over the url-encoded parameters (without ``signature``)."""
    payload = urllib.parse.urlencode(sorted((k, v) for k, v in params.items() if k != "signature"))
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


@dataclass(frozen=True)
class Fill:
    client_order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    quote: float
    time: float


FINAL_STATUSES = frozenset({"FILLED", "PARTIALLY_CANCELED", "CANCELED"})
ORDER_STATUSES = FINAL_STATUSES | {"NEW"}

# MEXC-flavoured error codes.
ERR_SIGNATURE = 700002
ERR_API_KEY = 10072
ERR_PARAM = 700004
ERR_SYMBOL = 10007
ERR_NOT_OPEN = 30001
ERR_BALANCE = 30004
ERR_RISK_REJECT = 30027
ERR_NO_ORDER = -2013


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
        self.orders: dict[str, ExchangeOrder] = {}
        self.fills: list[Fill] = []
        self._listings: dict[str, ListingSpec] = {}
        self._generated_windows: float = -1 if listings is None else math.inf
        for spec in listings or ():
            self._listings[spec.symbol] = spec
        self._paths: dict[str, list[float]] = {}
        self._path_rngs: dict[str, random.Random] = {}
        self._reject_rng = random.Random(f"{seed}:reject")
        self._order_seq = 0

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
        return spec.genuine and now >= self.launch_time(spec)

    # -- prices --------------------------------------------------------------------------
    def price_at(self, symbol: str, now: float) -> float | None:
        """Price at ``now`` (one step per second after launch), None when not trading."""
        spec = self._listings.get(symbol)
        if spec is None or not self.is_open(spec, now):
            return None
        step = int(now - self.launch_time(spec))
        path = self._paths.setdefault(symbol, [spec.initial_price])
        rng = self._path_rngs.setdefault(symbol, random.Random(f"{self.seed}:price:{symbol}"))
        while len(path) <= step:
            # pump for the first minute (stronger with hype), then a slow bleed
            drift = spec.hype * 0.006 if len(path) < 60 else -0.002
            path.append(path[-1] * math.exp(drift + rng.gauss(0.0, spec.volatility)))
        return path[step]

    # -- orders ------------------------------------------------------------------------------
    def _settle_due(self, now: float) -> None:
        for order in self.orders.values():
            if order.status == "NEW" and order.settle_at <= now:
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
        order.status = (
            "FILLED" if fraction == 1.0 else "PARTIALLY_CANCELED" if fraction > 0 else "CANCELED"
        )
        if qty > 0:
            self.fills.append(Fill(order.client_order_id, order.symbol, order.side, qty,
                                   price, spent, order.settle_at))

    def settle(self) -> None:
        """Settle every order due by now (the bot's view never needs this; tests might)."""
        self._settle_due(self.clock.time())

    # -- HTTP-ish surface ------------------------------------------------------------------
    def handle(self, request: ApiRequest) -> ApiResponse:
        now = self.clock.time()
        self._settle_due(now)
        route = {
            ("GET", "/api/v3/calendar"): self._calendar,
            ("GET", "/api/v3/ticker/price"): self._ticker,
            ("POST", "/api/v3/order"): self._place_order,
            ("GET", "/api/v3/order"): self._query_order,
            ("GET", "/api/v3/account"): self._account,
        }.get((request.method, request.path))
        if route is None:
            return _error(404, ERR_PARAM, f"no route {request.method} {request.path}")
        if request.path in ("/api/v3/order", "/api/v3/account"):
            denied = self._authenticate(request)
            if denied is not None:
                return denied
        return route(request.params, now)

    def _authenticate(self, request: ApiRequest) -> ApiResponse | None:
        if not hmac.compare_digest(request.headers.get("X-MEXC-APIKEY", ""), self._api_key):
            return _error(401, ERR_API_KEY, "api key invalid")
        given = request.params.get("signature", "")
        if not hmac.compare_digest(given, sign(self._api_secret, request.params)):
            return _error(401, ERR_SIGNATURE, "Signature for this request is not valid.")
        return None

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

    def _ticker(self, params: Mapping[str, str], now: float) -> ApiResponse:
        symbol = params.get("symbol", "")
        price = self.price_at(symbol, now)
        if price is None:
            return _error(400, ERR_SYMBOL, f"symbol {symbol} not trading")
        return _ok({"symbol": symbol, "price": _dec(price)})

    def _place_order(self, params: Mapping[str, str], now: float) -> ApiResponse:
        coid = params.get("newClientOrderId", "")
        symbol, side = params.get("symbol", ""), params.get("side", "")
        if not coid or side not in ("BUY", "SELL"):
            return _error(400, ERR_PARAM, "newClientOrderId and side are required")
        existing = self.orders.get(coid)
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
        except ValueError:
            return _error(400, ERR_PARAM, "bad quantity")
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
            return _error(400, ERR_BALANCE, "insufficient balance")
        if self._reject_rng.random() < self.conditions.reject_rate:
            return _error(400, ERR_RISK_REJECT, "order rejected by risk control")
        need = min(need, bal[0])
        bal[0] -= need
        bal[1] += need
        self._order_seq += 1
        lo, hi = self.conditions.fill_delay
        delay = random.Random(f"{self.seed}:delay:{coid}").uniform(lo, hi)
        order = ExchangeOrder(
            order_id=f"{self.seed % 100000:05d}{self._order_seq:08d}", client_order_id=coid,
            symbol=symbol, side=side, quote_qty=need if side == "BUY" else 0.0,
            base_qty=need if side == "SELL" else 0.0, created_at=now, settle_at=now + delay,
        )
        self.orders[coid] = order
        return _ok(self._order_json(order))

    def _query_order(self, params: Mapping[str, str], now: float) -> ApiResponse:
        order = self.orders.get(params.get("origClientOrderId", ""))
        if order is None:
            return _error(400, ERR_NO_ORDER, "Order does not exist.")
        return _ok(self._order_json(order))

    def _account(self, params: Mapping[str, str], now: float) -> ApiResponse:
        return _ok({"balances": [
            {"asset": asset, "free": _dec(free), "locked": _dec(locked)}
            for asset, (free, locked) in sorted(self.balances.items())
        ]})

    @staticmethod
    def _order_json(order: ExchangeOrder) -> dict[str, Any]:
        return {
            "orderId": order.order_id, "clientOrderId": order.client_order_id,
            "symbol": order.symbol, "side": order.side, "type": "MARKET",
            "status": order.status, "executedQty": _dec(order.executed_qty),
            "cummulativeQuoteQty": _dec(order.quote_filled),
            "transactTime": int(order.created_at * 1000),
        }


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
