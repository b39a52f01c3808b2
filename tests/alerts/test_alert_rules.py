"""Rules as data: parsing, rendering to PromQL, and clear errors at load time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_sniper_otel.alerts import (
    DEFAULT_RULES,
    RuleError,
    default_rules,
    load_rules,
    parse_duration,
    promql,
    rule,
)
from pytest_sniper_otel.alerts.expr import format_duration
from pytest_sniper_otel.catalog import METRICS, MetricSpec
from pytest_sniper_otel.errors import SpecError


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("max(portfolio_drawdown_ratio) > 0.1", "max(portfolio_drawdown_ratio) > 0.1"),
        (
            'avg(agent_health_score{agent_type!="risk"}) <= 0.5',
            'avg(agent_health_score{agent_type!="risk"}) <= 0.5',
        ),
        (
            "increase(telemetry_dropped_total[5m]) > 0",
            "sum(increase(telemetry_dropped_total[5m])) > 0.0",
        ),
        (
            'rate(api_request_latency_ms{outcome="error"}[90s])'
            " / rate(api_request_latency_ms[90s]) > 0.05",
            'sum(rate(api_request_latency_ms_milliseconds_count{outcome="error"}[1m30s]))'
            " / sum(rate(api_request_latency_ms_milliseconds_count[1m30s])) > 0.05",
        ),
        (
            "rate(cache_hits_total[10m])"
            " / (rate(cache_hits_total[10m]) + rate(cache_misses_total[10m])) < 0.5",
            "sum(rate(cache_hits_total[10m])) / (sum(rate(cache_hits_total[10m]))"
            " + sum(rate(cache_misses_total[10m]))) < 0.5",
        ),
        (
            'quantile(0.99, execution_latency_ms{symbol=~"BTC.*"}[5m]) > 2000',
            "histogram_quantile(0.99, sum by (le) "
            '(rate(execution_latency_ms_milliseconds_bucket{symbol=~"BTC.*"}[5m])))'
            " > 2000.0",
        ),
        ('absent(agent_health_score{agent_id="a1"})', 'absent(agent_health_score{agent_id="a1"})'),
        ("absent(execution_latency_ms)", "absent(execution_latency_ms_milliseconds_count)"),
        ("sum(trading_success_rate) < 50", "sum(trading_success_rate_percent) < 50.0"),
        ("sum(cache_hits_total) > 1e3", "sum(cache_hits_total) > 1000.0"),
        (
            "max(circuit_breaker_open) > 0 and rate(cache_hits_total[1m]) > 1"
            " and absent(circuit_breaker_open)",
            "max(circuit_breaker_open) > 0.0 and on() sum(rate(cache_hits_total[1m])) > 1.0"
            " and on() absent(circuit_breaker_open)",
        ),
    ],
)
def test_every_expression_type_renders_to_promql_over_exported_names(
    expr: str, expected: str
) -> None:
    r = rule("R", expr)
    load_rules([r])  # valid against the catalogue
    assert promql(r.expression, METRICS) == expected


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("90s") == 90.0
    assert parse_duration("250ms") == 0.25
    assert parse_duration(12) == 12.0
    assert format_duration(90) == "1m30s"
    assert format_duration(300) == "5m"
    assert format_duration(0) == "0s"
    with pytest.raises(SpecError, match=r"^duration must be a number of seconds or a string "
                       r"like '2m', got '5 minutes' \(units ms, s, m, h, d: 250ms, 90s, 1m30s\)$"):
        parse_duration("5 minutes")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"name": "Ghost", "expr": "max(ghost_metric) > 1"},
            "rule 'Ghost': metric 'ghost_metric' is not emitted by the bot (not in the catalogue)",
        ),
        (
            {"name": "Broken", "expr": "max(agent_health_score > 1"},
            "rule 'Broken': malformed expression 'max(agent_health_score > 1': "
            "expected ')' at column 24, found '>'",
        ),
        (
            {"name": "Backwards", "expr": "rate(cache_hits_total[-5m]) > 1"},
            "rule 'Backwards': malformed expression 'rate(cache_hits_total[-5m]) > 1': "
            "window must be positive, got -5m",
        ),
        (
            {"name": "NoUnit", "expr": "rate(cache_hits_total[5]) > 1"},
            "rule 'NoUnit': malformed expression 'rate(cache_hits_total[5]) > 1': "
            "window '5' needs a unit, e.g. 5s or 5m",
        ),
        (
            {"name": "NoThreshold", "expr": "max(agent_health_score)"},
            "rule 'NoThreshold': malformed expression 'max(agent_health_score)': "
            "expected a comparison (> >= < <= == !=) and a threshold at column 24, "
            "found end of expression",
        ),
        (
            {"name": "Bare", "expr": "agent_health_score < 1"},
            "rule 'Bare': malformed expression 'agent_health_score < 1': bare metric "
            "'agent_health_score' at column 1: wrap it as max(...), min(...), sum(...), avg(...), "
            "rate(...[w]), increase(...[w]) or quantile(q, ...[w])",
        ),
        (
            {"name": "Label", "expr": 'max(agent_health_score{colour="red"}) < 1'},
            "rule 'Label': metric 'agent_health_score' has no attribute 'colour' "
            "(attributes: " + ", ".join(METRICS["agent_health_score"].attributes) + ")",
        ),
        (
            {"name": "GaugeRate", "expr": "rate(agent_health_score[5m]) > 1"},
            "rule 'GaugeRate': rate() needs a counter or histogram, "
            "'agent_health_score' is a gauge",
        ),
        (
            {"name": "HistMax", "expr": "max(execution_latency_ms) > 1"},
            "rule 'HistMax': max(execution_latency_ms): a histogram has no single value; "
            "use quantile(q, m[w]) or rate(m[w])",
        ),
        (
            {"name": "CounterQ", "expr": "quantile(0.5, cache_hits_total[5m]) > 1"},
            "rule 'CounterQ': quantile() needs a histogram, 'cache_hits_total' is a counter",
        ),
        (
            {"name": "Q", "expr": "quantile(1.5, execution_latency_ms[5m]) > 1"},
            "rule 'Q': malformed expression 'quantile(1.5, execution_latency_ms[5m]) > 1': "
            "quantile must be within [0, 1], got 1.5",
        ),
        (
            {"name": "Neg", "expr": "max(agent_health_score) < 1", "for": "-1m"},
            "rule 'Neg': 'for' must be a duration >= 0, got -60.0",
        ),
        (
            {"name": "Sev", "expr": "max(agent_health_score) < 1", "severity": "page"},
            "rule 'Sev': severity 'page' is not one of info, warning, critical",
        ),
        (
            {
                "name": "Tpl",
                "expr": "max(agent_health_score) < 1",
                "annotations": {"summary": "{{ $value }}"},
            },
            "rule 'Tpl': annotation 'summary' uses a template; annotations must be plain text",
        ),
        (
            {"name": "AndWhat", "expr": "max(circuit_breaker_open) > 0 and"},
            "rule 'AndWhat': malformed expression 'max(circuit_breaker_open) > 0 and': "
            "expected an expression at column 34, found end of expression",
        ),
        (
            {
                "name": "Or",
                "expr": "max(circuit_breaker_open) > 0 or max(circuit_breaker_open) < 0",
            },
            "rule 'Or': malformed expression "
            "'max(circuit_breaker_open) > 0 or max(circuit_breaker_open) < 0': "
            "expected 'and' or end of expression at column 31, found 'or'",
        ),
        (
            {"name": "Extra", "expr": "max(agent_health_score) < 1", "window": "5m"},
            "rule 'Extra': unknown field(s) window",
        ),
        (
            {"name": "bad name", "expr": "max(agent_health_score) < 1"},
            "rule name 'bad name' must match [A-Za-z_][A-Za-z0-9_]*",
        ),
    ],
)
def test_bad_rules_fail_at_load_time_naming_the_rule(data: dict[str, object], message: str) -> None:
    with pytest.raises(RuleError) as info:
        load_rules([data])
    assert str(info.value) == message
    assert isinstance(info.value, SpecError)


def test_duplicate_names_are_rejected() -> None:
    again = [rule("CircuitBreakerOpen", "max(circuit_breaker_open) > 0")]
    with pytest.raises(RuleError, match=r"^rule 'CircuitBreakerOpen' is defined twice$"):
        default_rules() + again


def test_rules_load_from_json_and_join_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            {
                "rules": [
                    {
                        "name": "NoOrders",
                        "expr": "increase(orders_total[10m]) < 1",
                        "for": "5m",
                        "severity": "info",
                        "labels": {"team": "desk"},
                        "annotations": {"summary": "quiet"},
                    },
                ]
            }
        )
    )
    mine = load_rules(path)
    assert mine[0].for_ == 300.0 and mine[0].all_labels == {"severity": "info", "team": "desk"}
    combined = default_rules() + mine
    assert combined.names()[-1] == "NoOrders" and len(combined) == len(DEFAULT_RULES) + 1


def test_users_validate_against_their_own_catalogue() -> None:
    theirs = {"fills_total": MetricSpec("fills_total", "counter", "fills", attributes=("venue",))}
    rules = load_rules(
        [{"name": "NoFills", "expr": 'increase(fills_total{venue="x"}[5m]) < 1'}], catalog=theirs
    )
    # a counter already named *_total is exported under that name, not *_total_total
    assert promql(rules[0].expression, theirs) == 'sum(increase(fills_total{venue="x"}[5m])) < 1.0'
    with pytest.raises(RuleError, match="'agent_health_score' is not emitted"):
        load_rules([{"name": "Theirs", "expr": "max(agent_health_score) < 1"}], catalog=theirs)


def test_default_rules_cover_the_issue_list() -> None:
    metrics = {r.name: r.expr for r in DEFAULT_RULES}
    for needed in (
        "execution_latency_ms",
        'error_type=~"server_error|timeout|transport_error|malformed"',
        'outcome="rate_limited"',
        "cache_hits_total",
        'result="error"',
        "agent_health_score",
        "model_confidence_distribution",
        "pattern_false_positives_total",
        "websocket_connections_active",
        "portfolio_drawdown_ratio",
        "circuit_breaker_open",
        "telemetry_dropped_total",
    ):
        assert any(needed in e for e in metrics.values()), needed
