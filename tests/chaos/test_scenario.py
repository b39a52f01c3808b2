"""Scenarios and the runner: bad input fails before anything runs; runs verify and journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault, run_scenario
from pytest_sniper_otel.chaos.faults import FaultError


def _scenario(**overrides: Any) -> Scenario:
    fields: dict[str, Any] = {
        "name": "t", "title": "test", "faults": [fault("redis.outage", start=30, duration=60)],
        "warmup": 30.0, "duration": 120.0, "recovery": 60.0, "baseline": False,
    }
    fields.update(overrides)
    return Scenario(**fields)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"faults": [fault("redis.outage", start=200)]},
         "scenario 't': fault redis.outage starts at 200s, after the method ends (120s)"),
        ({"checks": ["ledger_reconciles", "nothing_lost"]},
         "scenario 't': unknown check(s) nothing_lost"),
        ({"breaker": "sometimes"},
         "scenario 't': breaker must be one of closed, opens_and_closes, any, got 'sometimes'"),
        ({"faults": ["redis.outage"]},
         "scenario 't': faults must be fault(...) specs, got 'redis.outage'"),
        ({"name": "has space"}, "scenario name 'has space' must be letters, digits and _"),
        ({"alerts": [expect_alert("RedisUnavailable", cause="redis.latency")]},
         "scenario 't': alert 'RedisUnavailable' names cause 'redis.latency', which is not one "
         "of its faults (redis.outage)"),
    ],
)
def test_bad_scenarios_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultError) as info:
        _scenario(**overrides)
    assert str(info.value).startswith(message)


def test_an_unknown_alert_fails_before_the_bot_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_sniper_otel.flow import bot

    def no_bot(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the bot was built although the scenario is invalid")

    monkeypatch.setattr(bot.SniperBot, "create", no_bot)
    scenario = _scenario(alerts=[expect_alert("RedisDown")])
    with pytest.raises(FaultError, match=r"expects alert 'RedisDown', which no rule defines"):
        run_scenario(scenario)


def test_a_run_verifies_journals_and_rolls_back(tmp_path: Path) -> None:
    scenario = _scenario(
        faults=[fault("redis.outage", start=30, duration=180)], duration=240.0, recovery=120.0,
        alerts=[expect_alert("RedisUnavailable", within="3m", resolves_within="2m")],
    )
    run = run_scenario(scenario, seed=3)
    assert run.ok, run.failure_message()
    assert {c.name for c in run.checks} == set(scenario.checks)
    assert run.faults[0].records[0].started == 30.0
    assert run.faults[0].records[0].ended == 210.0
    assert run.faults[0].total_hits() > 0
    result = run.alert_results[0]
    assert result.fired and result.detection_delay is not None and result.detection_delay <= 180
    run.write_journal(tmp_path / "journal.json")
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed" and journal["seed"] == 3
    assert [(e["action"], e["at"]) for e in journal["run"] + journal["rollbacks"]] == [
        ("inject", 30.0), ("rollback", 210.0)]
    assert journal["steady_states"]["before"]["met"] is True
    assert {v["check"] for v in journal["verification"]} == set(scenario.checks)


def test_a_broken_invariant_is_reported_with_the_seed() -> None:
    # A Redis outage does not take the websocket down: expecting that alert must break.
    scenario = _scenario(alerts=[expect_alert("WebsocketConnectionsDown", within="1m")])
    run = run_scenario(scenario, seed=5)
    assert not run.ok
    assert [c.name for c in run.broken] == ["alerts"]
    message = run.failure_message()
    assert "WebsocketConnectionsDown never fired (expected within 60s of the fault)" in message
    assert "reproduce: sniper-otel chaos --scenario t --seed 5" in message


def test_a_crash_mid_run_is_an_error_and_faults_are_still_rolled_back() -> None:
    from dataclasses import dataclass

    from pytest_sniper_otel.chaos.faults import Fault, register

    @register
    @dataclass
    class Explodes(Fault):
        name = "model.test_explodes"
        target = "model"

        def apply(self, target: Any) -> None:
            target.knobs.inference_slowdown = 3.0

        def step(self, target: Any, at: float, dt: float) -> None:
            raise RuntimeError("boom")

        def revert(self, target: Any) -> None:
            target.knobs.inference_slowdown = 1.0

    run = run_scenario(_scenario(faults=[fault("model.test_explodes", start=10, duration=20)]))
    assert run.error == "RuntimeError: boom" and not run.ok
    f = run.faults[0]
    assert not f.active and f.records[0].ended is not None
    assert run.bot.model.knobs.inference_slowdown == 1.0
    assert run.to_json()["status"] == "aborted"


def test_checks_catch_a_leaked_span_and_an_uncorrelated_log() -> None:
    import logging
    from dataclasses import dataclass

    from opentelemetry import trace

    from pytest_sniper_otel.chaos.faults import Fault, register

    @register
    @dataclass
    class Sloppy(Fault):
        """Instrumentation gone wrong: a span that never ends, a log outside any span."""

        name = "model.test_sloppy"
        target = "model"

        def apply(self, target: Any) -> None:
            self.leaked = trace.get_tracer("sloppy").start_span("leaked-span")
            logging.getLogger("sniper.sloppy").warning("logged outside any span")
            self.struck()

    run = run_scenario(_scenario(faults=[fault("model.test_sloppy", start=10, duration=20)]))
    broken = {c.name: c.detail for c in run.broken}
    assert broken == {
        "spans_ended": "leaked-span never ended",
        "logs_correlated": broken["logs_correlated"],
    }
    assert broken["logs_correlated"].startswith("uncorrelated: WARN  sniper.sloppy: logged "
                                                "outside any span [uncorrelated]")


def test_scenarios_with_equal_bot_and_rules_share_one_baseline() -> None:
    from pytest_sniper_otel.alerts.defaults import default_rules

    short = {"warmup": 30.0, "duration": 60.0, "recovery": 30.0, "baseline": True}

    def slower_discovery(config: Any) -> None:
        config.discovery_interval = 45.0

    def same_as_default(config: Any) -> None:
        config.discovery_interval = config.discovery_interval

    outage = _scenario(name="outage", **short)
    # other faults, a configure hook that changes nothing, and a fresh rule set: same baseline
    latency = _scenario(name="latency", faults=[fault("redis.latency", start=10, duration=20)],
                        configure=same_as_default, **short)
    slower = _scenario(name="slower", configure=slower_discovery, **short)
    runs = [run_scenario(s, rules=default_rules()) for s in (outage, latency, slower)]
    assert all(r.baseline is not None and r.error is None for r in runs), [r.error for r in runs]
    assert runs[0].baseline is runs[1].baseline
    assert runs[2].baseline is not runs[0].baseline  # another bot configuration: its own
