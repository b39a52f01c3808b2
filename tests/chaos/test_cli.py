"""`sniper-otel chaos`: finds scenario modules, rejects bad input first, prints a scorecard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_sniper_otel.cli import main

HEADER = "from pytest_sniper_otel.chaos import Scenario, expect_alert, fault\n\n"
QUICK = dict(warmup=30.0, duration=240.0, recovery=120.0, baseline=False)


def _module(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"scenario_{name}.py").write_text(HEADER + body, encoding="utf-8")


def _scenario(name: str, faults: str, alerts: str = "", tags: str = "{}") -> str:
    return (
        f"SCENARIO = Scenario(name={name!r}, title='a quick one', faults=[{faults}],"
        f" alerts=[{alerts}], tags={tags}, **{QUICK!r})\n"
    )


def test_runs_prints_a_scorecard_and_writes_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite"
    _module(suite, "outage", _scenario(
        "outage", "fault('redis.outage', start=30, duration=180)",
        "expect_alert('RedisUnavailable', within='3m', resolves_within='2m')"))
    _module(suite, "fills", _scenario("fills", "fault('market.partial_fills', start=30)"))
    journal = tmp_path / "out.json"
    code = main(["chaos", "--path", str(suite), "--seed", "2", "--json", str(journal)])
    out, err = capsys.readouterr()
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == ("sniper-otel chaos scorecard: 2 scenarios, seed 2, fakeredis, "
                        "simulated clock")
    assert lines[2].split() == ["scenario", "faults", "injected", "invariants", "alerts",
                                "e/f/r", "detection", "dropped", "result"]
    fills = next(line for line in lines if line.startswith("fills "))
    outage = next(line for line in lines if line.startswith("outage "))
    assert fills.split()[-1] == "PASS" and "13/13" in fills
    assert outage.split()[-1] == "PASS" and "1/1/1" in outage
    assert lines[-2].startswith("2/2 scenarios held; 13 simulated minutes in ")
    assert "[2/2] outage" in err  # progress, one line per scenario off a terminal
    data = json.loads(journal.read_text())
    assert data["ok"] is True and [s["experiment"]["name"] for s in data["scenarios"]] == [
        "fills", "outage"]
    alerts = data["scenarios"][1]["alerts"]["expected"]
    assert alerts[0]["alert"] == "RedisUnavailable" and alerts[0]["fired"]


def test_a_broken_scenario_exits_1_and_says_how_to_reproduce(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite"
    _module(suite, "wrong", _scenario(
        "wrong", "fault('redis.outage', start=30, duration=60)",
        "expect_alert('WebsocketConnectionsDown', within='1m')"))
    code = main(["chaos", "--path", str(suite), "--no-progress", "--seed", "9"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "wrong: BROKEN" in out
    assert ("  alerts: WebsocketConnectionsDown never fired (expected within 60s of the fault)"
            in out)
    assert "  reproduce: sniper-otel chaos --scenario wrong --seed 9" in out


@pytest.mark.parametrize(
    ("body", "args", "message"),
    [
        (_scenario("a", "fault('exchange.http_eror')"), [],
         "scenario_a.py: line 3: unknown fault 'exchange.http_eror'; did you mean "
         "'exchange.http_error'?"),
        (_scenario("a", "fault('redis.outage', start='5m', end='1m')"), [],
         "scenario_a.py: line 3: schedule ends before it starts: end 60s is not after start 300s"),
        (_scenario("a", "fault('exchange.rate_limit', probability=2)"), [],
         "scenario_a.py: line 3: probability must be within [0, 1], got 2"),
        (_scenario("a", "fault('redis.outage')", "expect_alert('RedisUnavailble')"), [],
         "scenario 'a' expects alert 'RedisUnavailble', which no rule defines; "
         "did you mean 'RedisUnavailable'?"),
        (_scenario("a", "fault('redis.outage')"), ["--scenario", "b"],
         "unknown scenario 'b' (scenarios: a)"),
    ],
)
def test_bad_input_is_named_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, args: list[str], message: str
) -> None:
    suite = tmp_path / "suite"
    _module(suite, "a", body)
    code = main(["chaos", "--path", str(suite), *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""  # no scorecard: nothing ran
    assert err.startswith("sniper-otel chaos: ")
    assert message in err


def test_missing_directory_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chaos", "--path", str(tmp_path / "nope")]) == 2
    assert "no scenario directory" in capsys.readouterr().err
    suite = tmp_path / "suite"
    _module(suite, "a", _scenario("a", "fault('redis.outage')"))
    assert main(["chaos", "--path", str(suite), "--list"]) == 0
    out = capsys.readouterr().out
    assert "  a                        a quick one" in out
    assert "  redis.outage                 [redis] connections refused" in out


def test_the_repository_suite_is_found_and_valid() -> None:
    from pytest_sniper_otel.chaos.suite import load_scenarios, validate

    root = Path(__file__).resolve().parents[2] / "scenarios"
    scenarios = load_scenarios(root)
    validate(scenarios)
    assert len(scenarios) >= 8
    assert all(s.total >= 600 for s in scenarios)
    targets = {spec.target for s in scenarios for spec in s.faults}
    assert targets == {"exchange", "market", "feed", "redis", "clock", "model", "telemetry"}


@pytest.mark.sniper_otel_real_redis
def test_redis_url_runs_the_suite_on_a_real_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], real_redis_url: str
) -> None:
    url = real_redis_url
    suite = tmp_path / "suite"
    _module(suite, "outage", _scenario(
        "outage", "fault('redis.outage', start=30, duration=180)",
        "expect_alert('RedisUnavailable', within='3m', resolves_within='2m')"))
    _module(suite, "pause", _scenario("pause", "fault('redis.client_pause', start=30, duration=60)",
                                      tags="{'requires': 'real_redis'}"))
    code = main(["chaos", "--path", str(suite), "--no-progress", "--redis-url", url])
    out, _ = capsys.readouterr()
    assert code == 0, out
    assert out.splitlines()[0].endswith("2 scenarios, seed 0, redis, simulated clock")
    assert "redis.client_pause x" in out


def test_redis_url_that_does_not_answer_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite"
    _module(suite, "a", _scenario("a", "fault('redis.outage')"))
    code = main(["chaos", "--path", str(suite), "--redis-url", "redis://127.0.0.1:1/0"])
    assert code == 2
    assert ("--redis-url: Redis at redis://127.0.0.1:1/0 did not answer"
            in capsys.readouterr().err)


# examples/ccxt_sniper/scenarios runs the same scenario under pytest in every run
@pytest.mark.slow
def test_the_example_bots_scenario_runs_through_the_installed_command(tmp_path: Path) -> None:
    # The README's walkthrough, as a user types it: the console script, from another directory,
    # pointed at a scenario directory that is not ours.
    command = Path(sys.executable).with_name("sniper-otel")
    scenarios = Path(__file__).resolve().parents[2] / "examples" / "ccxt_sniper" / "scenarios"
    done = subprocess.run(
        [str(command), "chaos", "--path", str(scenarios), "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split() for line in done.stdout.splitlines()]
    assert ["ccxt_sniper_exchange_down", "exchange.http_error", "x6", "7/7", "1/1/1"] in [
        row[:5] for row in rows
    ]
    assert rows[[r[:1] for r in rows].index(["ccxt_sniper_exchange_down"])][-1] == "PASS"
    assert "1/1 scenarios held;" in done.stdout
