"""Scenario modules as tests anywhere: a copied file in a user's project, and the suite
installed with the lab under ``pytest --pyargs``."""

from __future__ import annotations

from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def copy_scenario(pytester: pytest.Pytester, name: str) -> None:
    source = (SCENARIOS / f"{name}.py").read_text(encoding="utf-8")
    pytester.path.joinpath(f"{name}.py").write_text(source, encoding="utf-8")


def test_a_copied_scenario_runs_under_plain_pytest(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SNIPER_OTEL_REDIS_URL", raising=False)
    monkeypatch.delenv("CI", raising=False)
    copy_scenario(pytester, "scenario_redis_outage")
    copy_scenario(pytester, "scenario_redis_pause")
    # a project's own settings: only test_*.py files, and markers must be registered
    pytester.makeini("[pytest]\naddopts = --strict-markers\n")
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "scenario_redis_outage.py .*",
        "scenario_redis_pause.py s*",
        "SKIPPED [[]1[]] scenario_redis_pause.py:*: set SNIPER_OTEL_REDIS_URL=redis://host:port/db "
        "to run against a real Redis",
    ])


def test_scenario_files_can_be_left_out(pytester: pytest.Pytester) -> None:
    copy_scenario(pytester, "scenario_redis_outage")
    pytester.makeini("[pytest]\nsniper_otel_scenario_files =\n")
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes()
    result.stdout.fnmatch_lines(["collected 0 items", "*no tests ran*"])


def test_a_scenario_named_on_the_command_line_is_collected_once(
    pytester: pytest.Pytester,
) -> None:
    copy_scenario(pytester, "scenario_clock")
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider",
                                "--collect-only", "-q", "scenario_clock.py")
    result.stdout.fnmatch_lines(["scenario_clock.py::test_clock", "", "1 test collected*"])


def test_the_installed_suite_runs_under_pytest_pyargs(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider",
                                "--collect-only", "-q", "--pyargs", "pytest_sniper_otel.scenarios")
    installed = sorted(p.stem for p in SCENARIOS.glob("scenario_*.py"))
    result.stdout.fnmatch_lines([f"*{name}.py::test_*" for name in installed])
    result.stdout.fnmatch_lines([f"{len(installed)} tests collected*"])
