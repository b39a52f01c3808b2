"""Helpers for the reference bot's tests (a module name no other test directory uses)."""

from __future__ import annotations

from typing import Any

from pytest_sniper_otel.flow import BotConfig, ListingSpec, MarketConditions


def one_listing(**overrides: Any) -> BotConfig:
    """A bot config with a single genuine, hyped listing launching 100 s after start, a
    calm market (no partial fills, no random rejects) and everything else default."""
    spec = ListingSpec(symbol="SNIPEUSDT", vcoin_id="v-snipe", launch_offset=100.0,
                       genuine=True, hype=0.8, ready_lead=90.0, initial_price=0.25,
                       volatility=0.0)
    conditions = MarketConditions(partial_fill_rate=0.0, reject_rate=0.0)
    return BotConfig(**{"listings": [spec], "conditions": conditions, **overrides})
