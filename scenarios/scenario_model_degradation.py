"""Model degradation: inference slows, confidence drifts, false positives burst.

For five minutes the model's inference is 15x slower and its confidence drifts down by 0.3
(ramping over three minutes); then for six minutes it hallucinates ready signals on 60% of
the listings that have none. The runner also runs the same seed without faults (the
baseline), so each effect is measured against what the healthy model did at the same time:

* inference spans (``pattern_analysis``, ``ml.inference_time_ms``) are much slower;
* once fully drifted, average confidence is clearly lower (scores clamp at 0);
* the hallucinations show as "ready" candidates in ``analyze-patterns`` spans, at least
  twice as many as the healthy model found;
* ``ModelConfidenceDrift`` fires (its median of ready-state confidence drops below 0.7
  for five minutes) and resolves once the drift is rolled back;
* trading stays safe: every intent ends in one outcome and the ledger reconciles.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _mean(spans, attribute):
    values = [s.attributes[attribute] for s in spans]
    assert values, "no pattern_analysis span in the window"
    return sum(values) / len(values)


def _degradation_observed(run):
    healthy = run.baseline
    start, end = run.relative_window(0)
    fast = _mean(healthy.spans_in("pattern_analysis", start, end), "ml.inference_time_ms")
    slow = _mean(run.spans_in("pattern_analysis", start, end), "ml.inference_time_ms")
    assert slow > 8 * fast, f"inference {fast:.0f} ms healthy, {slow:.0f} ms slowed down"

    start, end = run.relative_window(1)
    sure = _mean(healthy.spans_in("pattern_analysis", start + 180, end), "ml.avg_confidence")
    drifted = _mean(run.spans_in("pattern_analysis", start + 180, end), "ml.avg_confidence")
    assert drifted < sure - min(0.1, sure / 2), (
        f"confidence {sure:.3f} healthy, {drifted:.3f} drifted")

    start, end = run.relative_window(2)
    honest = sum(s.attributes["pattern.candidates"]
                 for s in healthy.spans_in("analyze-patterns", start, end))
    fooled = sum(s.attributes["pattern.candidates"]
                 for s in run.spans_in("analyze-patterns", start, end))
    assert fooled >= 2 * honest + 3, f"{honest} ready candidates healthy, {fooled} fooled"


SCENARIO = Scenario(
    name="model_degradation",
    title="15x slower inference, confidence drift -0.3, then a false-positive burst",
    faults=[
        fault("model.inference_slowdown", start="1m", duration="5m", factor=15),
        fault("model.confidence_drift", start="1m", duration="5m", shift=-0.3, ramp=180),
        fault("model.false_positive_burst", start="6m", duration="6m", rate=0.6),
    ],
    duration=840.0,
    # the drift ramps for 3 minutes, then the rule needs its condition for 5
    alerts=[expect_alert("ModelConfidenceDrift", within="10m", resolves_within="5m")],
    breaker="any",
    verify=_degradation_observed,
)


def test_model_degradation(chaos):
    chaos.run(SCENARIO)
