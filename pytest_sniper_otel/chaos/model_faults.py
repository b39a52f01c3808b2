"""Model faults: the pattern model degrades.

Target ``model``: an object with ``.knobs`` carrying ``confidence_drift`` (added to every
score), ``inference_slowdown`` (latency multiplier) and ``false_positive_burst`` (chance a
listing without a ready signal is scored as ready). Each fault pushes a value onto its
knob at inject and pops it at rollback (:mod:`.layers`), so overlapping faults unwind in
any order. ``ramp`` (seconds) grows the drift linearly, the way a model drifts, instead of
stepping. A fault's hits are the model's reads of its knob while the knob shows the fault's
value and that value is not the knob's own: each score shifted, each inference slowed, each
listing without a ready signal put to the burst's chance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from . import layers
from .faults import Fault, FaultError, chance, counted_push, positive, register, require


@dataclass
class _KnobFault(Fault):
    target = "model"
    knob: ClassVar[str] = ""

    def value(self) -> float:
        raise NotImplementedError

    def apply(self, target: Any) -> None:
        knobs = getattr(target, "knobs", None)
        try:
            # not hasattr(): a read through another fault's layer would count as its hit
            self._base = layers.base(knobs, self.knob)
        except AttributeError:
            raise FaultError(
                f"{self.name}: target {type(target).__name__} has no knobs.{self.knob}"
            ) from None
        self._shown = self.value()
        counted_push(self, knobs, self.knob, self._shown, self._read)

    def _read(self) -> None:
        if self._shown != self._base:  # a knob at its own value changes nothing
            self.struck()

    def show(self, target: Any, value: float) -> None:
        self._shown = value
        layers.update(target.knobs, self.knob, self, value)

    def revert(self, target: Any) -> None:
        layers.pop(target.knobs, self.knob, self)


@register
@dataclass
class ConfidenceDrift(_KnobFault):
    """Every confidence score shifts by ``shift`` (reached after ``ramp`` seconds)."""

    shift: float = -0.35
    ramp: float = 0.0
    name = "model.confidence_drift"
    knob = "confidence_drift"
    summary = "shift every confidence score by `shift`, ramping over `ramp` s"

    def validate(self) -> None:
        require(not isinstance(self.shift, bool) and isinstance(self.shift, int | float)
                and -1.0 <= self.shift <= 1.0, f"shift must be within [-1, 1], got {self.shift!r}")
        positive(self.ramp, "ramp", allow_zero=True)

    def value(self) -> float:
        self._elapsed = 0.0
        return float(self._base) + (self.shift if self.ramp == 0 else 0.0)

    def step(self, target: Any, at: float, dt: float) -> None:
        if self.ramp > 0:
            self._elapsed += dt
            done = min(1.0, self._elapsed / self.ramp)
            self.show(target, self._base + self.shift * done)


@register
@dataclass
class InferenceSlowdown(_KnobFault):
    """Inference takes ``factor`` times longer (a cold GPU, a noisy neighbour)."""

    factor: float = 20.0
    name = "model.inference_slowdown"
    knob = "inference_slowdown"
    summary = "multiply inference latency by `factor`"

    def validate(self) -> None:
        positive(self.factor, "factor")

    def value(self) -> float:
        return float(self.factor)


@register
@dataclass
class FalsePositiveBurst(_KnobFault):
    """A listing with no ready signal is scored as ready with chance ``rate``."""

    rate: float = 0.6
    name = "model.false_positive_burst"
    knob = "false_positive_burst"
    summary = "score non-ready listings as ready with chance `rate`"

    def validate(self) -> None:
        chance(self.rate, "rate")

    def value(self) -> float:
        return float(self.rate)
