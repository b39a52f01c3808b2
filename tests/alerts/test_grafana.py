"""Grafana dashboards: every panel's query names series and labels the OTel Prometheus
exporter really exposes for the bot's metrics; every metric and every rule has a panel."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_sniper_otel.alerts import default_rules
from pytest_sniper_otel.alerts.cli import main as rules_cli
from pytest_sniper_otel.alerts.expr import Condition, clauses
from pytest_sniper_otel.alerts.grafana import (
    COMPONENTS,
    dashboards,
    metric_panels,
    queries,
    query_references,
)
from pytest_sniper_otel.catalog import METRICS

from .alertkit import exporter_series


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[str]]:
    return exporter_series(METRICS.values())


def _problems(board: dict[str, Any], exposed: dict[str, set[str]]) -> list[str]:
    out = []
    for title, expr in queries(board):
        names, labels = query_references(expr)
        if not names:
            out.append(f"{title}: {expr} names no metric")
        for name in sorted(names - set(exposed)):
            out.append(f"{title}: {name} is not exposed")
        known = set().union(*(exposed.get(n, set()) for n in names))
        for label in sorted(labels - known):
            out.append(f"{title}: no series of {', '.join(sorted(names))} has label {label}")
    return out


def test_every_panel_query_names_what_the_exporter_exposes(
    exposed: dict[str, set[str]],
) -> None:
    boards = dashboards()
    assert sorted(boards) == [f"sniper-otel-{c}.json" for c in
                              ("agents", "alerts", "cache", "model", "safety", "trading")]
    for name, board in boards.items():
        assert queries(board), name
        assert _problems(board, exposed) == [], name


def test_the_check_catches_the_otel_name_where_the_exported_one_belongs(
    exposed: dict[str, set[str]],
) -> None:
    board = {"panels": [{"title": "p", "targets": [
        {"expr": "histogram_quantile(0.99, sum by (le) (rate(execution_latency_ms_bucket[5m])))"},
        {"expr": 'sum by (result) (rate(cache_hits_total{outcome="x"}[5m]))'},
    ]}]}
    assert _problems(board, exposed) == [
        "p: execution_latency_ms_bucket is not exposed",
        "p: no series of execution_latency_ms_bucket has label le",
        "p: no series of cache_hits_total has label outcome",
        "p: no series of cache_hits_total has label result",
    ]


def test_query_references() -> None:
    assert query_references(
        'sum(rate(a_total{outcome=~"x|y"}[5m])) / sum by (le, kind) (rate(b_bucket[5m])) '
        "> 0.5 and on() max(c) >= 15"
    ) == ({"a_total", "b_bucket", "c"}, {"outcome", "le", "kind"})


def test_every_metric_is_on_one_component_dashboard_and_every_rule_has_a_panel() -> None:
    placed = [m for _, metrics in COMPONENTS.values() for m, _ in metrics]
    assert sorted(placed) == sorted(METRICS)
    alerts = dashboards()["sniper-otel-alerts.json"]
    by_title = {p["title"]: p for p in alerts["panels"]}
    assert by_title["Alerts (pending and firing)"]["type"] == "alertlist"
    for r in default_rules():
        panel = by_title[r.name]
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        first = clauses(r.expression)[0]
        assert isinstance(first, Condition) and steps[-1]["value"] == first.threshold
        assert r.expr in panel["description"]
    latency = by_title["ExecutionLatencyP99High"]["targets"]
    assert [t["expr"] for t in latency] == [
        "histogram_quantile(0.99, sum by (le) "
        "(rate(execution_latency_ms_milliseconds_bucket[5m])))"]


def test_a_split_label_must_be_an_attribute_of_the_metric() -> None:
    with pytest.raises(ValueError, match="orders_total has no attribute 'symbol' "
                                         r"\(it has outcome, side\)"):
        metric_panels(METRICS["orders_total"], "symbol")


def test_panels_do_not_overlap_and_ids_are_unique() -> None:
    for name, board in dashboards().items():
        cells: set[tuple[int, int]] = set()
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in board["panels"]:
            g = p["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                    for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, (name, p["title"])
            cells |= mine
            assert g["x"] + g["w"] <= 24


def test_cli_writes_the_dashboards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rules_cli(["dashboards", str(tmp_path)]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {tmp_path / n}" for n in ("sniper-otel-trading.json", "sniper-otel-cache.json",
                                          "sniper-otel-agents.json", "sniper-otel-model.json",
                                          "sniper-otel-safety.json", "sniper-otel-alerts.json")]
    boards = [json.loads((tmp_path / n).read_text()) for n in written]
    assert len({b["uid"] for b in boards}) == 6
    assert all(b["templating"]["list"][0]["query"] == "prometheus" for b in boards)
