"""Wire faults: what only a network can do to an answer.

They sit in the same ``transport`` seam as the other exchange faults and mark the answer
with a :class:`~pytest_sniper_otel.flow.exchange.WireFault`. The HTTP server
(:class:`~pytest_sniper_otel.flow.server.ExchangeServer`) acts it out on the socket, so any
HTTP client (ccxt, aiohttp, httpx, requests) meets a real reset, a short body, a slow body
or silence; the in-process client meets the same thing as a transport error, a timeout or
a slow answer (:func:`~pytest_sniper_otel.flow.exchange.receive`). The exchange has acted
on the request in every case but ``no_answer`` without ``server_acted``: an order placed
under a reset exists even though its answer was lost.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..flow.exchange import ApiRequest, ApiResponse, WireFault
from .exchange_faults import Call, CallFault
from .faults import positive, register, require


def _fraction(value: float, name: str) -> None:
    require(not isinstance(value, bool) and isinstance(value, int | float)
            and 0.0 <= value < 1.0, f"{name} must be within [0, 1), got {value!r}")


@register
@dataclass
class ConnectionReset(CallFault):
    """The connection is reset (TCP RST) after ``fraction`` of the body went out."""

    fraction: float = 0.5
    name = "exchange.connection_reset"
    summary = "reset the connection after `fraction` of the answer's body"

    def validate(self) -> None:
        super().validate()
        _fraction(self.fraction, "fraction")

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        return replace(nxt(request), wire=WireFault("reset", fraction=self.fraction))


@register
@dataclass
class TruncatedBody(CallFault):
    """The body stops after ``fraction`` of the announced ``Content-Length``; the
    connection closes cleanly."""

    fraction: float = 0.5
    name = "exchange.truncated_body"
    summary = "close the connection after `fraction` of the announced body"

    def validate(self) -> None:
        super().validate()
        _fraction(self.fraction, "fraction")

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        return replace(nxt(request), wire=WireFault("truncate", fraction=self.fraction))


@register
@dataclass
class SlowBody(CallFault):
    """The body trickles out in ``chunks`` over ``seconds`` (on the server's clock)."""

    seconds: float = 2.0
    chunks: int = 8
    name = "exchange.slow_body"
    summary = "send the answer's body in `chunks` over `seconds`"

    def validate(self) -> None:
        super().validate()
        positive(self.seconds, "seconds")
        require(isinstance(self.chunks, int) and not isinstance(self.chunks, bool)
                and 1 <= self.chunks <= 1000, f"chunks must be 1-1000, got {self.chunks!r}")

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        return replace(nxt(request),
                       wire=WireFault("slow", seconds=self.seconds, chunks=self.chunks))


@register
@dataclass
class NoAnswer(CallFault):
    """The request is read and never answered: the client times out. The server holds the
    connection for at most ``hold`` real seconds. With ``server_acted`` the exchange did
    the work first (the order exists)."""

    hold: float = 30.0
    server_acted: bool = False
    name = "exchange.no_answer"
    summary = "accept the request and never answer (the client times out)"

    def validate(self) -> None:
        super().validate()
        positive(self.hold, "hold")

    def call(self, request: ApiRequest, nxt: Call) -> ApiResponse:
        answer = nxt(request) if self.server_acted else ApiResponse(0, b"")
        return replace(answer, wire=WireFault("no_answer", seconds=self.hold))


__all__ = ["ConnectionReset", "NoAnswer", "SlowBody", "TruncatedBody"]
