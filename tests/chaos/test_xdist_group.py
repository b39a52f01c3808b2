"""The lab plugin keeps the tests that share one real Redis server on one pytest-xdist worker
(``--dist loadgroup``), through pytester runs on two workers."""

from __future__ import annotations

import pytest

from ..plugin.pytester_helpers import QUIET, workers_by_test

SHARED = {"test_cache.py::test_cache[real-1]", "test_cache.py::test_cache[real-2]",
          "test_scenarios.py::test_pause", "test_scenarios.py::test_outage"}
# Two modules, as in a real suite: a cache test with a fakeredis and a real-server leg (the
# marker on the fixture's param), and scenario-like tests marked themselves.
CACHE = """
import pytest

@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.sniper_otel_real_redis)])
def leg(request):
    return request.param

@pytest.mark.parametrize("n", [1, 2])
def test_cache(leg, n):
    pass

def test_free():
    pass
"""
SCENARIOS = """
import pytest
from pytest_sniper_otel.chaos import Scenario, fault

@pytest.mark.sniper_otel_real_redis
def test_pause():
    pass

@pytest.mark.sniper_otel_real_redis
def test_outage(chaos):  # on fakeredis: the marker only groups it
    chaos.run(Scenario(name="outage", title="t", warmup=10.0, duration=30.0, recovery=10.0,
                       baseline=False, faults=[fault("redis.outage", start=10)]))

def test_offline():
    pass
"""
WARNING = (
    "SniperOtelWarning: sniper-otel: 4 tests marked sniper_otel_real_redis share one Redis "
    "server (SNIPER_OTEL_REDIS_URL) and may run at once on the 2 xdist workers, where one "
    "that pauses the server makes the others time out; --dist loadgroup runs them one after "
    "another on one worker"
)
ARGS = (*QUIET, "-n", "2", "-v")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("SNIPER_OTEL_REDIS_URL", "redis://127.0.0.1:6391/0")  # never reached
    pytester.makepyfile(test_cache=CACHE, test_scenarios=SCENARIOS)
    return pytester


def test_loadgroup_runs_the_real_redis_tests_on_one_worker(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess(*ARGS, "--dist", "loadgroup",
                                       "--sniper-otel-chaos-journal=journals")
    result.stdout.fnmatch_lines([
        "created: 2/2 workers",
        "2 workers [8 items]",
        "scheduling tests via LoadGroupScheduling",
        "=* 8 passed in *",
    ])
    ran = workers_by_test(result)
    # each test under the id it was collected with: xdist's "@group" suffix is its scheduler's
    assert sorted(ran) == sorted([
        "test_cache.py::test_cache[fake-1]", "test_cache.py::test_cache[fake-2]",
        "test_cache.py::test_free", "test_scenarios.py::test_offline", *SHARED,
    ])
    shared = {worker for test, worker in ran.items() if test in SHARED}
    assert len(shared) == 1, ran  # both modules' shared tests, one worker
    assert set(ran.values()) == {"gw0", "gw1"}, ran  # the others go to the other one too
    result.stdout.no_fnmatch_line("*SniperOtelWarning*")
    # the journal is named after the test's own id
    journals = suite.path / "journals"
    assert [p.name for p in journals.iterdir()] == ["test_scenarios.py_test_outage--outage.json"]


@pytest.mark.slow  # two more workers
def test_another_distribution_warns_that_they_may_run_at_once(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess(*ARGS)  # xdist's default: --dist load
    result.stdout.fnmatch_lines([
        "scheduling tests via LoadScheduling",
        "test_cache.py:*",
        f"  test_cache.py:*: {WARNING}",
        "=* 8 passed, 1 warning in *",
    ])
    assert sorted(workers_by_test(result)) == sorted([
        "test_cache.py::test_cache[fake-1]", "test_cache.py::test_cache[fake-2]",
        "test_cache.py::test_free", "test_scenarios.py::test_offline", *SHARED,
    ])


@pytest.mark.slow  # two more workers
def test_no_warning_without_a_server(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # without SNIPER_OTEL_REDIS_URL the real-Redis tests skip: nothing to share
    monkeypatch.delenv("SNIPER_OTEL_REDIS_URL")
    result = suite.runpytest_inprocess(*ARGS)
    result.stdout.fnmatch_lines(["=* 8 passed in *"])
    result.stdout.no_fnmatch_line("*SniperOtelWarning*")


def test_last_failed_reruns_a_failed_test_of_the_group(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cache="""
import pytest

@pytest.mark.sniper_otel_real_redis
def test_shared_fails():
    assert False

@pytest.mark.sniper_otel_real_redis
def test_shared_passes():
    pass

def test_alone_fails():
    assert False
""")
    # the cache is on here: --lf reads what the first run recorded
    args = ("-p", "no:hypothesispytest", "-p", "no:randomly", "-n", "2", "-v",
            "--dist", "loadgroup")
    pytester.runpytest_inprocess(*args).assert_outcomes(passed=1, failed=2)
    result = pytester.runpytest_inprocess(*args, "--lf")
    result.assert_outcomes(failed=2)
    failed = sorted(workers_by_test(result, "FAILED"))
    assert failed == ["test_cache.py::test_alone_fails", "test_cache.py::test_shared_fails"]

