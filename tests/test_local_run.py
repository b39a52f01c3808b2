"""tests/local_run.py, through inner runs: what a developer's `python -m pytest` leaves out and
says about it, what CI runs, and the two default workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from .plugin.pytester_helpers import QUIET

REPO = Path(__file__).resolve().parents[1]
# Imported already (tests/conftest.py), so pytest cannot rewrite its asserts (it has none).
PLUGIN = ("-p", "tests.local_run", "-W", "ignore::pytest.PytestAssertRewriteWarning",
          "-p", "no:randomly", *QUIET)
SUITE = """
import pytest

def test_fast():
    pass

def test_also_fast():
    pass

@pytest.mark.slow
def test_deep():
    pass
"""
LOCAL_HEADER = "suite depth: local, slow tests left out (SNIPER_OTEL_SLOW=1 runs them, as CI does)"
LEFT_OUT = "1 slow test left out: SNIPER_OTEL_SLOW=1 python -m pytest runs them (CI does)"
WORKERS_HEADER = "workers: 2, the suite's default (-n 0: one process)"


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A suite of two tests and a slow one, outside CI (whatever the outer run's setting);
    `python -m pytest` without paths runs it from `testpaths`, as in this repository."""
    for name in ("CI", "SNIPER_OTEL_SLOW", "SNIPER_OTEL_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeini("[pytest]\ntestpaths = test_suite.py\n"
                     "markers =\n    slow: a deep run\n")
    # the workers import the plugin too: from this checkout, as the outer run does
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return pytester


def test_a_local_run_leaves_slow_tests_out_and_says_so(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess(*PLUGIN, "test_suite.py")
    result.stdout.fnmatch_lines([
        LOCAL_HEADER,
        "collected 3 items / 1 deselected / 2 selected",
        LEFT_OUT,
        "=* 2 passed, 1 deselected in *",
    ])
    result.stdout.no_fnmatch_line("workers:*")  # named paths: one process
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize(
    ("env", "args", "reason"),
    [
        ({"CI": "true"}, (), "CI=true"),
        ({"CI": "True"}, (), "CI=true"),
        ({"SNIPER_OTEL_SLOW": "1"}, (), "SNIPER_OTEL_SLOW=1"),
        ({}, ("-m", "slow or not slow"), "-m given"),
    ],
    ids=["CI", "CI-capitalised", "SNIPER_OTEL_SLOW", "markexpr"],
)
def test_full_depth_runs_the_slow_tests_and_names_the_setting(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str], args: tuple[str, ...], reason: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = suite.runpytest_inprocess(*PLUGIN, *args, "test_suite.py")
    result.stdout.fnmatch_lines([
        f"suite depth: full, slow tests included ({reason})",
        "collected 3 items",
        "=* 3 passed in *",
    ])
    result.stdout.no_fnmatch_line("*left out*")


def test_only_the_slow_tests_with_m_slow(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess(*PLUGIN, "-m", "slow", "test_suite.py")
    result.stdout.fnmatch_lines([
        "suite depth: full, slow tests included (-m given)",
        "collected 3 items / 2 deselected / 1 selected",
        "=* 1 passed, 2 deselected in *",
    ])
    result.stdout.no_fnmatch_line("*left out*")


@pytest.mark.parametrize(
    "env", [{"CI": "false"}, {"CI": "1"}, {"SNIPER_OTEL_SLOW": "0"}, {"SNIPER_OTEL_SLOW": ""}],
    ids=["CI=false", "CI=1", "SNIPER_OTEL_SLOW=0", "SNIPER_OTEL_SLOW-empty"],
)
def test_other_values_keep_the_local_depth(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = suite.runpytest_inprocess(*PLUGIN, "test_suite.py")
    result.stdout.fnmatch_lines([LOCAL_HEADER, "collected 3 items / 1 deselected / 2 selected"])


def test_the_whole_suite_runs_on_two_workers_and_counts_what_they_left_out(
    suite: pytest.Pytester,
) -> None:
    result = suite.runpytest_inprocess(*PLUGIN)
    result.stdout.fnmatch_lines([
        LOCAL_HEADER,
        WORKERS_HEADER,
        "created: 2/2 workers",
        "2 workers [2 items]",
        LEFT_OUT,
        "=* 2 passed in *",
    ])
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("args", [("-n", "0"), ("-p", "no:xdist")], ids=["-n0", "no-xdist"])
def test_one_process_when_asked(suite: pytest.Pytester, args: tuple[str, ...]) -> None:
    result = suite.runpytest_inprocess(*PLUGIN, *args)
    result.stdout.fnmatch_lines([
        LOCAL_HEADER,
        "collected 3 items / 1 deselected / 2 selected",
        LEFT_OUT,
        "=* 2 passed, 1 deselected in *",
    ])
    result.stdout.no_fnmatch_line("*workers*")


def test_the_real_redis_leg_keeps_one_process(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # its tests share one server and one of them pauses it: never on two workers at once
    monkeypatch.setenv("SNIPER_OTEL_REDIS_URL", "redis://127.0.0.1:6391/0")
    result = suite.runpytest_inprocess(*PLUGIN)
    result.stdout.fnmatch_lines([LOCAL_HEADER, "collected 3 items / 1 deselected / 2 selected"])
    result.stdout.no_fnmatch_line("*workers*")
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.parametrize("debugger", ["--pdb", "--trace"])
def test_the_debugger_keeps_one_process(suite: pytest.Pytester, debugger: str) -> None:
    # no test selected (-k, then the slow one left out): a debugger with nothing to stop in
    result = suite.runpytest_inprocess(*PLUGIN, debugger, "-k", "not fast")
    result.stdout.fnmatch_lines(["collected 3 items / 3 deselected / 0 selected"])
    result.stdout.no_fnmatch_line("*workers*")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_this_repositorys_options_stay_out_of_inner_runs(pytester: pytest.Pytester) -> None:
    """The repository's addopts and its conftest's default workers belong to its own run:
    an inner run (another rootdir) collects in one process, with no `slow` marker known."""
    pytester.makepyfile(test_inner="def test_one():\n    pass\n")
    result = pytester.runpytest_inprocess(*QUIET, "-p", "no:randomly")
    result.stdout.fnmatch_lines(["collected 1 item", "=* 1 passed in *"])
    result.stdout.no_fnmatch_line("*workers*")
    result.stdout.no_fnmatch_line("suite depth*")
