"""SIGINT and SIGTERM during `sniper-otel chaos` and `sniper-otel run`.

Every fault is rolled back (a real server's CLIENT PAUSE lifted at once), the bot's Redis
keys are removed, the partial scorecard/summary and journal are written and marked
interrupted, the exit status is 130 (SIGINT) or 143 (SIGTERM), and there is no traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path
from typing import Any

import pytest

from pytest_sniper_otel.interrupts import Terminated, raise_if_interrupted, terminable

from .plugin.pytester_helpers import FOREIGN_OTEL_PLUGINS

# its fault must strike in 50 s: no market order settles that early (partial_fills would not)
QUICK = ("SCENARIO = Scenario(name='quick', title='t', warmup=30.0, duration=60.0, "
         "recovery=10.0, baseline=False, faults=[fault('redis.latency', start=10)])\n")
LONG = ("SCENARIO = Scenario(name='long', title='t', warmup=30.0, duration=36000.0, "
        "recovery=10.0, baseline=False, faults=[{faults}], tags={tags})\n")


@pytest.fixture(autouse=True)
def _stacks_on_abort(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every child these tests start can print its threads' stacks if it hangs."""
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")


def _suite(directory: Path, faults: str, tags: str = "{}") -> Path:
    directory.mkdir()
    header = "from pytest_sniper_otel.chaos import Scenario, fault\n"
    (directory / "scenario_a_quick.py").write_text(header + QUICK, encoding="utf-8")
    (directory / "scenario_b_long.py").write_text(
        header + LONG.format(faults=faults, tags=tags), encoding="utf-8")
    return directory


def _interrupt_when(proc: subprocess.Popen[str], marker: str, signum: int) -> tuple[str, str]:
    """Read stderr until ``marker``, give the run a moment to get into the long part (the
    marker is printed as the step before it ends), then send ``signum``."""
    assert proc.stderr is not None
    seen = ""
    while marker not in seen:
        line = proc.stderr.readline()
        assert line, f"the process ended before {marker!r}: {seen}"
        seen += line
    time.sleep(2.0)
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        # a run that ignores the signal: SIGABRT makes faulthandler print where every
        # thread is stuck
        proc.send_signal(signal.SIGABRT)
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"still running 120 s after {signal.Signals(signum).name}; stacks:\n"
                    f"{(seen + err)[-6000:]}")
    return out, seen + err


