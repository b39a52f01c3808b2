"""The chaos harness: faults on the simulated clock, scenarios, a runner and a journal.

Public API::

    from pytest_sniper_otel.chaos import fault, Scenario, expect_alert, run_scenario

See :mod:`.faults` for the fault catalogue and targets, :mod:`.scenario` for the
scenario model and :mod:`.runner` for what a run does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _lazy_exports

if TYPE_CHECKING:  # the names as their modules type them (at run time they load on use)
    from .export import ExportPipeline, export_pipeline
    from .faults import (
        Fault,
        FaultError,
        FaultSpec,
        Schedule,
        describe_faults,
        fault,
        register,
        registry,
    )
    from .fixture import ChaosController
    from .result import AlertResult, ScenarioRun
    from .runner import run_scenario
    from .scenario import CHECKS, SYSTEM_CHECKS, AlertExpectation, Scenario, expect_alert
    from .targets import ClockTarget, SystemContext, Targets
    from .timeline import FaultTimeline

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


__all__ = [
    "CHECKS",
    "SYSTEM_CHECKS",
    "AlertExpectation",
    "AlertResult",
    "ChaosController",
    "ClockTarget",
    "ExportPipeline",
    "Fault",
    "FaultError",
    "FaultSpec",
    "FaultTimeline",
    "Scenario",
    "ScenarioRun",
    "Schedule",
    "SystemContext",
    "Targets",
    "describe_faults",
    "expect_alert",
    "export_pipeline",
    "fault",
    "register",
    "registry",
    "run_scenario",
]

__getattr__ = _lazy_exports(__name__, _EXPORTS)
