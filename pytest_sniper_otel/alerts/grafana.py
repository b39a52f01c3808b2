"""Grafana dashboards for the reference bot's metrics, in PromQL over the names the OTel
Prometheus exporter really exposes (:mod:`.naming`).

One dashboard per component of the seed (trading, cache, agents, model, safety), a panel
per metric (histograms: p50/p99 and a rate by their main label; counters: a rate; gauges:
the value), and one dashboard of the alert rules: each rule's value against its threshold,
plus Grafana's alert list. Every panel takes its Prometheus data source from a
``datasource`` variable, so the files import into any Grafana (``Dashboards > Import``, or
file provisioning).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..catalog import METRICS, MetricSpec
from .expr import Absent, clauses, format_duration
from .naming import label_name, sample_name
from .prometheus import _number, promql, promql_value
from .rules import RuleSet

SCHEMA_VERSION = 39
RATE_WINDOW = "5m"
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_GRAFANA_UNITS = {"ms": "ms", "MB": "decmbytes", "USD": "currencyUSD", "%": "percent"}

# component -> (title, [(metric, label to split by or None)])
COMPONENTS: dict[str, tuple[str, list[tuple[str, str | None]]]] = {
    "trading": ("Trading: detection to execution", [
        ("execution_latency_ms", "execution_result"),
        ("orders_total", "outcome"),
        ("api_request_latency_ms", "outcome"),
        ("api_errors_total", "error_type"),
        ("pattern_detections_total", "confidence_tier"),
        ("pattern_confidence_score", "pattern_type"),
        ("portfolio_pnl_usd", "account_type"),
        ("trading_success_rate", None),
    ]),
    "cache": ("Cache (Redis)", [
        ("cache_hits_total", "key_pattern"),
        ("cache_misses_total", "key_pattern"),
        ("cache_hit_rate", None),
        ("cache_operation_latency_ms", "result"),
        ("cache_errors_total", "error_type"),
        ("cache_invalidations_total", "reason"),
        ("cache_memory_usage_mb", None),
    ]),
    "agents": ("Agents and feeds", [
        ("agent_health_score", "agent_id"),
        ("agent_memory_usage_mb", "agent_id"),
        ("websocket_connections_active", "feed"),
    ]),
    "model": ("Pattern model", [
        ("model_inference_latency_ms", "analysis_type"),
        ("model_confidence_distribution", "pattern_type"),
        ("model_accuracy_score", "time_window"),
        ("detected_patterns_by_type", "pattern_type"),
        ("pattern_false_positive_rate", "model_name"),
        ("pattern_positive_calls_judged_total", "model_name"),
        ("pattern_false_positives_total", "model_name"),
        ("model_version_info", "model_version"),
    ]),
    "safety": ("Safety and telemetry health", [
        ("circuit_breaker_open", None),
        ("portfolio_drawdown_ratio", None),
        ("telemetry_dropped_total", "reason"),
    ]),
}


def _by(label: str | None) -> str:
    return f" by ({label_name(label)})" if label else ""


def _legend(label: str | None, fallback: str) -> str:
    return "{{" + label_name(label) + "}}" if label else fallback


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {"refId": ref, "datasource": _DATASOURCE, "expr": expr, "legendFormat": legend}


def _panel(title: str, description: str, targets: list[dict[str, Any]], unit: str = "",
           **defaults: Any) -> dict[str, Any]:
    return {
        "type": "timeseries", "title": title, "description": description,
        "datasource": _DATASOURCE, "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit or "short", **defaults}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"}},
    }


def metric_panels(spec: MetricSpec, label: str | None) -> list[dict[str, Any]]:
    """The panels that show ``spec``: what a person looks at for that metric."""
    unit = _GRAFANA_UNITS.get(spec.unit, "")
    if label is not None and label not in spec.attributes:
        raise ValueError(f"{spec.name} has no attribute {label!r} (it has "
                         f"{', '.join(spec.attributes) or 'none'})")
    if spec.kind == "histogram":
        bucket = sample_name(spec.name, spec.kind, spec.unit, "bucket")
        count = sample_name(spec.name, spec.kind, spec.unit, "count")
        quantiles = [
            _target(ref, f"histogram_quantile({q}, sum by (le) "
                         f"(rate({bucket}[{RATE_WINDOW}])))", f"p{round(q * 100)}")
            for ref, q in (("A", 0.5), ("B", 0.99))
        ]
        return [
            _panel(f"{spec.name}: p50 and p99", spec.description, quantiles, unit),
            _panel(f"{spec.name}: per second{_by(label)}",
                   f"{spec.description} (observations per second)",
                   [_target("A", f"sum{_by(label)} (rate({count}[{RATE_WINDOW}]))",
                            _legend(label, "per second"))], "reqps"),
        ]
    name = sample_name(spec.name, spec.kind, spec.unit)
    if spec.kind == "counter":
        return [_panel(f"{spec.name}: per second", spec.description,
                       [_target("A", f"sum{_by(label)} (rate({name}[{RATE_WINDOW}]))",
                                _legend(label, "per second"))], "cps")]
    return [_panel(spec.name, spec.description,
                   [_target("A", f"max{_by(label)} ({name})", _legend(label, spec.name))],
                   unit)]


def _layout(panels: list[dict[str, Any]], width: int = 12, height: int = 8) -> list[
        dict[str, Any]]:
    for i, p in enumerate(panels, start=1):
        p["id"] = i
        p["gridPos"] = {"h": height, "w": width, "x": (i - 1) % (24 // width) * width,
                        "y": (i - 1) // (24 // width) * height}
    return panels


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uid": uid, "title": title, "tags": ["sniper-otel"], "timezone": "utc",
        "schemaVersion": SCHEMA_VERSION, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1,
        }]},
        "annotations": {"list": []},
        "panels": _layout(panels),
    }


def component_dashboard(component: str) -> dict[str, Any]:
    title, metrics = COMPONENTS[component]
    panels = [p for name, label in metrics for p in metric_panels(METRICS[name], label)]
    return _dashboard(f"sniper-otel-{component}", f"sniper-otel: {title}", panels)


def alerts_dashboard(rules: RuleSet) -> dict[str, Any]:
    """Each rule's value (every clause) against its threshold, and the alert list."""
    panels: list[dict[str, Any]] = [{
        "type": "alertlist", "title": "Alerts (pending and firing)",
        "description": "Prometheus alerts from the sniper-otel rule file",
        "options": {"showOptions": "current", "maxItems": 20, "sortOrder": 1,
                    "stateFilter": {"firing": True, "pending": True},
                    "alertInstanceLabelFilter": "", "datasource": "${datasource}"},
    }]
    for r in rules:
        targets = []
        thresholds: list[dict[str, Any]] = [{"color": "green", "value": None}]
        for i, c in enumerate(clauses(r.expression)):
            ref = "ABCDEFGH"[i]
            if isinstance(c, Absent):
                targets.append(_target(ref, promql(c, rules.catalog), "absent"))
                continue
            targets.append(_target(ref, promql_value(c, rules.catalog), f"clause {i + 1}"
                                   if len(clauses(r.expression)) > 1 else r.name))
            if i == 0:
                thresholds.append({"color": "red", "value": c.threshold})
        description = (f"{r.expr} for {format_duration(r.for_)} ({r.severity}); "
                       f"fires when {' and '.join(_describe(c) for c in clauses(r.expression))}")
        panels.append(_panel(
            r.name, description, targets,
            thresholds={"mode": "absolute", "steps": thresholds},
            custom={"thresholdsStyle": {"mode": "line+area"}},
        ))
    return _dashboard("sniper-otel-alerts", "sniper-otel: alert rules", panels)


