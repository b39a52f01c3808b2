"""The chaos harness: faults on the simulated clock, scenarios, a runner and a journal.

Public API::

    from pytest_sniper_otel.chaos import fault, Scenario, expect_alert, run_scenario

See :mod:`.faults` for the fault catalogue and targets, :mod:`.scenario` for the
scenario model and :mod:`.runner` for what a run does.
"""

from __future__ import annotations

from .. import _lazy_exports

_EXPORTS = {
    "fault": "faults",
    "Fault": "faults",
    "FaultSpec": "faults",
    "FaultError": "faults",
    "Schedule": "faults",
    "register": "faults",
    "registry": "faults",
    "describe_faults": "faults",
    "Scenario": "scenario",
    "AlertExpectation": "scenario",
    "expect_alert": "scenario",
    "CHECKS": "scenario",
    "SYSTEM_CHECKS": "scenario",
    "SystemContext": "targets",
    "run_scenario": "runner",
    "ScenarioRun": "result",
    "AlertResult": "result",
    "Targets": "targets",
    "ClockTarget": "targets",
    "FaultTimeline": "timeline",
    "ChaosController": "fixture",
    "ExportPipeline": "export",
    "export_pipeline": "export",
}


__getattr__ = _lazy_exports(__name__, _EXPORTS)
