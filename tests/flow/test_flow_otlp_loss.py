"""`sniper-otel run --otlp-endpoint` against collectors that misbehave, on loopback.

Every span, log record and metric point that does not arrive is counted, per signal and
reason, in the summary and in ``telemetry_dropped_total``: ``accepted == exported + dropped``
for all three signals, and what the collector received is what was counted as exported.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_sniper_otel.flow.collector import MODES, OtlpCollector

SIGNALS = ("traces", "logs", "metrics")
# A collector that never delivers is waited on for whole timeouts, so those runs get a short
# one; one that delivers gets the default, far above slow's 0.3 s delay even on a busy machine.
TIMEOUTS = {"ok": "2s", "slow": "2s", "hung": "500ms", "reset": "500ms", "closed": "500ms"}


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture(params=[*MODES, "closed"])
def endpoint(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, OtlpCollector | None]]:
    if request.param == "closed":
        yield "closed", _closed_port(), None
        return
    with OtlpCollector(mode=request.param, count_items=True) as collector:
        yield request.param, collector.url, collector


def test_every_item_not_delivered_is_counted(
    endpoint: tuple[str, str, OtlpCollector | None], tmp_path: Path
) -> None:
    mode, url, collector = endpoint
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest_sniper_otel.cli", "run", "--seed", "1", "--duration",
         "2m", "--otlp-endpoint", url, "--otlp-timeout", TIMEOUTS[mode], "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    # the CLI shuts down what it exports itself; the SDK's atexit shutdown must not run again
    assert "Can't shutdown multiple times" not in done.stderr
    budget = {"2s": 7, "500ms": 1.75}[TIMEOUTS[mode]]  # 3.5 timeouts: 2.5 drain + 1 metrics
    assert f"(shutdown budget {budget:g} s, took " in done.stdout
    summary = json.loads(out.read_text())
    signals = summary["otlp"]["signals"]
    received = collector.items if collector is not None else Counter()
    for signal in SIGNALS:
        n = signals[signal]
        assert n["accepted"] > 0, (signal, n)
        assert n["accepted"] == n["exported"] + sum(n["dropped"].values()), (signal, n)
        if mode in ("ok", "slow"):
            assert n["dropped"] == {}, (signal, n)
            assert received[signal] == n["exported"], (signal, n, received)
        else:
            assert n["exported"] == 0 and received[signal] == 0, (signal, n)
        line = (f"  {signal}: {n['accepted']} accepted = {n['exported']} exported + "
                f"{sum(n['dropped'].values())} dropped")
        assert line in done.stdout
    if collector is not None:  # a hung or resetting collector still saw every signal's exports
        assert set(collector.requests) == {f"/v1/{signal}" for signal in SIGNALS}
    dropped_any = any(signals[s]["dropped"] for s in SIGNALS)
    assert ("telemetry_dropped_total" in summary["telemetry"]["metrics"]) == dropped_any
    # what the bot recorded does not depend on the collector
    assert summary["reconcile"] == []
