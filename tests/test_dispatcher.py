"""The `sniper-otel` dispatcher: usage, unknown commands, a reader that goes away, and the
installed suites found from any directory."""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_sniper_otel.cli import main


def test_usage_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("run", "chaos", "rules", "load", "exchange", "collector"):
        assert f"  {name} " in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"sniper-otel {version('pytest-sniper-otel')}\n"


def test_every_option_of_every_command_has_help(monkeypatch: pytest.MonkeyPatch) -> None:
    parsers: list[argparse.ArgumentParser] = []

    def caught(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        parsers.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", caught)
    for command in ("run", "chaos", "rules", "load", "collector"):
        with contextlib.suppress(SystemExit):  # some commands return argparse's exit code
            main([command])
    assert [p.prog for p in parsers] == [
        "sniper-otel run", "sniper-otel chaos", "sniper-otel rules", "sniper-otel load",
        "sniper-otel collector"]
    missing = []
    for parser in parsers:
        assert "``" not in (parser.description or ""), parser.prog  # no raw reST in --help
        for action, prog in actions(parser):
            if not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def actions(parser: argparse.ArgumentParser) -> list[tuple[argparse.Action, str]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += actions(sub)
        else:
            out.append((action, parser.prog))
    return out


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
