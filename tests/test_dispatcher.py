"""The `sniper-otel` dispatcher: usage, unknown commands, a reader that goes away, and the
installed suites found from any directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_sniper_otel.cli import main


def test_usage_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("run", "chaos", "rules", "load", "exchange"):
        assert f"  {name} " in out


def test_unknown_command_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaoss"]) == 2
    assert "sniper-otel: unknown command 'chaoss'" in capsys.readouterr().err


def test_a_closed_pipe_is_not_a_traceback() -> None:
    # `sniper-otel chaos --list | head -1`: the reader leaves after one line.
    producer = subprocess.Popen(
        [sys.executable, "-m", "pytest_sniper_otel.cli", "chaos", "--list"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert producer.stdout is not None
    producer.stdout.readline()
    producer.stdout.close()
    _, err = producer.communicate(timeout=60)
    assert producer.returncode == 0
    assert b"Traceback" not in err


def sniper_otel(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_sniper_otel.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def test_the_installed_scenarios_are_listed_from_any_directory(tmp_path: Path) -> None:
    listed = sniper_otel(tmp_path, "chaos", "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("scenarios:\n")
    assert "  redis_outage " in listed.stdout
    own = tmp_path / "mine"
    own.mkdir()
    (own / "scenario_quick.py").write_text(
        "from pytest_sniper_otel.chaos import Scenario, fault\n"
        "SCENARIO = Scenario(name='quick', title='a quick one', warmup=10.0, duration=60.0,\n"
        "                    recovery=10.0, faults=[fault('redis.outage', start=10)])\n",
        encoding="utf-8",
    )
    listed = sniper_otel(tmp_path, "chaos", "--list", "--path", "mine")
    assert listed.returncode == 0, listed.stderr
    assert "  quick " in listed.stdout and "redis_outage" not in listed.stdout


def test_the_locustfile_is_found_from_any_directory(tmp_path: Path) -> None:
    found = sniper_otel(tmp_path, "load", "--locustfile")
    assert found.returncode == 0, found.stderr
    path = Path(found.stdout.strip())
    assert path.name == "locustfile.py" and path.is_absolute()
    assert "class " in path.read_text(encoding="utf-8")
    mixed = sniper_otel(tmp_path, "load", "--locustfile", "--rounds", "2")
    assert mixed.returncode == 2
    assert mixed.stderr == "sniper-otel load: --locustfile takes no other argument\n"


def test_the_overhead_runner_answers_from_any_directory(tmp_path: Path) -> None:
    helped = sniper_otel(tmp_path, "load", "--help")
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: sniper-otel load [-h]")
    refused = sniper_otel(tmp_path, "load", "--variants", "traces,tracez")
    assert refused.returncode == 2
    assert "unknown variant 'tracez'" in refused.stderr