def _pytest_child(directory: Path, journals: Path, *args: str) -> subprocess.Popen[str]:
    """pytest on ``directory``'s test_long.py, journals written to ``journals``."""
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider",
         *FOREIGN_OTEL_PLUGINS.split(), "-q", *args, "test_long.py",
         f"--sniper-otel-chaos-journal={journals}"],
        cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _chaos(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pytest_sniper_otel.cli", "chaos", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# Both signals take one cleanup path (interrupts.Terminated is a KeyboardInterrupt): locally each
# test sends one of them, CI both.
@pytest.mark.parametrize(("signum", "status"), [
    (signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)])
def test_chaos_interrupted_rolls_back_and_writes_a_partial_journal(
    signum: int, status: int, tmp_path: Path
) -> None:
    suite = _suite(tmp_path / "suite", "fault('redis.outage', start=10), "
                                       "fault('exchange.http_error', start=10, probability=0.3)")
    journal = tmp_path / "journal.json"
    proc = _chaos(["--path", str(suite), "--json", str(journal)])
    out, err = _interrupt_when(proc, "[1/2] quick", signum)
    name = signal.Signals(signum).name
    assert proc.returncode == status, err
    assert "Traceback" not in out + err
    assert f"sniper-otel chaos: interrupted by {name}; faults rolled back" in err
    assert f"; INTERRUPTED by {name} after 2 of 2" in out.splitlines()[0]
    long_row = next(line for line in out.splitlines() if line.startswith("long "))
    assert long_row.split()[-1] == "INTERRUPTED"
    assert f"long: INTERRUPTED by {name} at +" in out
    data = json.loads(journal.read_text())
    assert data["interrupted"] == name and data["ok"] is False
    quick, long = data["scenarios"]
    assert quick["status"] == "completed"
    assert long["status"] == "interrupted" and long["interrupted"] == name
    injected = [e for e in long["run"] if e["action"] == "inject"]
    rolled = [e for e in long["rollbacks"]]
    assert len(injected) == 2 and len(rolled) == 2  # both faults were on, both rolled back


def _sniper_keys(client: Any) -> set[bytes]:
    return set(client.scan_iter(match="sniper:*", count=1000))


@pytest.mark.sniper_otel_real_redis
def test_a_real_servers_client_pause_is_lifted_and_the_keys_removed(
    tmp_path: Path, real_redis_url: str
) -> None:
    import redis

    url = real_redis_url
    client = redis.Redis.from_url(url, socket_timeout=1.0)
    before = _sniper_keys(client)
    suite = _suite(tmp_path / "suite", "fault('redis.client_pause', start=10)",
                   tags="{'requires': 'real_redis'}")
    proc = _chaos(["--path", str(suite), "--redis-url", url, "--json",
                   str(tmp_path / "j.json")])
    out, err = _interrupt_when(proc, "[1/2] quick", signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "Traceback" not in out + err
    # writes go through at once: the 30 s pause was lifted, not left to expire
    client.set("sniper-otel-interrupt-probe", "1", ex=5)
    # nothing of the run's left behind; another test's key may have expired meanwhile
    assert _sniper_keys(client) - before == set()
    client.close()


def test_run_interrupted_writes_a_partial_summary(tmp_path: Path) -> None:
    out_json = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c",
         "import sys, pytest_sniper_otel.flow.bot as b\n"
         "orig = b.SniperBot.run_for\n"
         "def run_for(self, s):\n"
         "    print('stepping', file=sys.stderr, flush=True)\n"
         "    return orig(self, s)\n"
         "b.SniperBot.run_for = run_for\n"
         "from pytest_sniper_otel.cli import main\n"
         f"sys.exit(main(['run', '--duration', '24h', '--json', {str(out_json)!r}]))\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = _interrupt_when(proc, "stepping", signal.SIGTERM)
    assert proc.returncode == 143, err
    assert "Traceback" not in out + err
    assert "(INTERRUPTED by SIGTERM)" in out.splitlines()[0]
    assert "sniper-otel run: interrupted by SIGTERM; the bot's keys removed" in err
    summary = json.loads(out_json.read_text())
    assert summary["interrupted"] == "SIGTERM"
    assert 0 < summary["simulated_seconds"] < 86_400


@pytest.mark.parametrize(("signum", "status"), [
    pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow), (signal.SIGTERM, 143)])
def test_a_pytest_chaos_test_interrupted_rolls_back_and_keeps_its_journal(
    signum: int, status: int, tmp_path: Path
) -> None:
    (tmp_path / "test_long.py").write_text(
        "import sys\n"
        "from pytest_sniper_otel.chaos import Scenario, fault\n"
        "from pytest_sniper_otel.chaos.redis_faults import Outage\n\n"
        # the signal must come once the outage is in force, or there is nothing to roll back
        "apply = Outage.apply\n"
        "def apply_and_tell(self, target):\n"
        "    apply(self, target)\n"
        "    print('started', file=sys.stderr, flush=True)\n"
        "Outage.apply = apply_and_tell\n\n"
        "def test_long(chaos):\n"
        "    chaos.run(Scenario(name='long', title='t', warmup=30.0, duration=36000.0,\n"
        "                       recovery=10.0, baseline=False,\n"
        "                       faults=[fault('redis.outage', start=10)]))\n",
        encoding="utf-8")
    journals = tmp_path / "journals"
    proc = _pytest_child(tmp_path, journals, "-s")
    out, err = _interrupt_when(proc, "started", signum)
    assert proc.returncode == status, out + err
    [journal] = journals.glob("*.json")
    data = json.loads(journal.read_text())
    assert data["status"] == "interrupted"
    assert data["interrupted"] == signal.Signals(signum).name
    assert len(data["rollbacks"]) == 1  # the outage was rolled back


# A signal whose handler runs inside a finaliser is dropped by CPython ("Exception ignored
# in ..."). These children raise it from there before the bot's step number {at}, with no
# timing involved:
# signal.raise_signal() runs the handler before it returns, inside the finaliser.
DROP_AT_STEP = (
    "import gc, signal, sys, weakref\n"
    "import pytest_sniper_otel.flow.bot as b\n"
    "steps = []\n"
    "def raise_signal():\n"
    "    try:\n"
    "        signal.raise_signal({signum})\n"
    "    except BaseException as exc:\n"
    "        print(f'dropped: {{type(exc).__name__}}', file=sys.stderr, flush=True)\n"
    "        raise\n"
    "class Finalised:\n"
    "    def __del__(self):\n"
    "        raise_signal()\n"
    "def dropped_in_gc():\n"
    "    cycle = Finalised(); cycle.me = cycle; del cycle; gc.collect()\n"
    "class Referent: pass\n"
    "def dropped_in_weakref_callback():\n"
    "    obj = Referent()\n"
    "    ref = weakref.ref(obj, lambda _: raise_signal())\n"
    "    del obj\n"
    "orig = b.SniperBot.run_for\n"
    "def run_for(self, s):\n"
    "    steps.append(s)\n"
    "    if len(steps) == {at}:\n"
    "        {drop}()\n"
    "    return orig(self, s)\n"
    "b.SniperBot.run_for = run_for\n"
)


def _dropping(signum: int, drop: str = "dropped_in_gc", at: int = 3) -> str:
    return DROP_AT_STEP.format(signum=int(signum), drop=drop, at=at)


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints where it is stuck
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"still running 120 s after the dropped signal:\n{err[-6000:]}")


