"""Clock faults: the wall clock steps forward or back, and components disagree on time.

Target ``clock``: an object with ``.clock`` (the simulated clock, which has ``jump``) and
``.components``, a mapping of component name -> object with a replaceable ``clock``
attribute (the exchange simulator, the model, the cache...).

freezegun moves ``time.monotonic`` with the wall clock when it jumps, so a jump is seen by
every component at once. Skew between components is modelled in the fault itself: the
skewed component's ``clock`` is swapped for a :class:`SkewedClock` that reads the real
simulated clock plus an offset, and ticks through to it. Its hits are the readings the
component takes of that clock (``now()``, ``time()``) while skewed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import layers
from .faults import Fault, FaultError, register, require


class SkewedClock:
    """A view of ``inner`` shifted by ``offset`` seconds; ticking moves the real clock.
    ``reads`` counts the skewed readings it gave (``now``, ``time``), and ``on_read`` is
    called at each."""

    def __init__(self, inner: Any, offset: float,
                 on_read: Callable[[], None] | None = None) -> None:
        self.inner = inner
        self.offset = offset
        self.on_read = on_read
        self.reads = 0

    def _read(self) -> None:
        self.reads += 1
        if self.on_read is not None:
            self.on_read()

    def now(self) -> dt.datetime:
        self._read()
        now: dt.datetime = self.inner.now() + dt.timedelta(seconds=self.offset)
        return now

    def time(self) -> float:
        self._read()
        return float(self.inner.time()) + self.offset

    def tick(self, seconds: float) -> None:
        self.inner.tick(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"<SkewedClock {self.offset:+g}s of {self.inner!r}>"


def _number(value: Any, name: str) -> None:
    require(not isinstance(value, bool) and isinstance(value, int | float),
            f"{name} must be a number of seconds, got {value!r}")


@register
@dataclass
class ClockJump(Fault):
    """The wall clock steps by ``seconds`` (negative: backwards) at inject, as an NTP step
    or a VM resume does. With ``corrected`` the step is undone at rollback (NTP fixing a
    bad step); otherwise time stays where it jumped."""

    seconds: float = 300.0
    corrected: bool = False
    name = "clock.jump"
    target = "clock"
    summary = "step the wall clock by `seconds` (negative: back); corrected=True undoes it"

    def validate(self) -> None:
        _number(self.seconds, "seconds")
        require(self.seconds != 0, "seconds must not be 0 (that is no jump)")

    def apply(self, target: Any) -> None:
        self._jumped = self.strikes()
        if self._jumped:
            _clock(target, self.name).jump(self.seconds)

    def revert(self, target: Any) -> None:
        if self._jumped and self.corrected:
            _clock(target, self.name).jump(-self.seconds)


@register
@dataclass
class ClockSkew(Fault):
    """``component``'s clock runs ``offset`` seconds ahead (negative: behind) of the rest."""

    component: str = "exchange"
    offset: float = 30.0
    name = "clock.skew"
    target = "clock"
    summary = "one component's clock is `offset` seconds off the others'"

    def validate(self) -> None:
        require(isinstance(self.component, str) and bool(self.component),
                f"component must be a component name, got {self.component!r}")
        _number(self.offset, "offset")
        require(self.offset != 0, "offset must not be 0 (that is no skew)")

    def apply(self, target: Any) -> None:
        components = getattr(target, "components", None) or {}
        if self.component not in components:
            raise FaultError(
                f"{self.name}: no component {self.component!r} (components: "
                f"{', '.join(sorted(components)) or 'none'})"
            )
        owner = components[self.component]
        self._owner = owner
        # skew relative to the real clock, not to another skew fault's view of it; a hit per
        # reading the component takes of its skewed clock
        skewed = SkewedClock(layers.base(owner, "clock"), self.offset, on_read=self.struck)
        layers.push(owner, "clock", self, skewed)

    def revert(self, target: Any) -> None:
        layers.pop(self._owner, "clock", self)


def _clock(target: Any, fault: str) -> Any:
    clock = getattr(target, "clock", target)
    if not hasattr(clock, "jump"):
        raise FaultError(f"{fault}: target {type(target).__name__} has no clock with jump()")
    return clock
