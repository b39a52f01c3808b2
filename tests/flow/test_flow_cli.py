"""``sniper-otel run``: a summary of what the bot did and recorded; bad input exits 2."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_sniper_otel import parse_duration
from pytest_sniper_otel.cli import main as sniper_otel
from pytest_sniper_otel.flow.collector import OtlpCollector


def test_run_prints_orders_pnl_and_telemetry_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "summary.json"
    assert sniper_otel(["run", "--seed", "1", "--duration", "10m", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(out.read_text())
    assert summary["simulated_seconds"] == pytest.approx(600, abs=2)
    assert summary["reconcile"] == []
    assert sum(summary["orders"].values()) == summary["intents"] > 0
    assert summary["telemetry"]["spans"] > 500
    # api_errors_total is there from the start (its known series at 0); these two count
    # open-ended label sets, so they appear with their first error
    assert summary["telemetry"]["catalogue_metrics_not_recorded"] == [
        "cache_errors_total", "telemetry_dropped_total"]
    orders = ", ".join(f"{k} {v}" for k, v in summary["orders"].items())
    assert f"orders: {orders}" in printed
    assert f"PnL: {summary['pnl_usd']:+.2f} USD" in printed
    assert "reconcile: ledger and exchange agree" in printed
    assert summary["wall_seconds"] > 0


def test_otlp_endpoint_receives_spans_logs_and_metrics() -> None:
    with OtlpCollector() as collector:
        endpoint = collector.url
        # A subprocess: the run installs its own global providers, as from the shell.
        done = subprocess.run(
            [sys.executable, "-m", "pytest_sniper_otel.cli", "run", "--seed", "1",
             "--duration", "2m", "--otlp-endpoint", endpoint],
            capture_output=True, text=True, timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert f"OTLP export to {endpoint} (shutdown budget 7 s, took " in done.stdout
    assert set(collector.requests) == {"/v1/traces", "/v1/logs", "/v1/metrics"}
    # nothing on stderr but progress lines (a slow machine): no SDK warning at exit either
    assert [line for line in done.stderr.splitlines() if not PROGRESS.fullmatch(line)] == []


def test_a_crashed_run_still_exports_what_it_recorded() -> None:
    with OtlpCollector(count_items=True) as collector:
        crash = (
            "import sys, pytest_sniper_otel.flow.bot as b\n"
            "orig, steps = b.SniperBot.run_for, []\n"
            "def run_for(self, s):\n"
            "    steps.append(s)\n"
            "    if len(steps) == 3:\n"
            "        raise RuntimeError('the bot broke')\n"
            "    return orig(self, s)\n"
            "b.SniperBot.run_for = run_for\n"
            "from pytest_sniper_otel.cli import main\n"
            f"sys.exit(main(['run', '--duration', '10m', '--otlp-endpoint', {collector.url!r}]))\n"
        )
        done = subprocess.run([sys.executable, "-c", crash], capture_output=True, text=True,
                              timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "RuntimeError: the bot broke"
    # the spans, logs and metric points of the steps before the crash reached the collector
    assert collector.items["traces"] > 0 and collector.items["metrics"] > 0
    assert collector.requests["/v1/logs"] > 0


PROGRESS = re.compile(r"sniper-otel run: \d+/\d+ simulated seconds \(\d+%\)")


@pytest.mark.parametrize(("value", "error"), [
    ("0", "--otlp-timeout must be positive, got '0'"),
    ("-1s", "--otlp-timeout must be positive, got '-1s'"),
    ("abc", "--otlp-timeout must be a number of seconds or a string like '2m', got 'abc' "
            "(units ms, s, m, h, d: 250ms, 90s, 1m30s)"),
    ("inf", "--otlp-timeout must be a number of seconds or a string like '2m', got 'inf' "
            "(units ms, s, m, h, d: 250ms, 90s, 1m30s)"),
    ("10m", "--otlp-timeout: at most 5m, got '10m'"),
])
def test_a_bad_otlp_timeout_is_a_usage_error(
    value: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = sniper_otel(["run", "--otlp-endpoint", "http://127.0.0.1:4318",
                        f"--otlp-timeout={value}"])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("usage: sniper-otel run ")
    assert err.splitlines()[-1] == f"sniper-otel run: error: {error}"


def test_an_otlp_timeout_without_an_endpoint_is_a_usage_error(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert sniper_otel(["run", "--otlp-timeout", "1s"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == ("sniper-otel run: error: --otlp-timeout bounds OTLP exports: "
                                    "it needs --otlp-endpoint")


@pytest.mark.parametrize(("text", "seconds"), [
    ("10m", 600), ("90s", 90), ("1h30m", 5400), ("250ms", 0.25), ("600", 600), ("1.5m", 90),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_long_runs_show_progress_on_stderr() -> None:
    import io

    from pytest_sniper_otel.flow.cli import _Progress

    stream = io.StringIO()
    progress = _Progress(600.0, stream, every=0.0)
    progress.update(150.0)
    progress.update(600.0)
    assert stream.getvalue() == ("sniper-otel run: 150/600 simulated seconds (25%)\n"
                                 "sniper-otel run: 600/600 simulated seconds (100%)\n")


def test_a_hung_redis_is_a_clear_error_not_a_hang(
    private_redis_server: tuple[int, subprocess.Popen[bytes]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    port, proc = private_redis_server
    os.kill(proc.pid, signal.SIGSTOP)  # hung: accepts connections, answers nothing
    code = sniper_otel(["run", "--duration", "1m", "--redis-url", f"redis://127.0.0.1:{port}/0"])
    assert code == 2
    assert (f"--redis-url: Redis at redis://127.0.0.1:{port}/0 did not answer: Timeout "
            in capsys.readouterr().err)
