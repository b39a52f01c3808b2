"""Prometheus export: exported names, rule file, promtool tests, and promtool itself."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from pytest_sniper_otel.alerts import (
    DRILLS,
    HEALTHY,
    AlertEvaluator,
    AlertState,
    Recording,
    RuleSet,
    default_rules,
    export,
    find_promtool,
    load_rules,
    rule,
    run_drill,
    run_promtool,
    run_timeline,
)
from pytest_sniper_otel.alerts.cli import main as rules_cli
from pytest_sniper_otel.alerts.naming import sample_name
from pytest_sniper_otel.alerts.prometheus import input_series, promtool_test, rule_file, to_yaml
from pytest_sniper_otel.catalog import METRICS, MetricSpec
from pytest_sniper_otel.errors import SpecError

from .alertkit import T0, counter, exporter_series, gauge, histogram, snap


# names ---------------------------------------------------------------------------------
def _our_sample_names(spec: MetricSpec) -> set[str]:
    if spec.kind == "histogram":
        return {sample_name(spec.name, spec.kind, spec.unit, p) for p in ("bucket", "count", "sum")}
    return {sample_name(spec.name, spec.kind, spec.unit)}


TRICKY = [
    MetricSpec("requests_total", "counter", "", unit="s"),
    MetricSpec("payload", "histogram", "", unit="By"),
    MetricSpec("speed", "gauge", "", unit="m/s"),
    MetricSpec("jobs", "counter", "", unit="{jobs}"),
    MetricSpec("load", "gauge", "", unit="1"),
    MetricSpec("queue.depth", "updowncounter", "", unit="MB"),
    MetricSpec("lives", "gauge", "", unit="%"),
]


@pytest.mark.parametrize("specs", [list(METRICS.values()), TRICKY], ids=["catalogue", "tricky"])
def test_names_match_what_the_otel_prometheus_exporter_exposes(specs: list[MetricSpec]) -> None:
    expected = set().union(*(_our_sample_names(s) for s in specs))
    assert set(exporter_series(specs)) == expected


def test_a_few_exported_names_spelled_out() -> None:
    assert sample_name("execution_latency_ms", "histogram", "ms", "bucket") == (
        "execution_latency_ms_milliseconds_bucket"
    )
    assert sample_name("detected_patterns_by_type", "counter") == "detected_patterns_by_type_total"
    assert sample_name("cache_hits_total", "counter") == "cache_hits_total"
    assert sample_name("cache_hit_rate", "gauge", "%") == "cache_hit_rate_percent"


# files -------------------------------------------------------------------------------------
def test_rule_file_yaml() -> None:
    rules = load_rules([
        rule("BreakerOpen", "max(circuit_breaker_open) > 0", severity="critical",
             labels={"team": "risk"}, annotations={"summary": 'halted: "stop"'}),
        rule("Drops", "increase(telemetry_dropped_total[5m]) > 0", for_="90s"),
    ])  # fmt: skip
    text = to_yaml(rule_file(rules))
    assert yaml.safe_load(text) == rule_file(rules)
    assert text == (
        "groups:\n"
        "- name: sniper-otel\n"
        "  rules:\n"
        "  - alert: BreakerOpen\n"
        "    expr: max(circuit_breaker_open) > 0.0\n"
        "    labels:\n"
        "      severity: critical\n"
        "      team: risk\n"
        "    annotations:\n"
        "      summary: 'halted: \"stop\"'\n"
        "  - alert: Drops\n"
        "    expr: sum(increase(telemetry_dropped_total[5m])) > 0.0\n"
        "    for: 1m30s\n"
        "    labels:\n"
        "      severity: warning\n"
    )


def test_yaml_special_values_read_as_promtool_reads_them() -> None:
    text = to_yaml({"value": math.inf, "low": -math.inf, "word": "yes", "series": "0+1x3"})
    assert text == "value: .inf\nlow: -.inf\nword: 'yes'\nseries: 0+1x3\n"
    assert yaml.safe_load(text) == {"value": math.inf, "low": -math.inf, "word": "yes",
                                    "series": "0+1x3"}


def test_input_series_are_the_exported_cumulative_series() -> None:
    snaps = [
        snap(0, gauge("circuit_breaker_open", 0)),
        snap(15, gauge("circuit_breaker_open", 1),
             histogram("execution_latency_ms", (10, 100), (1, 2, 0), "ms", symbol="X")),
        snap(30, gauge("circuit_breaker_open", 1),
             counter("telemetry_dropped_total", 3, signal="logs"),
             histogram("execution_latency_ms", (10, 100), (1, 3, 1), "ms", symbol="X")),
    ]  # fmt: skip
    bucket = "execution_latency_ms_milliseconds_bucket"
    assert input_series(snaps) == [
        {"series": "circuit_breaker_open{}", "values": "0.0 1.0 1.0"},
        {"series": bucket + '{le="+Inf",symbol="X"}', "values": "_ 3.0 5.0"},
        {"series": bucket + '{le="10.0",symbol="X"}', "values": "_ 1.0 1.0"},
        {"series": bucket + '{le="100.0",symbol="X"}', "values": "_ 3.0 4.0"},
        {"series": 'execution_latency_ms_milliseconds_count{symbol="X"}', "values": "_ 3.0 5.0"},
        {"series": 'execution_latency_ms_milliseconds_sum{symbol="X"}', "values": "_ 0.0 0.0"},
        {"series": 'telemetry_dropped_total{signal="logs"}', "values": "_x2 3.0"},
    ]  # fmt: skip


def test_recordings_round_trip_and_must_be_on_the_interval_grid(tmp_path: Path) -> None:
    ev = run_drill(DRILLS[0]).evaluator
    rec = Recording.of(ev, "spike")
    rec.save(tmp_path / "r.json")
    back = Recording.load(tmp_path / "r.json")
    # compared by repr: a ratio of two rates that are both 0 is NaN, and NaN != NaN
    assert any(v != v for e in rec.evaluations for v in e.values.values() if v is not None)
    assert repr(back) == repr(rec)
    gap = replace(rec, evaluations=rec.evaluations[:1] + rec.evaluations[2:])
    with pytest.raises(SpecError, match=r"evaluation 1 is at \+120s, not \+60s; promtool eval"):
        export(tmp_path / "out", default_rules(), [gap])


def test_scrapes_off_the_evaluation_grid_are_laid_on_a_finer_one() -> None:
    ev = AlertEvaluator(RuleSet([rule("Open", "max(circuit_breaker_open) > 0")]),
                        evaluation_phase=50)  # fmt: skip
    ev.observe_all([snap(t, gauge("circuit_breaker_open", 1)) for t in (0, 20, 40)])
    test = promtool_test(Recording.of(ev, "phase"), ev.rules)
    # evaluations at -10 s and 50 s: the grid starts at -10 s, every 10 s
    assert test["interval"] == "10s"
    assert test["input_series"] == [
        {"series": "circuit_breaker_open{}", "values": "_ 1.0 _ 1.0 _ 1.0"}
    ]


# promtool ------------------------------------------------------------------------------
def test_every_shipped_rule_agrees_with_promtool_on_its_drill(
    promtool: str, tmp_path: Path
) -> None:
    rules = default_rules()
    recordings = [Recording.of(run_drill(d, rules).evaluator, d.name) for d in DRILLS]
    fired = {name for r in recordings for names in r.firing for name in names}
    assert fired == set(rules.names()), "every shipped rule fires in some drill"
    result = run_promtool(promtool, export(tmp_path, rules, recordings))
    assert result.ok, result.output
    assert result.output.count("SUCCESS") == 1 + len(DRILLS)


USER_RULES = [
    rule("SlowOrderApi", 'quantile(0.9, api_request_latency_ms{endpoint=~"/api/v3/.*"}[2m]) > 400',
         for_="30s"),
    rule("NotOk", 'rate(api_request_latency_ms{outcome!="success"}[1m]) / '
         '(rate(api_request_latency_ms{outcome="success"}[1m])'
         ' + rate(api_request_latency_ms{outcome!="success"}[1m])) > 0.1'
         " and rate(api_request_latency_ms[1m]) > 0.5 and max(circuit_breaker_open) < 1"),
    rule("HealthMissing", 'absent(agent_health_score{agent_id="agent-2"})', for_="15s",
         labels={"team": "agents"}),
    rule("AvgHealth", "avg(agent_health_score) <= 0.8"),
    rule("FewHits", "increase(cache_hits_total[1m]) < 40", for_="45s"),
]  # fmt: skip


def test_user_rules_of_every_kind_agree_with_promtool(promtool: str, tmp_path: Path) -> None:
    rules = RuleSet(USER_RULES)
    # agent-2 first reports during the fault: HealthMissing fires at the start, then resolves
    healthy = replace(HEALTHY, agent_health=(0.95, 0.9))
    faulty = replace(HEALTHY, api_latency_ms=900.0, api_error_fraction=0.3,
                     agent_health=(0.9, 0.5, 0.7), cache_lookups=5)  # fmt: skip
    ev = run_timeline([(healthy, 300), (faulty, 300), (healthy, 300)], rules)
    assert set(ev.fired()) == {r.name for r in USER_RULES}
    result = run_promtool(promtool, export(tmp_path, rules, [Recording.of(ev, "user rules")]))
    assert result.ok, result.output


def test_promtool_catches_a_disagreement(promtool: str, tmp_path: Path) -> None:
    rules = default_rules()
    rec = Recording.of(run_drill(DRILLS[-1], rules).evaluator, "tampered")
    def tampered(state: AlertState | None = None, scale: float = 1.0) -> list[Recording]:
        name = "TelemetryDropped"
        evaluations = tuple(
            replace(
                e,
                states={**e.states, name: state or e.states[name]},
                clause_values={
                    **e.clause_values,
                    name: tuple(v * scale if v else v for v in e.clause_values[name]),
                },
            )
            for e in rec.evaluations
        )
        return [replace(rec, evaluations=evaluations)]

    # claim TelemetryDropped never fired
    inactive = tampered(AlertState.INACTIVE)
    result = run_promtool(promtool, export(tmp_path / "states", rules, inactive))
    assert not result.ok
    assert "alertname: TelemetryDropped" in result.output
    # claim it was pending at every evaluation: the ALERTS series disagrees
    pending = tampered(AlertState.PENDING)
    result = run_promtool(promtool, export(tmp_path / "pending", rules, pending))
    assert not result.ok
    assert 'alertstate="pending"' in result.output, result.output
    # claim every increase of dropped telemetry was 1% larger than it was
    result = run_promtool(promtool, export(tmp_path / "values", rules, tampered(scale=1.01)))
    assert not result.ok
    assert 'expr: "abs((sum(increase(telemetry_dropped_total[5m])))' in result.output, result.output
    assert "alertname:" not in result.output


# CLI ---------------------------------------------------------------------------------------
def test_cli_lists_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rules_cli(["list"]) == 0
    out = capsys.readouterr().out
    assert (
        "ExecutionLatencyP99High [critical, for 120s]\n"
        "  rule:   quantile(0.99, execution_latency_ms[5m]) > 2000\n"
        "  promql: histogram_quantile(0.99, sum by (le) "
        "(rate(execution_latency_ms_milliseconds_bucket[5m]))) > 2000.0\n"
    ) in out
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps([{"name": "Quiet", "expr": "increase(orders_total[10m]) < 1"}]))
    assert rules_cli(["export", str(tmp_path / "out"), "--rules", str(mine), "--no-drills"]) == 0
    text = (tmp_path / "out" / "sniper-otel-rules.yml").read_text()
    assert "- alert: Quiet\n    expr: sum(increase(orders_total[10m])) < 1.0\n" in text
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sniper-otel-rules.yml"]


def test_cli_reports_a_bad_rule_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "Ghost", "expr": "max(ghost) > 1"}]))
    assert rules_cli(["list", "--rules", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"sniper-otel rules: {bad}: rules[0]: rule 'Ghost': metric 'ghost' is not emitted by "
        "the bot (not in the catalogue)\n"
    )


def test_find_promtool_honours_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PROMTOOL", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="is not an executable file"):
        find_promtool()
    tool = tmp_path / "promtool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PROMTOOL", str(tool))
    assert find_promtool() == str(tool)


def test_t0_is_the_sim_clock_default() -> None:
    assert T0 == 1_767_225_600


def test_a_series_that_leaves_a_scrape_is_marked_stale() -> None:
    snaps = [snap(15 * i, *([gauge("circuit_breaker_open", 1)] if i in (1, 2, 5) else []))
             for i in range(7)]  # fmt: skip
    assert input_series(snaps) == [
        {"series": "circuit_breaker_open{}", "values": "_ 1.0 1.0 stale _ 1.0 stale"}
    ]


def test_cli_verify_turns_a_saved_recording_into_a_promtool_test(
    promtool: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMTOOL", promtool)
    Recording.of(run_drill(DRILLS[-1]).evaluator, "saved run").save(tmp_path / "run.json")
    out = tmp_path / "out"
    code = rules_cli(["verify", str(out), "--recording", str(tmp_path / "run.json"), "--no-drills"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert sorted(p.name for p in out.iterdir()) == [
        "sniper-otel-rules.yml",
        "test-00-saved-run.yml",
    ]
    assert printed.count("SUCCESS") == 2
