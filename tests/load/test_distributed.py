"""Smoke tests: the locustfile runs distributed, and the master aggregates its workers.

Locust runs in subprocesses only: importing it here would gevent-patch the pytest process.
Everything listens on loopback and every process has a deadline. Deselect with
``-m "not load"``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.load,
    # Under CI the smoke test is required: a missing locust is a failure there, not a skip.
    pytest.mark.skipif(
        importlib.util.find_spec("locust") is None and os.environ.get("CI", "") != "true",
        reason="locust is not installed (pip install -e '.[test]')",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "load" / "locustfile.py"
DEADLINE = 90.0  # seconds per process: a hung run fails the test instead of hanging it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _locust(*args: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "-L", "WARNING", *args],
        cwd=ROOT,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:  # only the processes this test started
        if p.poll() is None:
            p.kill()
            p.wait()


def _wait(p: subprocess.Popen[bytes], log: Path) -> None:
    try:
        rc = p.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        pytest.fail(f"locust did not finish within {DEADLINE}s:\n{log.read_text()[-3000:]}")
    assert rc == 0, f"locust exited {rc}:\n{log.read_text()[-3000:]}"


def _entries(stats_json: Path) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in json.loads(stats_json.read_text())}


def _worker_results(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(tmp_path.glob("worker-*.json"))]


def _check(tmp_path: Path, users: int) -> None:
    stats = _entries(tmp_path / "stats.json")
    workers = _worker_results(tmp_path)
    assert len(workers) == 2, f"expected results from 2 workers, got {len(workers)}"
    assert all(w["cycles_total"] > 0 for w in workers), "a worker ran no cycles"
    # The master's stats are exactly the sum of what each worker fired.
    assert stats["cycle"]["num_requests"] == sum(w["cycles_total"] for w in workers)
    assert stats["cycle"]["num_failures"] == 0
    # Every user stopped cleanly and its bot reconciled: no order lost.
    assert stats["reconcile"]["num_requests"] == users
    assert stats["reconcile"]["num_failures"] == 0
    assert all(w["variant"] == "all" and w["exported"]["traces"] > 0 for w in workers)


@pytest.mark.slow  # three locust processes, each running for seconds
def test_master_with_two_workers_aggregates_stats(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    port = str(_free_port())
    common = ["--sniper-variant", "all", "--sniper-result", str(tmp_path / "worker-{pid}.json")]
    master_log = tmp_path / "master.log"
    master = _locust(
        "--headless",
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        port,
        "--expect-workers",
        "2",
        "--expect-workers-max-wait",
        "30",
        "-u",
        "4",
        "-r",
        "4",
        "-t",
        "3s",
        "--json-file",
        str(tmp_path / "stats"),
        *common,
        log=master_log,
    )
    procs.append(master)
    for i in (1, 2):
        procs.append(
            _locust(
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                port,
                *common,
                log=tmp_path / f"worker{i}.log",
            )
        )
    _wait(master, master_log)
    for i, worker in enumerate(procs[1:], 1):
        _wait(worker, tmp_path / f"worker{i}.log")
    _check(tmp_path, users=4)


@pytest.mark.slow
def test_processes_mode_aggregates_stats(
    tmp_path: Path, procs: list[subprocess.Popen[bytes]]
) -> None:
    log = tmp_path / "locust.log"
    procs.append(
        _locust(
            "--headless",
            "--processes",
            "2",
            "-u",
            "4",
            "-r",
            "4",
            "-t",
            "3s",
            "--json-file",
            str(tmp_path / "stats"),
            "--sniper-variant",
            "all",
            "--sniper-result",
            str(tmp_path / "worker-{pid}.json"),
            log=log,
        )
    )
    _wait(procs[0], log)
    _check(tmp_path, users=4)


def test_bad_variant_is_a_clear_error_before_the_run(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "-u",
            "1",
            "-t",
            "2s",
            "--sniper-variant",
            "bogus",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert out.returncode != 0
    assert "unknown telemetry variant 'bogus'" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variants", "none,fancy"], "unknown variant 'fancy'"),
        (["--users", "0"], "--users must be at least 1, got 0"),
        (["--duration", "ten seconds"],
         "--duration must be a number of seconds or a string like '2m', got 'ten seconds'"),
        (["--latency", "slow"], "exchange latency 'slow' is not zero, realistic"),
    ],
)
def test_overhead_runner_rejects_bad_input_before_starting(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out_dir = tmp_path / "out"
    out = subprocess.run(
        [sys.executable, str(ROOT / "load" / "overhead.py"), "--out", str(out_dir), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert not out_dir.exists(), "nothing may start (or be written) on bad input"
