"""Helpers for the reference bot's tests (a module name no other test directory uses)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from pytest_sniper_otel.flow import (
    ApiRequest,
    ApiResponse,
    BotConfig,
    ListingSpec,
    MarketConditions,
    SniperBot,
    Transport,
    TransportError,
    TransportTimeout,
)


def one_listing(**overrides: Any) -> BotConfig:
    """A bot config with a single genuine, hyped listing launching 100 s after start, a
    calm market (no partial fills, no random rejects) and everything else default."""
    spec = ListingSpec(symbol="SNIPEUSDT", vcoin_id="v-snipe", launch_offset=100.0,
                       genuine=True, hype=0.8, ready_lead=90.0, initial_price=0.25,
                       volatility=0.0)
    conditions = MarketConditions(partial_fill_rate=0.0, reject_rate=0.0)
    return BotConfig(**{"listings": [spec], "conditions": conditions, **overrides})


def listings(*offsets: float, genuine: bool = True, hype: float = 0.8) -> list[ListingSpec]:
    """Listings launching at ``offsets`` (seconds), ready 90 s before launch."""
    return [ListingSpec(symbol=f"L{i:03d}USDT", vcoin_id=f"v-{i}", launch_offset=offset,
                        genuine=genuine, hype=hype, ready_lead=90.0, initial_price=0.25,
                        volatility=0.0) for i, offset in enumerate(offsets)]


Action = Callable[[ApiRequest], ApiResponse]


class Faults:
    """A transport wrapper for tests: queued actions per endpoint, then the real exchange."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.queued: dict[str, list[Action]] = {}
        self.persistent: dict[str, Action] = {}
        self.calls: Counter[str] = Counter()

    def next(self, endpoint: str, *actions: Action) -> Faults:
        self.queued.setdefault(endpoint, []).extend(actions)
        return self

    def always(self, endpoint: str, action: Action | None) -> Faults:
        if action is None:
            self.persistent.pop(endpoint, None)
        else:
            self.persistent[endpoint] = action
        return self

    def __call__(self, request: ApiRequest) -> ApiResponse:
        self.calls[request.endpoint] += 1
        queue = self.queued.get(request.endpoint)
        if queue:
            return queue.pop(0)(request)
        action = self.persistent.get(request.endpoint)
        return action(request) if action else self.inner(request)

    # actions -------------------------------------------------------------------------
    @staticmethod
    def respond(status: int, body: bytes, headers: dict[str, str] | None = None) -> Action:
        return lambda request: ApiResponse(status, body, headers or {})

    def mangle(self, edit: Callable[[Any], Any]) -> Action:
        """The real answer with its JSON payload edited."""

        def action(request: ApiRequest) -> ApiResponse:
            response = self.inner(request)
            return ApiResponse(response.status, json.dumps(edit(response.json())).encode(),
                               response.headers)

        return action

    def lose_reply(self, request: ApiRequest) -> ApiResponse:
        """The exchange acts, the answer never arrives."""
        self.inner(request)
        raise TransportTimeout("reply lost")

    @staticmethod
    def unreachable(request: ApiRequest) -> ApiResponse:
        raise TransportError("connection refused")


def install(bot: SniperBot) -> Faults:
    faults = Faults(bot.client.transport)
    bot.client.transport = faults
    return faults
