"""The exchange client: signing, retries on simulated time, schema validation, telemetry.

Every attempt is one ``mexc-api-request`` CLIENT span (attributes ``http.request.method``,
``url.path``, ``mexc.endpoint``, ``mexc.attempt``, ``http.response.status_code``,
``error.type``) and one ``api_request_latency_ms`` sample. Query strings, the API key and
signatures never reach a span, a log or a metric: only the path and the logical endpoint.

Retry policy: 5xx, 429 (waiting ``Retry-After``), timeouts, transport errors and malformed
payloads are retried with capped exponential backoff, all on the simulated clock; other
4xx answers are final (:class:`ApiError`). Orders are safe to retry because the client
order id is idempotent on the exchange.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from opentelemetry.trace import SpanKind

from ..catalog import API_ENDPOINTS
from ..clock import Clock, monotonic
from .exchange import (
    ORDER_STATUSES,
    ApiRequest,
    ApiResponse,
    Transport,
    TransportError,
    TransportTimeout,
    receive,
    sign,
)
from .telemetry import (
    TRACER_EXCHANGE,
    AttrValue,
    LogContext,
    StructuredLogger,
    TradingMetricsCollector,
    TradingOperationTracer,
    mark_error,
)

STEP = Decimal("1e-8")  # the exchange's quantity step
# the logical endpoints (``mexc.endpoint``, the ``endpoint`` metric attribute)
ENDPOINTS = API_ENDPOINTS


@dataclass(frozen=True)
class Credentials:
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credentials(api_key=***, api_secret=***)"


@dataclass
class RetryPolicy:
    max_attempts: int = 4
    base_backoff: float = 0.2
    max_backoff: float = 5.0
    max_retry_after: float = 30.0
    timeout: float = 2.0


class ApiError(Exception):
    """A final (non-retryable) error answer from the exchange."""

    def __init__(self, endpoint: str, status: int, code: int, msg: str) -> None:
        super().__init__(f"{endpoint}: HTTP {status} code {code}: {msg}")
        self.endpoint, self.status, self.code, self.msg = endpoint, status, code, msg


class ExchangeUnavailable(Exception):
    """Every attempt failed with a retryable error."""


class MalformedResponse(ValueError):
    """A response that does not match its schema."""


# -- schemas: field -> type, a nested schema, or [schema] for a list ------------------------
Schema = Mapping[str, Any]
DECIMAL = "decimal"  # a finite, non-negative decimal string
TIMESTAMP = "timestamp"  # epoch milliseconds: an int in [0, MAX_TIMESTAMP_MS]
MAX_TIMESTAMP_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
INT_LIMIT = 2**63  # an int field outside int64 is a lie, not a number the exchange keeps

CALENDAR_ENTRY: Schema = {"vcoinId": str, "symbol": str, "firstOpenTime": TIMESTAMP,
                          "sts": int, "st": int, "tt": int, "tradingOpen": bool}
CALENDAR: Schema = {"code": int, "data": [CALENDAR_ENTRY], "serverTime": TIMESTAMP}
TICKER: Schema = {"symbol": str, "price": DECIMAL}
ORDER: Schema = {"orderId": str, "clientOrderId": str, "symbol": str, "side": str,
                 "status": str, "executedQty": DECIMAL, "cummulativeQuoteQty": DECIMAL,
                 "transactTime": TIMESTAMP}
ACCOUNT: Schema = {"balances": [{"asset": str, "free": DECIMAL, "locked": DECIMAL}]}
ERROR: Schema = {"code": int, "msg": str}


def validate(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Problems of ``value`` against ``schema``; empty when it conforms."""
    if isinstance(schema, list):
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        return [p for i, item in enumerate(value)
                for p in validate(item, schema[0], f"{path}[{i}]")]
    if isinstance(schema, Mapping):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        problems = [f"{path}.{k}: missing" for k in schema if k not in value]
        return problems + [
            p for k, sub in schema.items() if k in value
            for p in validate(value[k], sub, f"{path}.{k}")
        ]
    if schema == DECIMAL:
        try:
            number = float(value) if isinstance(value, str) else None
        except ValueError:
            number = None
        # "inf", "NaN", "1e400" parse as floats; none is an amount the exchange can hold
        if number is None or not math.isfinite(number) or number < 0:
            return [f"{path}: expected a finite non-negative decimal string, "
                    f"got {_excerpt(value)}"]
        return []
    if schema == TIMESTAMP:
        if isinstance(value, bool) or not isinstance(value, int) \
                or not 0 <= value <= MAX_TIMESTAMP_MS:
            return [f"{path}: expected epoch milliseconds, got {_excerpt(value)}"]
        return []
    if (schema is int and isinstance(value, bool)) or not isinstance(value, schema):
        return [f"{path}: expected {schema.__name__}, got {type(value).__name__}"]
    if schema is int and not -INT_LIMIT <= value < INT_LIMIT:
        return [f"{path}: integer out of range, got {_excerpt(value)}"]
    return []