def _describe(c: Any) -> str:
    if isinstance(c, Absent):
        return "the series is absent"
    return f"the value {c.op} {_number(c.threshold)}"


def dashboards(rules: RuleSet | None = None) -> dict[str, dict[str, Any]]:
    """File name -> dashboard, for every component and the alert rules."""
    from .defaults import default_rules

    out = {f"sniper-otel-{c}.json": component_dashboard(c) for c in COMPONENTS}
    out["sniper-otel-alerts.json"] = alerts_dashboard(rules if rules is not None
                                                      else default_rules())
    return out


def export_dashboards(directory: str | Path, rules: RuleSet | None = None) -> list[Path]:
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name, board in dashboards(rules).items():
        path = root / name
        path.write_text(json.dumps(board, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


# -- reading queries back (what the tests check against the exporter) ----------------------------
_KEYWORDS = {"and", "or", "unless", "on", "ignoring", "bool", "offset", "by", "without"}


def queries(board: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query in ``board``."""
    return [(p["title"], t["expr"]) for p in board["panels"] for t in p.get("targets", [])]


def query_references(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and label names a PromQL query of ours refers to."""
    labels: set[str] = set()
    for group in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", expr):
        labels |= {g.strip() for g in group.split(",") if g.strip()}
    body = re.sub(r"\b(?:by|on)\s*\([^)]*\)", " ", expr)
    for inner in re.findall(r"\{([^}]*)\}", body):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", inner))
    body = re.sub(r'\{[^}]*\}|\[[^\]]*\]|"[^"]*"', " ", body)
    names = {n for n in re.findall(r"\b([A-Za-z_:][\w:]*)\b(?!\s*\()", body)
             if n not in _KEYWORDS and not re.fullmatch(r"(?i)inf|nan", n)}
    return names, labels


__all__ = ["COMPONENTS", "alerts_dashboard", "component_dashboard", "dashboards",
           "export_dashboards", "metric_panels", "queries", "query_references"]
