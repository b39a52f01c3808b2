"""tests/local_run.py, through inner runs: what a developer's `python -m pytest` leaves out and
says about it, what CI runs, and the two default workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from .plugin.pytester_helpers import QUIET, workers_by_test

REPO = Path(__file__).resolve().parents[1]
# Imported already (tests/conftest.py), so pytest cannot rewrite its asserts (it has none).
PLUGIN = ("-p", "tests.local_run", "-W", "ignore::pytest.PytestAssertRewriteWarning",
          *QUIET)
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
DIST_HEADER = "dist: loadgroup, the suite's default (the real-Redis tests on one worker)"
# tests sharing the real server: with SNIPER_OTEL_REDIS_URL set, on one worker, in order
REAL_REDIS = """
import os
import pytest

@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.sniper_otel_real_redis)])
def leg(request):
    return request.param

@pytest.mark.parametrize("n", [1, 2, 3])
def test_cache(leg, n):
    print("ran on", os.environ["PYTEST_XDIST_WORKER"])

@pytest.mark.sniper_otel_real_redis
def test_pause():
    print("ran on", os.environ["PYTEST_XDIST_WORKER"])
"""


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
        DIST_HEADER,
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


def test_the_real_redis_leg_runs_on_one_of_the_two_workers(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its tests share one server and one of them pauses it: --dist loadgroup, which the
    workers learn from the controller, keeps them on one worker while the rest spread out."""
    monkeypatch.setenv("SNIPER_OTEL_REDIS_URL", "redis://127.0.0.1:6391/0")
    suite.makepyfile(test_redis=REAL_REDIS)
    suite.makeini("[pytest]\ntestpaths = test_suite.py test_redis.py\n"
                  "markers =\n    slow: a deep run\n")
    result = suite.runpytest_inprocess(*PLUGIN, "-v")
    result.stdout.fnmatch_lines([LOCAL_HEADER, WORKERS_HEADER, DIST_HEADER,
                                 "2 workers [9 items]", "=* 9 passed in *"])
    ran = workers_by_test(result)
    shared = [*(f"test_redis.py::test_cache[real-{n}]" for n in (1, 2, 3)),
              "test_redis.py::test_pause"]
    assert sorted(ran) == sorted([
        "test_suite.py::test_fast", "test_suite.py::test_also_fast",
        *(f"test_redis.py::test_cache[fake-{n}]" for n in (1, 2, 3)), *shared,
    ])
    assert len({ran[test] for test in shared}) == 1
    assert set(ran.values()) == {"gw0", "gw1"}
    assert result.ret == pytest.ExitCode.OK


def test_an_explicit_dist_is_kept(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess(*PLUGIN, "-n", "2", "--dist", "load")
    result.stdout.fnmatch_lines([LOCAL_HEADER, "created: 2/2 workers", "=* 2 passed in *"])
    result.stdout.no_fnmatch_line("dist:*")


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
    result = pytester.runpytest_inprocess(*QUIET)
    result.stdout.fnmatch_lines(["collected 1 item", "=* 1 passed in *"])
    result.stdout.no_fnmatch_line("*workers*")
    result.stdout.no_fnmatch_line("suite depth*")


@pytest.mark.slow  # a third worker replaces the one ended
def test_a_hung_test_fails_by_name_on_a_worker(
    pytester: pytest.Pytester, pytestconfig: pytest.Config
) -> None:
    """This repository's timeout method (pyproject.toml), with a one-second bound: the hung
    test's worker is ended and the run goes on, naming the test, instead of hanging."""
    pytester.makepyfile(test_hang="""
import threading

def test_before():
    pass

def test_hang():
    threading.Event().wait()

def test_after():
    pass
""")
    method = pytestconfig.getini("timeout_method")
    assert method == "thread"
    result = pytester.runpytest_inprocess(*QUIET, "-n", "2",
                                          "-o", "timeout=1", "-o", f"timeout_method={method}")
    result.stdout.fnmatch_lines([
        "timeout: 1.0s",
        "timeout method: thread",
        "replacing crashed worker gw?",
        "worker 'gw?' crashed while running 'test_hang.py::test_hang'",
        "FAILED test_hang.py::test_hang - worker 'gw?' crashed while running*",
        "=* 1 failed, 2 passed in *",
    ])
