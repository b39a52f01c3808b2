"""The README's Python examples are tests a user would write: they must run and pass."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .plugin.pytester_helpers import QUIET

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example{i}" for i in range(len(EXAMPLES))])
def test_readme_example_passes(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(test_example=source)
    # A subprocess: the plugin's providers are process-global, as in a user's own run.
    # Hypothesis' and pytest-randomly's plugins have nothing to do with these examples and
    # cost most of each run's start-up (~0.7 s: all of Hypothesis, numpy)
    result = pytester.runpytest_subprocess(*QUIET, "-p", "no:randomly")
    result.assert_outcomes(passed=len(re.findall(r"^(?:    )?(?:async )?def test_", source, re.M)))
