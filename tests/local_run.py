"""What this repository's `python -m pytest` runs: the whole suite on two pytest-xdist workers,
and without the tests marked `slow`, unless CI asks for the full depth.

Hooks re-exported by tests/conftest.py, and a plugin of its own (`-p tests.local_run`) for
tests/test_local_run.py's inner runs.

- Depth: `slow` tests (deep generative runs, extra seeds or signals of a check that runs
  locally with one, tests that start their own worker processes) are deselected unless
  CI=true, SNIPER_OTEL_SLOW=1 or an explicit `-m` expression asks for them; the header says
  which, and the summary how many were left out (under xdist too, where pytest's own
  "deselected" count only exists in the workers).
- Workers: a run of the whole suite (no paths given) uses two workers unless `-n` or
  `-p no:xdist` says otherwise; `--pdb`, `--trace` and `--collect-only` keep one process.
- Distribution: any run on workers without `--dist` uses `--dist loadgroup`, under which the
  lab plugin keeps the real-Redis tests (SNIPER_OTEL_REDIS_URL, as in CI) on one worker: they
  share one server, and one of them pauses it. The workers parse the command line, not the
  controller's options, so the controller hands the setting over.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

DEFAULT_WORKERS = 2
_WORKER_OUTPUT_KEY = "sniper_otel_slow_deselected"  # what a worker sends its controller
_deselected = pytest.StashKey[int]()
_workers_defaulted = pytest.StashKey[bool]()
_dist_defaulted = pytest.StashKey[bool]()
_WORKER_LOADGROUP_KEY = "sniper_otel_loadgroup"  # what the controller sends its workers


def full_depth_reason(config: pytest.Config) -> str | None:
    """Why the slow tests run (the setting that asks for them), or None: they are left out."""
    if os.environ.get("CI", "").lower() == "true":
        return "CI=true"
    if os.environ.get("SNIPER_OTEL_SLOW", "") == "1":
        return "SNIPER_OTEL_SLOW=1"
    if config.getoption("markexpr"):
        return "-m given"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    # a wrapper: before pytest-xdist's pytest_cmdline_main turns numprocesses into workers,
    # whichever plugin was registered first
    if _default_workers_apply(config):
        config.option.numprocesses = DEFAULT_WORKERS
        config.stash[_workers_defaulted] = True
    if (config.pluginmanager.hasplugin("xdist") and not hasattr(config, "workerinput")
            and config.option.numprocesses and config.option.dist == "no"):
        # xdist would pick "load", which spreads the real-Redis tests over the workers
        config.option.dist = "loadgroup"
        config.stash[_dist_defaulted] = True
    return (yield)


def _default_workers_apply(config: pytest.Config) -> bool:
    return (config.pluginmanager.hasplugin("xdist")
            and not hasattr(config, "workerinput")
            and getattr(config.option, "numprocesses", 0) is None
            and config.args_source == pytest.Config.ArgsSource.TESTPATHS
            and not config.getoption("usepdb")
            and not config.getoption("trace")
            and not config.getoption("collectonly"))


def pytest_configure(config: pytest.Config) -> None:
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None and worker_input.get(_WORKER_LOADGROUP_KEY):
        # an xdist worker: its loadgroup option came from the command line, which had none
        config.option.loadgroup = True


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist's controller hook, before a worker starts."""
    if node.config.stash.get(_dist_defaulted, False):
        node.workerinput[_WORKER_LOADGROUP_KEY] = True


def pytest_report_header(config: pytest.Config) -> list[str]:
    reason = full_depth_reason(config)
    lines = [f"suite depth: full, slow tests included ({reason})" if reason else
             "suite depth: local, slow tests left out (SNIPER_OTEL_SLOW=1 runs them, as CI does)"]
    if config.stash.get(_workers_defaulted, False):
        lines.append(f"workers: {DEFAULT_WORKERS}, the suite's default (-n 0: one process)")
    if config.stash.get(_dist_defaulted, False):
        lines.append("dist: loadgroup, the suite's default (the real-Redis tests on one worker)")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if full_depth_reason(config):
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    config.stash[_deselected] = len(slow)
    worker_output = getattr(config, "workeroutput", None)
    if worker_output is not None:  # an xdist worker: its controller prints the count
        worker_output[_WORKER_OUTPUT_KEY] = len(slow)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist's controller hook. Every worker collects the whole suite and deselects
    the same tests, so any worker's count is the count."""
    output = getattr(node, "workeroutput", None) or {}
    if _WORKER_OUTPUT_KEY in output:
        node.config.stash[_deselected] = output[_WORKER_OUTPUT_KEY]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    count = terminalreporter.config.stash.get(_deselected, 0)
    if count:
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(
            f"{count} slow {tests} left out: SNIPER_OTEL_SLOW=1 python -m pytest runs them "
            "(CI does)")
