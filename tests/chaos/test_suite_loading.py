"""Scenario modules that do not load, hooks that raise, settings that would pass silently.

A broken module is named with its line and problem, the other scenarios still run, the
scorecard and the journal list it and the exit status is 2. A ``configure`` hook that raises
(or sets a setting the bot does not have) fails its own scenario only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pytest_sniper_otel.chaos import Scenario, fault
from pytest_sniper_otel.chaos.faults import FaultError
from pytest_sniper_otel.chaos.runner import run_scenario
from pytest_sniper_otel.cli import main

HEADER = "import sys\n\nimport pytest\n\nfrom pytest_sniper_otel.chaos import Scenario, fault\n"
QUICK = dict(warmup=30.0, duration=240.0, recovery=120.0, baseline=False)
GOOD = (f"SCENARIO = Scenario(name='good', title='a quick one', "
        f"faults=[fault('market.partial_fills', start=30)], **{QUICK!r})\n")

BROKEN = {
    "syntax": ("SCENARIO = Scenario(name='x'\n", "line 6: syntax error: '(' was never closed"),
    "imports": ("import no_such_module_here\n",
                "line 6: ModuleNotFoundError: No module named 'no_such_module_here'"),
    "keyword": ("SCENARIO = Scenario(name='kw', title='t', falts=[])\n",
                "line 6: TypeError: Scenario.__init__() got an unexpected keyword argument "
                "'falts'; did you mean 'faults'?"),
    "notalist": (GOOD.replace("'good'", "'single'") + "SCENARIOS = SCENARIO\n",
                 "SCENARIOS must be a list of Scenario, got Scenario"),
    "skips": ("pytest.importorskip('no_such_module_here')\n",
              "line 6: skipped at import: could not import 'no_such_module_here': No module "
              "named 'no_such_module_here'"),
    "exits": ("sys.exit(3)\n", "line 6: sys.exit(3) at import"),
    "empty": ("X = 1\n", "defines neither SCENARIO nor SCENARIOS"),
    "badfault": ("SCENARIO = Scenario(name='bf', title='t', faults=[fault('redis.outage', "
                 "start=float('nan'))])\n",
                 "line 6: start must be a finite number of seconds, got nan"),
}


def _write(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"scenario_{name}.py").write_text(HEADER + body, encoding="utf-8")


def test_modules_that_cannot_load_are_named_and_the_others_still_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite"
    _write(suite, "good", GOOD)
    for name, (body, _) in BROKEN.items():
        _write(suite, name, body)
    journal = tmp_path / "journal.json"
    code = main(["chaos", "--path", str(suite), "--no-progress", "--json", str(journal)])
    out, err = capsys.readouterr()
    assert code == 2
    for name, (_, problem) in BROKEN.items():
        line = f"{suite}/scenario_{name}.py: {problem}"
        assert f"sniper-otel chaos: could not load {line}\n" in err
        assert f"  {line}\n" in out
    assert "Traceback" not in out + err
    good = next(line for line in out.splitlines() if line.startswith("good "))
    assert good.split()[-1] == "PASS"
    assert f"modules that could not load ({len(BROKEN)}; their scenarios did not run):" in out
    data = json.loads(journal.read_text())
    assert data["ok"] is False
    assert [s["experiment"]["name"] for s in data["scenarios"]] == ["good"]
    assert {Path(u["file"]).stem for u in data["unloadable"]} == {
        f"scenario_{n}" for n in BROKEN}


def test_a_suite_where_nothing_loads_exits_2_without_a_scorecard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "exits", BROKEN["exits"][0])
    assert main(["chaos", "--path", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"sniper-otel chaos: could not load {tmp_path}/scenario_exits.py: line 6: " \
                  "sys.exit(3) at import\n"


def _quick(name: str, configure: object) -> Scenario:
    return Scenario(name=name, title="t", faults=[fault("market.partial_fills", start=30)],
                    configure=configure, **QUICK)  # type: ignore[arg-type]


def _raises(config: object) -> None:
    raise KeyError("max_position_usd")


def _typo(config: object) -> None:
    config.max_positon_usd = 10.0  # type: ignore[attr-defined]


def _nested_typo(config: object) -> None:
    config.retry.max_atempts = 2  # type: ignore[attr-defined]


def _returns(config: object) -> object:
    import dataclasses

    return dataclasses.replace(config, max_open_positions=1)  # type: ignore[type-var]


@pytest.mark.parametrize(("hook", "error"), [
    (_raises, "scenario 'hook': configure raised KeyError: 'max_position_usd'"),
    (_typo, "scenario 'hook': configure set config.max_positon_usd, which BotConfig does not "
            "have (did you mean 'max_position_usd'?)"),
    (_nested_typo, "scenario 'hook': configure set config.retry.max_atempts, which RetryPolicy "
                   "does not have (did you mean 'max_attempts'?)"),
    (_returns, "scenario 'hook': configure returned BotConfig; it must change the BotConfig it "
               "is given and return None"),
])
def test_a_bad_configure_hook_fails_its_scenario_with_the_reason(hook: object, error: str) -> None:
    run = run_scenario(_quick("hook", hook), seed=1)
    assert not run.ok
    assert run.error == error


def test_a_raising_configure_hook_fails_that_scenario_not_the_suite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write(tmp_path, "good", GOOD)
    _write(tmp_path, "hook", "def configure(config):\n    raise RuntimeError('boom')\n\n"
           + GOOD.replace("'good'", "'hook'").replace("**", "configure=configure, **"))
    assert main(["chaos", "--path", str(tmp_path), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert next(ln for ln in out.splitlines() if ln.startswith("good ")).split()[-1] == "PASS"
    assert next(ln for ln in out.splitlines() if ln.startswith("hook ")).split()[-1] == "ERROR"
    assert "  error: scenario 'hook': configure raised RuntimeError: boom" in out


@pytest.mark.parametrize(("build", "message"), [
    (lambda: fault("exchange.http_error", endpoints=("order.placed",)),
     "fault 'exchange.http_error': endpoints: no endpoint 'order.placed'; did you mean "
     "'order.place'? (endpoints: ping, time, exchange_info, ticker, ticker.24hr, depth, "
     "klines, calendar, order.place, order.status, order.cancel, orders.open, orders.all, "
     "trades, account, currencies, contracts)"),
    (lambda: fault("exchange.latency", endpoints=("tickers", "calendar")),
     "no endpoint 'tickers'; did you mean 'ticker'?"),
    (lambda: fault("exchange.latency", latency=math.inf),
     "fault 'exchange.latency': parameter latency must be finite, got inf"),
    (lambda: fault("exchange.latency", latency=math.nan),
     "fault 'exchange.latency': parameter latency must be finite, got nan"),
    (lambda: fault("redis.outage", start="1m", duration=math.inf),
     "duration must be a finite number of seconds, got inf"),
    (lambda: fault("redis.outage", start=math.inf), "start must be a finite number of seconds"),
    (lambda: fault("redis.outage", end=math.nan), "end must be a finite number of seconds"),
    (lambda: fault("redis.outage", duration="1e999s"),
     "duration must be a number of seconds or a string like '2m', got '1e999s'"),
    (lambda: Scenario(name="s", title="t", faults=[], duration=math.inf),
     "scenario 's': duration must be a finite number of seconds >= 0, got inf"),
    (lambda: Scenario(name="s", title="t", faults=[], warmup=math.nan),
     "scenario 's': warmup must be a finite number of seconds >= 0, got nan"),
])
def test_settings_that_would_pass_silently_are_errors(build: object, message: str) -> None:
    with pytest.raises(FaultError) as info:
        build()  # type: ignore[operator]
    assert message in str(info.value)
