"""The chaos speed benchmark's journal comparison: what it forgives and what it names."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _bench() -> ModuleType:
    path = ROOT / "load" / "bench_chaos_vs.py"
    spec = importlib.util.spec_from_file_location("bench_chaos_vs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _scenario(name: str) -> dict[str, Any]:
    return {
        "experiment": {"name": name, "seed": 0},
        "run": [{"fault": "redis.outage", "activity": [{"hits": 215, "clock_started": 1.5}]}],
        "alerts": {"transitions": ["+120s RedisUnavailable: inactive -> pending (value 1)"]},
        "pipeline": {"max_queued": 12, "longest_pump_wall_s": 0.01},
        "trace": {"trace_id": "ab", "spans": [{"span_id": "01", "name": "redis.get"}]},
        "summary": "longest export wait 3.2 ms wall",
    }


def _journal(*scenarios: dict[str, Any]) -> dict[str, Any]:
    return {"scenarios": list(scenarios), "simulated_seconds": 600, "wall_seconds": 4.2}


def test_wall_clock_readings_random_ids_and_new_fields_are_not_differences() -> None:
    before = _scenario("redis_outage")
    now = copy.deepcopy(before)
    now["pipeline"] = {"max_queued": 40, "longest_pump_wall_s": 0.3}
    now["trace"]["trace_id"] = "cd"
    now["trace"]["spans"][0]["span_id"] = "02"
    now["summary"] = "longest export wait 7.9 ms wall"
    now["alert_series"] = [[0, 1.0]]  # a field only the newer journal has
    assert _bench().compare_journals(_journal(before), _journal(now)) == {"redis_outage": []}


def test_changed_values_lists_and_dropped_scenarios_are_named() -> None:
    before = [_scenario("redis_outage"), _scenario("clock")]
    now = copy.deepcopy(before[0])
    now["run"][0]["activity"][0]["hits"] = 214
    now["alerts"]["transitions"].append("+180s RedisUnavailable: pending -> firing (value 1)")
    added = _scenario("telemetry_export")  # a scenario added since is not a difference
    found = _bench().compare_journals(_journal(*before), _journal(now, added))
    assert found["clock"] == ["ran before, not now"]
    assert [d.partition(":")[0] for d in found["redis_outage"]] == [
        ".alerts.transitions", ".run[0].activity[0].hits"]
    assert found["redis_outage"][1] == ".run[0].activity[0].hits: '215' -> '214'"
    assert set(found) == {"clock", "redis_outage"}
