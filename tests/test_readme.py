"""The README's Python examples are tests a user would write: they must run and pass."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from pytest_sniper_otel.chaos.xdist_group import REAL_REDIS_GROUP

from .plugin.pytester_helpers import QUIET

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
# Examples that set up the process (a global provider, logfire, TestBase resetting the
# providers) run in a process of their own, as a user's suite with that setup would; the
# others are test modules of one suite, sharing the plugin's providers as a user's do.
SETS_UP_THE_PROCESS = ("set_meter_provider", "set_tracer_provider", "set_logger_provider",
                       "logfire.configure", "TestBase")
ALONE = [i for i, source in enumerate(EXAMPLES)
         if any(setup in source for setup in SETS_UP_THE_PROCESS)]
SHARED = [i for i in range(len(EXAMPLES)) if i not in ALONE]
# QUIET keeps Hypothesis' and pytest-randomly's plugins out: they have nothing to do with
# these examples and cost most of a run's start-up (~0.7 s: all of Hypothesis, numpy).
ARGS = QUIET


def _tests_in(source: str) -> int:
    return len(re.findall(r"^(?:    )?(?:async )?def test_", source, re.M))


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 2 and SHARED and ALONE
    assert any(REAL_REDIS_GROUP in EXAMPLES[i] for i in SHARED)  # the group below is needed


@pytest.mark.parametrize("index", ALONE, ids=[f"example{i}" for i in ALONE])
def test_a_readme_example_that_sets_up_the_process_passes(
    pytester: pytest.Pytester, index: int
) -> None:
    source = EXAMPLES[index]
    pytester.makepyfile(test_example=source)
    # A subprocess: the plugin's providers are process-global, as in a user's own run.
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=_tests_in(source))


# The suite's real-Redis example (on SNIPER_OTEL_REDIS_URL when set) runs in the group of
# the tests that pause that server: under --dist loadgroup never during a pause, where its
# SET timed out.
@pytest.mark.xdist_group(REAL_REDIS_GROUP)
def test_the_other_readme_examples_pass_as_one_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{f"test_example{i}": EXAMPLES[i] for i in SHARED})
    result = pytester.runpytest_subprocess(*ARGS, "-v")
    outcomes: dict[int, Counter[str]] = {i: Counter() for i in SHARED}
    for line in result.outlines:
        if m := re.match(r"test_example(\d+)\.py::\S+ (PASSED|FAILED|ERROR|SKIPPED|XFAIL)",
                         line):
            outcomes[int(m.group(1))][m.group(2)] += 1
    wrong = {f"example{i}": dict(counts) for i, counts in outcomes.items()
             if counts != Counter(PASSED=_tests_in(EXAMPLES[i])) and _tests_in(EXAMPLES[i])}
    assert not wrong, f"{wrong}\n" + result.stdout.str()
    result.assert_outcomes(passed=sum(_tests_in(EXAMPLES[i]) for i in SHARED))

