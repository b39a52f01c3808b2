"""Telemetry failures: the exporter raises, hangs, crawls, and the queue overflows.

In turn: the span exporter raises (collector down), hangs (a real 200 ms wait, then the
pipeline gives up on it and stops waiting), crawls (each export keeps it busy 30 s of
simulated time) and the queue shrinks to 16 items. Trading must not slow down or break:
discovery keeps its cadence and no export wait blocks the bot. Every lost span or log is
counted in ``telemetry_dropped_total{signal, reason}``, the accounting must balance, and
``TelemetryDropped`` must fire and resolve.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _every_reason_seen(run):
    reasons = {key.split("/")[1] for key in run.dropped}
    assert {"export_failed", "export_timeout", "queue_full"} <= reasons, run.dropped


SCENARIO = Scenario(
    name="telemetry_export",
    title="exporter raises, hangs, is slow; export queue overflows",
    faults=[
        fault("telemetry.exporter_raises", start="1m", duration="1m", signal="all"),
        fault("telemetry.exporter_hangs", start="3m", duration="1m"),
        fault("telemetry.exporter_slow", start="5m", duration="2m", latency=30),
        fault("telemetry.queue_overflow", start="5m", duration="2m", max_queue=16),
    ],
    alerts=[expect_alert("TelemetryDropped", within="3m", resolves_within="8m")],
    recovery=600.0,
    verify=_every_reason_seen,
)


def test_telemetry_export(chaos):
    chaos.run(SCENARIO)
