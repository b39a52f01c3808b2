"""What faults act on: the :class:`Targets` a fault names by its target (``exchange``,
``redis``, ``clock``...), and how the reference bot's seams fill them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .faults import FaultError

if TYPE_CHECKING:
    from ..clock import SimClock
    from ..flow.bot import SniperBot
    from .export import ExportPipeline


@dataclass
class ClockTarget:
    """The ``clock`` target: the simulated clock and the components whose clock can skew."""

    clock: Any
    components: dict[str, Any] = field(default_factory=dict)


@dataclass
class Targets:
    """The objects faults act on, by target name (see :mod:`.faults` for each seam)."""

    exchange: Any = None
    market: Any = None
    feed: Any = None
    redis: Any = None
    clock: Any = None
    model: Any = None
    telemetry: Any = None

    def get(self, name: str, fault: str = "") -> Any:
        value = getattr(self, name, None)
        if value is None:
            bound = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is not None]
            raise FaultError(
                f"fault {fault or name}: no {name!r} target to act on "
                f"(bound targets: {', '.join(bound) or 'none'})"
            )
        return value

    @classmethod
    def of_bot(cls, bot: SniperBot, pipeline: ExportPipeline | None = None) -> Targets:
        """Every seam of the reference bot."""
        return cls(
            exchange=bot.client,
            market=bot.exchange,
            feed=bot.feed,
            redis=bot.cache,
            clock=ClockTarget(bot.clock, {"exchange": bot.exchange, "model": bot.model,
                                          "cache": bot.cache, "client": bot.client}),
            model=bot.model,
            telemetry=pipeline,
        )


@dataclass(frozen=True)
class SystemContext:
    """What a scenario's ``system`` factory gets: the run's seed, its simulated clock and
    the redis client the run was given (None: make your own, e.g. fakeredis)."""

    seed: int
    clock: SimClock
    redis: Any = None
