"""Exchange faults: what a flaky MEXC looks like from the bot's side of the wire.

Call-level faults (target ``exchange``) sit in the client's ``transport`` seam, a callable
``(ApiRequest) -> ApiResponse``: the first active fault installs a :class:`FaultyTransport`
around it and the last rollback puts the original back. Several faults can be active at
once; each is drawn per call (``probability``) and may be limited to some ``endpoints``
(the request's logical endpoint: ``calendar``, ``ticker``, ``order.place``, ...).
Latency is charged on the target's ``clock`` when it has one (the simulated clock).

``market.partial_fills`` changes the exchange simulator's conditions,
``market.dud_listings`` calls off announced launches (``called_off``: they never open) and
``feed.disconnect`` drops the websocket-like price feed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import did_you_mean
from ..flow.exchange import ENDPOINTS, ApiRequest, ApiResponse, TransportError, TransportTimeout
from . import layers
from .faults import Fault, FaultError, chance, counted_push, positive, register, require

Call = Callable[[ApiRequest], ApiResponse]


class FaultyTransport:
    """Wraps a transport; routes each call through the active call faults, in order."""

    def __init__(self, inner: Call, clock: Any) -> None:
        self.inner = inner
        self.clock = clock
        self.faults: list[CallFault] = []

    def __call__(self, request: ApiRequest) -> ApiResponse:
        call = self.inner
        for f in reversed(self.faults):
            call = _bind(f, call)
        return call(request)


def _bind(f: CallFault, nxt: Call) -> Call:
    def call(request: ApiRequest) -> ApiResponse:
        if f.applies_to(request) and f.strikes():
            return f.call(request, nxt)
        return nxt(request)

    return call


@dataclass
class CallFault(Fault):
    """Base for faults that intercept exchange calls."""

    endpoints: tuple[str, ...] = ()
    target = "exchange"

    def applies_to(self, request: ApiRequest) -> bool:
        return not self.endpoints or request.endpoint in self.endpoints

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        raise NotImplementedError

    def validate(self) -> None:
        require(
            isinstance(self.endpoints, tuple | list)
            and all(isinstance(e, str) and e for e in self.endpoints),
            f"endpoints must be a tuple of endpoint names, got {self.endpoints!r}",
        )
        for endpoint in self.endpoints:
            # a misspelt endpoint would match no call: the fault would never strike
            if endpoint not in ENDPOINTS:
                hint = did_you_mean(endpoint, ENDPOINTS)
                raise FaultError(f"endpoints: no endpoint {endpoint!r}{hint} "
                                 f"(endpoints: {', '.join(ENDPOINTS)})")

    def tick(self, seconds: float) -> None:
        clock = self._transport.clock
        if clock is not None and seconds > 0:
            clock.tick(seconds)

    def apply(self, target: Any) -> None:
        if not hasattr(target, "transport") or not callable(target.transport):
            raise FaultError(
                f"{self.name}: target {type(target).__name__} has no callable 'transport'"
            )
        current = target.transport
        if not isinstance(current, FaultyTransport):
            current = FaultyTransport(current, getattr(target, "clock", None))
            target.transport = current
        current.faults.append(self)
        self._transport = current

    def revert(self, target: Any) -> None:
        chain = self._transport
        if self in chain.faults:
            chain.faults.remove(self)
        if not chain.faults and target.transport is chain:
            target.transport = chain.inner


def _error_body(code: int, msg: str) -> bytes:
    return json.dumps({"code": code, "msg": msg}).encode()


@register
@dataclass
class HttpError(CallFault):
    """The exchange answers with a server error instead of doing the work."""

    status: int = 503
    name = "exchange.http_error"
    summary = "answer 5xx (default 503) without reaching the exchange"

    def validate(self) -> None:
        super().validate()
        require(isinstance(self.status, int) and 500 <= self.status <= 599,
                f"status must be a 5xx code, got {self.status!r}")

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        self.tick(0.02)
        return ApiResponse(self.status, _error_body(self.status, "Service Unavailable (chaos)"),
                           {"Content-Type": "application/json"})


@register
@dataclass
class RateLimit(CallFault):
    """429 Too Many Requests with a ``Retry-After`` header (seconds)."""

    retry_after: float = 2.0
    name = "exchange.rate_limit"
    summary = "answer 429 with Retry-After"

    def validate(self) -> None:
        super().validate()
        positive(self.retry_after, "retry_after", allow_zero=True)

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        self.tick(0.01)
        return ApiResponse(429, _error_body(429, "Too Many Requests (chaos)"),
                           {"Content-Type": "application/json",
                            "Retry-After": f"{self.retry_after:g}"})


@register
@dataclass
class Timeout(CallFault):
    """No answer within ``after`` seconds. With ``server_acted`` the exchange did the work
    (the order exists) but the answer never came: the idempotency test."""

    after: float = 5.0
    server_acted: bool = False
    name = "exchange.timeout"
    summary = "no answer for `after` s (server_acted: the request did reach the exchange)"

    def validate(self) -> None:
        super().validate()
        positive(self.after, "after")

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        if self.server_acted:
            nxt(request)
        self.tick(self.after)
        raise TransportTimeout(f"no response within {self.after:g}s (chaos)")


@register
@dataclass
class LatencySpike(CallFault):
    """Adds ``latency`` seconds plus uniform jitter in ``[0, jitter]`` before each call."""

    latency: float = 1.5
    jitter: float = 0.5
    name = "exchange.latency"
    summary = "add `latency` + U(0, jitter) seconds to each call"

    def validate(self) -> None:
        super().validate()
        positive(self.latency, "latency", allow_zero=True)
        positive(self.jitter, "jitter", allow_zero=True)

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        self.tick(self.latency + self.rng.uniform(0.0, self.jitter))
        return nxt(request)


MALFORMED_MODES = ("truncated", "not_json", "wrong_schema", "wrong_order")


@register
@dataclass
class Malformed(CallFault):
    """A 200 answer whose body is broken: ``truncated``, ``not_json``, ``wrong_schema``
    (fields renamed), ``wrong_order`` (an order answer for another client order id)."""

    mode: str = "truncated"
    name = "exchange.malformed"
    summary = "200 with a broken body: truncated, not_json, wrong_schema, wrong_order"

    def validate(self) -> None:
        super().validate()
        require(self.mode in MALFORMED_MODES,
                f"mode must be one of {', '.join(MALFORMED_MODES)}, got {self.mode!r}")

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        response = nxt(request)
        if response.status != 200:
            self.spared()  # an error answer has no body to break
            return response
        body = response.body
        if self.mode == "truncated":
            body = body[: max(1, len(body) // 2)]
        elif self.mode == "not_json":
            body = b"<html><body>502 Bad Gateway</body></html>"
        else:
            payload = json.loads(body)
            if isinstance(payload, dict):
                if self.mode == "wrong_order" and "clientOrderId" in payload:
                    payload["clientOrderId"] = "someone-else"
                else:
                    payload = {f"_{k}": v for k, v in payload.items()}
            body = json.dumps(payload).encode()
        return ApiResponse(200, body, response.headers)


@register
@dataclass
class StaleCalendar(CallFault):
    """The calendar endpoint keeps answering with the response it gave at inject (a stuck
    CDN cache): new listings and ready-state changes stop arriving."""

    endpoints: tuple[str, ...] = ("calendar",)
    name = "exchange.stale_calendar"
    summary = "calendar answers frozen at the first response after inject"

    def apply(self, target: Any) -> None:
        self._frozen: ApiResponse | None = None
        super().apply(target)

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        if self._frozen is None:
            self._frozen = nxt(request)
            self.spared()  # the first answer is fresh: only its replays are stale
            return self._frozen
        self.tick(0.05)
        return self._frozen


@register
@dataclass
class DuplicateCalendar(CallFault):
    """Every calendar entry appears twice; the copy carries an older ready state, as a
    replica lagging behind would serve it."""

    endpoints: tuple[str, ...] = ("calendar",)
    name = "exchange.duplicate_calendar"
    summary = "calendar entries duplicated, the copies with a stale ready state"

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        response = nxt(request)
        if response.status != 200:
            self.spared()
            return response
        payload = json.loads(response.body)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            self.spared()
            return response
        doubled = []
        for entry in data:
            doubled.append(entry)
            if isinstance(entry, dict):
                doubled.append({**entry, "sts": 1, "st": 1, "tt": 1, "tradingOpen": False})
        payload["data"] = doubled
        return ApiResponse(200, json.dumps(payload).encode(), response.headers)


@register
@dataclass
class PartialFills(Fault):
    """The exchange fills only part of most orders (``rate`` of them)."""

    rate: float = 0.9
    name = "market.partial_fills"
    target = "market"
    summary = "set the exchange's partial-fill rate to `rate`"

    def validate(self) -> None:
        chance(self.rate, "rate")

    def apply(self, target: Any) -> None:
        conditions = _attr(target, "conditions", self.name)
        self._base_rate = layers.base(conditions, "partial_fill_rate")
        # a hit per order settled at the changed rate (the rate is read once per fill)
        counted_push(self, conditions, "partial_fill_rate", self.rate, self._read)

    def _read(self) -> None:
        if self.rate != self._base_rate:
            self.struck()

    def revert(self, target: Any) -> None:
        layers.pop(target.conditions, "partial_fill_rate", self)


@register
@dataclass
class DudListings(Fault):
    """Announced listings whose launch falls while the fault is active never open: the
    calendar still shows them ready up to the launch, then ``tradingOpen: false``, and
    orders on them are refused (30001, not open). Each genuine listing is drawn once, with
    the schedule's ``probability``, before its launch (counted as a hit or a miss); one
    already open stays open, and one not yet launched at rollback opens as announced."""

    name = "market.dud_listings"
    target = "market"
    summary = "announced listings launching while active never open (drawn per listing)"

    def apply(self, target: Any) -> None:
        for seam in ("called_off", "listings", "launch_time", "clock"):
            _attr(target, seam, self.name)
        self._drawn: set[str] = set()
        self._launches: dict[str, float] = {}  # called off: symbol -> launch time
        self._call_off(target, self.records[-1].started)

    def step(self, target: Any, at: float, dt: float) -> None:
        self._call_off(target, at)

    def _call_off(self, target: Any, at: float) -> None:
        # Decided ahead of the launch, up to the scheduled end: the bot may trade in the
        # instant a listing opens, before the next step.
        now = target.clock.time()
        until = now + (self.schedule.end - at)
        for spec in target.listings():
            launch = target.launch_time(spec)
            if launch >= until:
                break  # sorted by launch
            if spec.symbol in self._drawn or not spec.genuine:
                continue
            self._drawn.add(spec.symbol)
            if launch > now and self.strikes():
                target.called_off.add(spec.symbol)
                self._launches[spec.symbol] = launch

    def revert(self, target: Any) -> None:
        # rolled back before its scheduled end: the launches still to come happen
        now = target.clock.time()
        for symbol, launch in self._launches.items():
            if launch > now:
                target.called_off.discard(symbol)
                self.records[-1].hits -= 1


@register
@dataclass
class FeedDisconnect(Fault):
    """The websocket price feed drops; reconnects are refused for ``down_for`` seconds.
    While active it drops again at each step with ``probability`` (a flapping link)."""

    down_for: float = 30.0
    name = "feed.disconnect"
    target = "feed"
    summary = "drop the websocket feed, refusing reconnects for `down_for` s; flaps while active"

    def validate(self) -> None:
        positive(self.down_for, "down_for", allow_zero=True)

    def apply(self, target: Any) -> None:
        _attr(target, "disconnect", self.name)
        if self.strikes():
            target.disconnect("connection reset (chaos)", down_for=self.down_for)

    def step(self, target: Any, at: float, dt: float) -> None:
        if getattr(target, "connected", False) and self.strikes():
            target.disconnect("connection reset (chaos)", down_for=self.down_for)

    def revert(self, target: Any) -> None:
        if not getattr(target, "connected", False):
            # Lift the reconnect ban; a disconnected feed counts no new disconnect.
            target.disconnect(getattr(target, "last_reason", "") or "closed", down_for=0.0)


def _attr(target: Any, name: str, fault: str) -> Any:
    try:
        return getattr(target, name)
    except AttributeError:
        raise FaultError(f"{fault}: target {type(target).__name__} has no {name!r}") from None


__all__ = [
    "CallFault",
    "DudListings",
    "DuplicateCalendar",
    "FaultyTransport",
    "FeedDisconnect",
    "HttpError",
    "LatencySpike",
    "Malformed",
    "PartialFills",
    "RateLimit",
    "StaleCalendar",
    "Timeout",
    "TransportError",
]
