"""The pattern model: an ML-like confidence score for a listing's ready-state signals.

A logistic score over the calendar's ready-state codes, the time to launch and the
listing's age in the calendar, plus seeded noise. Inference takes simulated time
(``model_inference_latency_ms``). Knobs let chaos degrade it: ``confidence_drift`` shifts
every score, ``inference_slowdown`` multiplies latency, ``false_positive_burst`` is the
chance that a listing with no ready signal is scored as ready anyway.

Ground truth arrives later: once a listing's launch has passed, the calendar says whether
it opened. The model keeps its pre-launch calls and scores itself: rolling accuracy and
false-positive rate (gauges), and each judged "will open" call counted, false or not
(``pattern_positive_calls_judged_total``, ``pattern_false_positives_total``), so an alert
can take the false-positive rate over a recent window.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from ..catalog import PATTERN_MODEL
from ..clock import Clock
from .client import CalendarEntry
from .telemetry import AttrValue, MLModelObservability, mark_error

MODEL_NAME = PATTERN_MODEL
MODEL_VERSION = "2.1.0"
READY = (2, 2, 4)


@dataclass
class ModelKnobs:
    confidence_drift: float = 0.0
    inference_slowdown: float = 1.0
    false_positive_burst: float = 0.0


@dataclass(frozen=True)
class PatternMatch:
    symbol: str
    confidence: float
    pattern_type: str
    risk_level: str
    launch_time: float


def pattern_type(state: tuple[int, int, int]) -> str:
    if state == READY:
        return "ready_state"
    if state[0] == 2:
        return "pre_ready"
    return "monitoring"


class PatternModel:
    def __init__(
        self, *, seed: int, clock: Clock, threshold: float = 0.7,
        knobs: ModelKnobs | None = None, window: int = 50,
    ) -> None:
        self.clock = clock
        self.threshold = threshold
        self.knobs = knobs or ModelKnobs()
        self.observability = MLModelObservability()
        self._rng = random.Random(f"{seed}:model")
        self._calls: dict[str, bool] = {}  # symbol -> predicted "will open" before launch
        self._judged: set[str] = set()
        self._results: deque[tuple[bool, bool]] = deque(maxlen=window)  # (predicted, actual)
        self.inferences = 0

    # -- inference --------------------------------------------------------------------------
    def analyze(self, entries: Sequence[CalendarEntry], analysis_type: str) -> list[PatternMatch]:
        """Score upcoming listings inside a ``pattern_analysis`` span (the seed's)."""
        now = self.clock.time()
        attrs: dict[str, AttrValue] = {
            "ml.model_name": MODEL_NAME, "ml.model_type": "classification",
            "ml.framework": "custom", "analysis.type": analysis_type,
            "analysis.symbols_count": len(entries),
            "analysis.confidence_threshold": self.threshold,
        }
        with self.observability.tracer.start_as_current_span(
            "pattern_analysis", attributes=attrs
        ) as span:
            started = time.monotonic()
            try:
                seconds = (0.030 + 0.004 * len(entries)) * self.knobs.inference_slowdown
                self.clock.tick(seconds * self._rng.uniform(0.8, 1.25))
                matches = [self._score(e, now) for e in entries]
            except Exception as exc:
                span.set_attributes({"ml.error_type": type(exc).__name__,
                                     "ml.error_message": str(exc)})
                mark_error(span, exc)
                raise
            inference_ms = (time.monotonic() - started) * 1000.0
            self.inferences += 1
            self.observability.record_inference(MODEL_NAME, analysis_type, inference_ms)
            for match in matches:
                self.observability.record_pattern(match.pattern_type, match.confidence,
                                                  match.risk_level)
            confidences = [m.confidence for m in matches]
            span.set_attributes({
                "ml.inference_time_ms": inference_ms,
                "ml.patterns_detected": len(matches),
                "ml.avg_confidence": sum(confidences) / len(confidences) if confidences else 0.0,
                "ml.high_confidence_patterns": sum(c > 0.8 for c in confidences),
            })
            return matches

    def _score(self, entry: CalendarEntry, now: float) -> PatternMatch:
        sts, st, tt = entry.ready_state
        minutes_out = max(0.0, (entry.launch_time - now) / 60.0)
        logit = (-3.2 + 1.4 * (sts == 2) + 1.3 * (st == 2) + 2.6 * (tt == 4)
                 - 0.08 * minutes_out + self._rng.gauss(0.0, 0.35))
        kind = pattern_type(entry.ready_state)
        if kind != "ready_state" and self._rng.random() < self.knobs.false_positive_burst:
            logit, kind = 3.0, "ready_state"  # the model hallucinates a ready signal
        confidence = 1.0 / (1.0 + math.exp(-logit))
        confidence = min(1.0, max(0.0, confidence + self.knobs.confidence_drift))
        if entry.launch_time > now:
            self._calls[entry.symbol] = confidence >= self.threshold
        risk = "low" if confidence >= 0.9 else "medium" if confidence >= 0.6 else "high"
        return PatternMatch(entry.symbol, round(confidence, 6), kind, risk, entry.launch_time)

    # -- self-assessment ----------------------------------------------------------------------
    def observe_outcome(self, symbol: str, opened: bool) -> None:
        """Ground truth for a listing whose launch passed; each listing is judged once."""
        if symbol in self._judged or symbol not in self._calls:
            return
        self._judged.add(symbol)
        predicted = self._calls[symbol]
        self._results.append((predicted, opened))
        if predicted:
            self.observability.record_positive_call_judged(MODEL_NAME, opened)

    @property
    def accuracy(self) -> float:
        if not self._results:
            return 1.0
        return sum(p == a for p, a in self._results) / len(self._results)

    @property
    def false_positive_rate(self) -> float:
        positives = [a for p, a in self._results if p]
        return sum(not a for a in positives) / len(positives) if positives else 0.0

    @property
    def evaluated(self) -> int:
        return len(self._results)
