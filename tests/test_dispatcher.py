"""The `sniper-otel` dispatcher: usage, unknown commands, a reader that goes away."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_sniper_otel.cli import main


def test_usage_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("run", "chaos", "rules"):
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
