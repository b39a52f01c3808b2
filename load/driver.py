"""Drives the reference sniper bot one cycle at a time, for a locust user (no locust here).

The bot is a discrete-event loop on a clock: idle waits between workflows (discovery every
30 s, safety every 5 s) and in-workflow waits (exchange latency, Redis round trips, model
inference, status polling, backoff) all ``tick`` it. A load run wants the second kind to
cost real time, as in production, and the first kind to cost nothing, so that a short run
covers many workflows. :class:`LoadClock` does that: simulated time always advances by the
tick; only ticks inside a workflow also sleep ``tick x latency scale`` real seconds
(cooperatively under gevent). Scale 0 ("zero") leaves pure CPU cost; 1 ("realistic") is
the bot's own latency model.

One cycle is one safety interval of simulated time (``BotConfig.safety_interval``): a
safety check, and whatever discovery, snipes and exits fall due. Seeds are the user's
index, so every variant replays the same schedule, prices and latencies.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from pytest_sniper_otel.clock import DEFAULT_START
from pytest_sniper_otel.flow import BotConfig, SniperBot

LATENCY_SETTINGS = {"zero": 0.0, "realistic": 1.0}
_scale = 0.0


def latency_scale(setting: str) -> float:
    """``zero`` -> 0, ``realistic`` -> 1, or a non-negative multiplier such as ``0.5``."""
    if setting in LATENCY_SETTINGS:
        return LATENCY_SETTINGS[setting]
    try:
        value = float(setting)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects nan
        raise ValueError(
            f"exchange latency {setting!r} is not zero, realistic or a multiplier >= 0"
        )
    return value


def configure(*, latency_scale: float) -> None:
    """Set the latency scale for bots created in this process from now on."""
    global _scale
    _scale = latency_scale


class LoadClock:
    """Simulated time for the bot's schedule; in-workflow ticks also sleep real time."""

    def __init__(self, scale: float, start: dt.datetime = DEFAULT_START) -> None:
        self.scale = scale
        self.in_workflow = False
        self._t = start.timestamp()

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._t, dt.UTC)

    def time(self) -> float:
        return self._t

    def tick(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"tick() takes a non-negative duration, got {seconds!r}")
        self._t += seconds
        if self.in_workflow and self.scale:
            time.sleep(seconds * self.scale)  # gevent-patched: other users run meanwhile

    def __repr__(self) -> str:
        return f"<LoadClock {self.now().isoformat()} scale={self.scale}>"


class WorkflowFailed(Exception):
    """A workflow raised; the orchestrator logged it and carried on. In a load run it is a
    real fault of the bot, so it fails the cycle in locust's stats."""


class BotDriver:
    """One bot with its own clock and fakeredis, advanced one cycle per :meth:`cycle`."""

    def __init__(
        self, seed: int, *, scale: float | None = None, config: BotConfig | None = None
    ) -> None:
        self.clock = LoadClock(_scale if scale is None else scale)
        self.bot = SniperBot.create(seed=seed, clock=self.clock, config=config)
        self.failed: list[str] = []
        orchestrator = self.bot.orchestrator
        inner: Callable[[Any], None] = orchestrator.execute_workflow

        # Wrapping the public entry point marks in-workflow time and sees failures the
        # orchestrator swallows (it counts them in ``errors``).
        def execute_workflow(workflow: Any) -> None:
            errors = orchestrator.errors
            self.clock.in_workflow = True
            try:
                inner(workflow)
            finally:
                self.clock.in_workflow = False
            if orchestrator.errors != errors:
                self.failed.append(workflow.name)

        # wraps this one orchestrator's method, to count the workflows that failed in a cycle
        orchestrator.execute_workflow = execute_workflow  # type: ignore[method-assign]

    def cycle(self) -> int:
        """Run one cycle; returns the orders it opened. Raises if a workflow failed."""
        before = len(self.bot.ledger)
        self.failed.clear()
        self.bot.run_for(self.bot.config.safety_interval)
        if self.failed:
            raise WorkflowFailed(f"workflow(s) failed: {', '.join(self.failed)}")
        return len(self.bot.ledger) - before

    def finish(self) -> list[str]:
        """Settle, close and reconcile: every order must have exactly one outcome that
        matches the exchange. Returns the problems (empty when nothing was lost)."""
        self.bot.close()
        problems = list(self.bot.reconcile())
        problems += [f"order {i.client_order_id} has no outcome" for i in self.bot.ledger.pending()]
        return problems

    def outcomes(self) -> dict[str, int]:
        return dict(self.bot.ledger.by_outcome())