def test_run_stops_at_the_next_step_when_a_finaliser_drops_the_signal(tmp_path: Path) -> None:
    out_json = tmp_path / "summary.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", _dropping(signal.SIGTERM) +
         "from pytest_sniper_otel.cli import main\n"
         f"sys.exit(main(['run', '--duration', '1h', '--json', {str(out_json)!r}]))\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = _finish(proc)
    # the handler raised inside __del__, where CPython dropped it without a trace
    assert "dropped: Terminated" in err
    assert "Traceback" not in out + err
    assert proc.returncode == 143, err
    assert "(INTERRUPTED by SIGTERM)" in out.splitlines()[0]
    assert "sniper-otel run: interrupted by SIGTERM; the bot's keys removed" in err
    summary = json.loads(out_json.read_text())
    assert summary["interrupted"] == "SIGTERM"
    # dropped before the third 5 s step ran: it stops within that step or before the fourth
    assert 10 <= summary["simulated_seconds"] <= 15


@pytest.mark.parametrize("drop", ["dropped_in_gc", "dropped_in_weakref_callback"])
def test_chaos_stops_at_the_next_step_when_a_finaliser_drops_the_signal(
    drop: str, tmp_path: Path
) -> None:
    suite = _suite(tmp_path / "suite", "fault('redis.outage', start=10)")
    journal = tmp_path / "journal.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", _dropping(signal.SIGINT, drop) +
         "from pytest_sniper_otel.cli import main\n"
         f"sys.exit(main(['chaos', '--path', {str(suite)!r}, '--json', {str(journal)!r}]))\n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = _finish(proc)
    assert "dropped: KeyboardInterrupt" in err
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    assert "sniper-otel chaos: interrupted by SIGINT; faults rolled back" in err
    assert "; INTERRUPTED by SIGINT after 1 of 2" in out.splitlines()[0]
    data = json.loads(journal.read_text())
    [quick] = data["scenarios"][:1]
    assert quick["status"] == "interrupted" and quick["interrupted"] == "SIGINT"


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_pytest_chaos_test_stops_at_the_next_step_when_a_finaliser_drops_the_signal(
    signum: int, status: int, tmp_path: Path
) -> None:
    (tmp_path / "test_long.py").write_text(
        _dropping(signum, at=10) +
        "from pytest_sniper_otel.chaos import Scenario, fault\n\n"
        "def test_long(chaos):\n"
        "    chaos.run(Scenario(name='long', title='t', warmup=30.0, duration=3600.0,\n"
        "                       recovery=10.0, baseline=False,\n"
        "                       faults=[fault('redis.outage', start=1)]))\n",
        encoding="utf-8")
    journals = tmp_path / "journals"
    proc = _pytest_child(tmp_path, journals)
    out, err = _finish(proc)
    assert proc.returncode == status, out + err
    [journal] = journals.glob("*.json")
    data = json.loads(journal.read_text())
    assert data["status"] == "interrupted"
    assert data["interrupted"] == signal.Signals(signum).name
    # the runner's steps (5 s, plus the fault's start at +31 s): dropped before the one
    # from +40 s, it stops within that step or before the next
    assert 40 <= data["simulated_seconds"] <= 45
    assert len(data["rollbacks"]) == 1  # the outage (from +31 s) was rolled back


def _drop_in_weakref_callback(signum: int) -> None:
    class Referent:
        pass

    obj = Referent()
    ref = weakref.ref(obj, lambda _: signal.raise_signal(signum))
    del obj
    assert ref() is None


def test_a_dropped_signal_with_no_step_after_it_is_raised_when_the_scope_ends() -> None:
    with pytest.raises(Terminated), terminable():
        _drop_in_weakref_callback(signal.SIGTERM)
    raise_if_interrupted()  # handled on its way out: nothing is left to raise later


def test_the_bots_loop_raises_a_dropped_signal_at_its_next_step() -> None:
    from pytest_sniper_otel.clock import SimClock
    from pytest_sniper_otel.flow import SniperBot

    with SimClock() as clock:
        bot = SniperBot.create(seed=0, clock=clock)
        start = clock.time()
        bot.run_for(30)
        with pytest.raises(KeyboardInterrupt) as excinfo, terminable():
            _drop_in_weakref_callback(signal.SIGINT)
            bot.run_for(3600)
        assert type(excinfo.value) is KeyboardInterrupt
        assert clock.time() - start < 60  # the first event after the drop, not an hour
        bot.close()


def test_without_our_handler_pythons_keyboardinterrupt_goes_through_the_loops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plain pytest installs no SIGINT handler (an xdist worker may ignore SIGINT: the test
    sets Python's own); the bot's loop must neither mask its KeyboardInterrupt nor add one."""
    from pytest_sniper_otel.clock import SimClock
    from pytest_sniper_otel.flow import SniperBot

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with SimClock() as clock:
            bot = SniperBot.create(seed=0, clock=clock)
            bot.run_for(30)  # nothing recorded: the checks do nothing
            execute = bot.orchestrator.execute_workflow
            calls = []

            def interrupted_workflow(workflow: Any) -> None:
                calls.append(workflow)
                if len(calls) == 2:
                    signal.raise_signal(signal.SIGINT)
                execute(workflow)

            monkeypatch.setattr(bot.orchestrator, "execute_workflow", interrupted_workflow)
            with pytest.raises(KeyboardInterrupt):
                bot.run_for(3600)
            assert len(calls) == 2
            monkeypatch.undo()
            bot.close()
    finally:
        signal.signal(signal.SIGINT, previous)
