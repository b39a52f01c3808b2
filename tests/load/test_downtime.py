"""The downtime model reads a chaos journal's detection delays and prints the ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _journal(tmp_path: Path, alerts: list[dict[str, object]]) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps({"scenarios": [
        {"experiment": {"name": "redis_outage"}, "alerts": {"expected": alerts}},
    ]}))
    return path


def _run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "load" / "downtime.py"), str(path)],
                          capture_output=True, text=True, timeout=60)


def test_detection_delays_against_a_person_checking_every_p_minutes(tmp_path: Path) -> None:
    out = _run(_journal(tmp_path, [
        {"alert": "RedisUnavailable", "fired": True, "detection_delay": 120.0},
        {"alert": "NeverFired", "fired": False, "detection_delay": None},
    ]))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # 2 min against 7.5, 15 and 30 min on average
    assert "redis_outage            RedisUnavailable              2.0 m      0.27x      0.13x" \
        "      0.07x" in lines
    assert ("median downtime ratio, fix time 15 min: 0.76x vs every 15 min, 0.57x vs every "
            "30 min, 0.38x vs every 60 min") in lines


def test_a_journal_without_detections_is_an_error(tmp_path: Path) -> None:
    out = _run(_journal(tmp_path, []))
    assert out.returncode == 1
    assert "no expected alert fired in this journal: nothing to model" in out.stderr