def _excerpt(value: Any, limit: int = 40) -> str:
    """A bounded repr: a hostile value may be megabytes long."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**limit:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {text[:40]}")
    return number


def parse_json(body: bytes) -> Any:
    """JSON that holds only finite numbers; anything else raises ValueError.

    ``NaN``/``Infinity`` literals and overflowing numbers (``1e400``) are refused, and a body
    nested deeper than the parser's recursion limit is malformed, not a RecursionError.
    """
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("nested too deeply") from None


# -- parsed results ---------------------------------------------------------------------------
@dataclass(frozen=True)
class CalendarEntry:
    vcoin_id: str
    symbol: str
    launch_time: float
    ready_state: tuple[int, int, int]
    trading_open: bool


@dataclass(frozen=True)
class OrderState:
    client_order_id: str
    symbol: str
    side: str
    status: str
    executed_qty: float
    quote_qty: float

    @property
    def final(self) -> bool:
        return self.status != "NEW"

    @property
    def avg_price(self) -> float:
        return self.quote_qty / self.executed_qty if self.executed_qty else 0.0


@dataclass(frozen=True)
class Balance:
    free: float
    locked: float


class ExchangeClient:
    """Talks to the exchange through ``transport`` (the fault seam)."""

    def __init__(
        self,
        *,
        transport: Transport,
        clock: Clock,
        credentials: Credentials,
        seed: int,
        retry: RetryPolicy | None = None,
        logger: StructuredLogger | None = None,
        agent_id: str = "exchange-client",
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.tracer = TradingOperationTracer(TRACER_EXCHANGE)
        self.metrics = TradingMetricsCollector()
        self.logger = logger or StructuredLogger("exchange")
        self.agent_id = agent_id
        self._rng = random.Random(f"{seed}:backoff")
        self.failures = 0  # attempts that failed, for agent health

    # -- endpoints ------------------------------------------------------------------------
    def get_calendar(self) -> list[CalendarEntry]:
        payload = self._call("calendar", "GET", "/api/v3/calendar", {}, CALENDAR)
        return [
            CalendarEntry(e["vcoinId"], e["symbol"], e["firstOpenTime"] / 1000.0,
                          (e["sts"], e["st"], e["tt"]), e["tradingOpen"])
            for e in payload["data"]
        ]

    def get_ticker(self, symbol: str) -> float:
        payload = self._call("ticker", "GET", "/api/v3/ticker/price", {"symbol": symbol}, TICKER)
        return float(payload["price"])

    def place_order(
        self, symbol: str, side: str, client_order_id: str, *, quote_qty: float = 0.0,
        base_qty: float = 0.0,
    ) -> OrderState:
        params = {"symbol": symbol, "side": side, "type": "MARKET",
                  "newClientOrderId": client_order_id}
        if side == "BUY":
            params["quoteOrderQty"] = f"{quote_qty:.8f}"
        else:
            # floor to the exchange's 1e-8 step: never offer more than is held
            params["quantity"] = str(Decimal(base_qty).quantize(STEP, rounding=ROUND_DOWN))
        expected = ExpectedOrder(client_order_id, symbol, side, quote_qty, base_qty)
        payload = self._call("order.place", "POST", "/api/v3/order", params, ORDER,
                             signed=True, expect_order=expected)
        return _order_state(payload)

    def get_order(
        self, symbol: str, client_order_id: str, *, side: str | None = None,
        quote_qty: float = 0.0, base_qty: float = 0.0,
    ) -> OrderState | None:
        """The order's state, or None when the exchange never saw it. Given the ``side`` and
        amount ordered, an answer that filled more than was asked is malformed."""
        expected = ExpectedOrder(client_order_id, symbol, side, quote_qty, base_qty)
        try:
            payload = self._call("order.status", "GET", "/api/v3/order",
                                 {"symbol": symbol, "origClientOrderId": client_order_id},
                                 ORDER, signed=True, expect_order=expected)
        except ApiError as exc:
            if exc.code == -2013:
                return None
            raise
        return _order_state(payload)

    def get_account(self) -> dict[str, Balance]:
        payload = self._call("account", "GET", "/api/v3/account", {}, ACCOUNT, signed=True)
        return {b["asset"]: Balance(float(b["free"]), float(b["locked"]))
                for b in payload["balances"]}

    # -- the retry loop ---------------------------------------------------------------------
    def _call(
        self, endpoint: str, method: str, path: str, params: Mapping[str, str], schema: Schema,
        *, signed: bool = False, expect_order: ExpectedOrder | None = None,
    ) -> Any:
        policy = self.retry
        last: Exception | None = None
        for attempt in range(1, policy.max_attempts + 1):
            outcome = self._attempt(endpoint, method, path, params, schema, signed,
                                    expect_order, attempt)
            if outcome.error is None:
                return outcome.payload
            last = outcome.error
            if isinstance(last, ApiError):
                raise last
            if attempt < policy.max_attempts:
                backoff = min(policy.max_backoff, policy.base_backoff * 2 ** (attempt - 1))
                jittered = backoff * (0.5 + self._rng.random() / 2)
                self.clock.tick(jittered if outcome.retry_after is None else outcome.retry_after)
        self.logger.error(
            "exchange unavailable after retries", last,
            LogContext("ExchangeClient", endpoint, agent_id=self.agent_id),
            endpoint=endpoint, attempts=policy.max_attempts,
        )
        raise ExchangeUnavailable(f"{endpoint}: {policy.max_attempts} attempts failed: {last}")

    def _attempt(
        self, endpoint: str, method: str, path: str, params: Mapping[str, str], schema: Schema,
        signed: bool, expect_order: ExpectedOrder | None, attempt: int,
    ) -> _Outcome:
        attrs: dict[str, AttrValue] = {
            "http.request.method": method, "url.path": path, "mexc.endpoint": endpoint,
            "mexc.attempt": attempt,
        }
        context = LogContext("ExchangeClient", endpoint, agent_id=self.agent_id)
        with self.tracer.span("mexc-api-request", attrs, kind=SpanKind.CLIENT) as span:
            request = self._request(method, path, endpoint, params, signed)
            started = monotonic()
            status = 0
            try:
                response = receive(self.transport(request), self.clock, self.retry.timeout)
                if monotonic() - started > self.retry.timeout:
                    raise TransportTimeout(f"no response within {self.retry.timeout:g}s")
                status = response.status
                span.set_attribute("http.response.status_code", status)
                outcome = self._interpret(endpoint, response, schema, expect_order)
            except TransportTimeout as exc:
                outcome = _Outcome("timeout", error=exc)
            except TransportError as exc:
                outcome = _Outcome("transport_error", error=exc)
            latency_ms = (monotonic() - started) * 1000.0
            self.metrics.record_api_request(endpoint, method, outcome.kind, status, latency_ms)
            if outcome.error is None:
                return outcome
            self.failures += 1
            span.set_attribute("error.type", outcome.kind)
            mark_error(span, outcome.error)
            if outcome.kind == "malformed":
                self.logger.error("malformed exchange response rejected", outcome.error, context,
                                  endpoint=endpoint, attempt=attempt, status_code=status)
            elif outcome.kind != "client_error":
                self.logger.warning(f"exchange request failed: {outcome.kind}", context,
                                    endpoint=endpoint, attempt=attempt, status_code=status,
                                    error_type=outcome.kind)
            return outcome

    def _interpret(
        self, endpoint: str, response: ApiResponse, schema: Schema,
        expect_order: ExpectedOrder | None,
    ) -> _Outcome:
        status = response.status
        if status == 429:
            retry_after = _retry_after(response.headers, self.retry.max_retry_after)
            return _Outcome("rate_limited", error=ExchangeBusy(f"{endpoint}: rate limited"),
                            retry_after=retry_after)
        if status >= 500:
            return _Outcome("server_error", error=ExchangeBusy(f"{endpoint}: HTTP {status}"))
        try:
            payload = parse_json(response.body)
        except (ValueError, UnicodeDecodeError, TypeError) as exc:
            return _malformed(f"{endpoint}: body is not JSON ({_excerpt(str(exc), 120)})")
        if status >= 400:
            problems = validate(payload, ERROR)
            if problems:
                return _malformed(f"{endpoint}: {'; '.join(problems[:5])}")
            return _Outcome("client_error",
                            error=ApiError(endpoint, status, payload["code"], payload["msg"]))
        problems = validate(payload, schema)
        if not problems and expect_order is not None:
            problems = expect_order.problems(payload)
        if problems:
            return _malformed(f"{endpoint}: {'; '.join(problems[:5])}")
        return _Outcome("success", payload=payload)

    def _request(
        self, method: str, path: str, endpoint: str, params: Mapping[str, str], signed: bool
    ) -> ApiRequest:
        query = dict(params)
        headers: dict[str, str] = {}
        if signed:
            # A fresh timestamp and signature per attempt, as a real exchange demands.
            query["timestamp"] = str(int(self.clock.time() * 1000))
            query["signature"] = sign(self.credentials.api_secret, query)
            headers["X-MEXC-APIKEY"] = self.credentials.api_key
        return ApiRequest(method, path, endpoint, query, headers)


@dataclass(frozen=True)
class ExpectedOrder:
    """What an order answer must agree with; ``side`` None leaves the amounts unchecked."""

    client_order_id: str
    symbol: str
    side: str | None = None
    quote_qty: float = 0.0
    base_qty: float = 0.0

    def problems(self, payload: Mapping[str, Any]) -> list[str]:
        found: list[str] = []
        if payload["clientOrderId"] != self.client_order_id:
            found.append("$.clientOrderId: the answer is for another order")
        if payload["symbol"] != self.symbol:
            found.append(f"$.symbol: {_excerpt(payload['symbol'])} is not {self.symbol}")
        if payload["status"] not in ORDER_STATUSES:
            found.append(f"$.status: unknown status {_excerpt(payload['status'])}")
        if self.side is not None:
            if payload["side"] != self.side:
                found.append(f"$.side: {_excerpt(payload['side'])} is not {self.side}")
            # the exchange works on a 1e-8 step; anything beyond it was never ordered
            if self.side == "BUY" and float(payload["cummulativeQuoteQty"]) > self.quote_qty + 1e-8:
                found.append(f"$.cummulativeQuoteQty: more than the {self.quote_qty:g} ordered")
            if self.side == "SELL" and float(payload["executedQty"]) > self.base_qty + 1e-8:
                found.append(f"$.executedQty: more than the {self.base_qty:g} ordered")
        return found


class ExchangeBusy(Exception):
    """A retryable answer: 5xx or 429."""


@dataclass(frozen=True)
class _Outcome:
    """One attempt: ``kind`` is the ``outcome`` metric attribute."""

    kind: str
    payload: Any = None
    error: Exception | None = None
    retry_after: float | None = None


def _malformed(problem: str) -> _Outcome:
    return _Outcome("malformed", error=MalformedResponse(problem))


def _retry_after(headers: Mapping[str, str], cap: float) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return min(max(float(value), 0.0), cap)
            except ValueError:
                return None
    return None


def _order_state(payload: Mapping[str, Any]) -> OrderState:
    return OrderState(payload["clientOrderId"], payload["symbol"], payload["side"],
                      payload["status"], float(payload["executedQty"]),
                      float(payload["cummulativeQuoteQty"]))

