"""Shared by every test directory.

pytester restores sys.modules after each in-process run, so a module an inner session
imports first is imported afresh by the next one: a second SessionTelemetry, and SDK
classes that no longer match the installed providers. Installing here, in the outer
process, keeps the plugin's modules and the OTel SDK loaded and shared by every in-process
run (tests/plugin, tests/chaos), as they are by the tests of one session. The same holds
for the lab's modules and redis, which tests/chaos's in-process runs load: a fault's
ConnectionError must be the class the bot's cache catches. The asyncio clock shares its
state between copies of its module, but one copy is simpler to reason about.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import pytest_sniper_otel.chaos.fixture  # with the runner and every fault
import pytest_sniper_otel.clock_asyncio
import pytest_sniper_otel.flow  # with redis
import pytest_sniper_otel.telemetry  # noqa: F401  (with spans, metrics, logs)
from pytest_sniper_otel.capture import install_session

# Two workers (--dist loadgroup) and no `slow` tests for a developer's `python -m pytest`; the
# full depth in CI.
from .local_run import (  # noqa: F401  (hooks, found here by pytest)
    pytest_cmdline_main,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_report_header,
    pytest_terminal_summary,
    pytest_testnodedown,
)
from .plugin.pytester_helpers import INNER_RUN_ADDOPTS

install_session()

# CI draws the same examples every run, so a red build is reproducible rather than a flake;
# developers draw new ones each run, fewer of them where a test leaves the count to the
# profile (`--hypothesis-profile ci` reproduces CI locally).
settings.register_profile("ci", derandomize=True)
settings.register_profile("dev", max_examples=25)
settings.load_profile(os.environ.get(
    "HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI", "").lower() == "true" else "dev"))

@pytest.fixture(autouse=True)
def _inner_run_options(request: pytest.FixtureRequest) -> None:
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # it clears PYTEST_ADDOPTS: set ours after
        request.getfixturevalue("monkeypatch").setenv("PYTEST_ADDOPTS", INNER_RUN_ADDOPTS)


REDIS_URL_ENV = "SNIPER_OTEL_REDIS_URL"


@pytest.fixture
def real_redis_url() -> str:
    """The real Redis server's URL (``SNIPER_OTEL_REDIS_URL``). Without it the test skips;
    in CI (``CI`` set) that is a failure instead: the real-Redis leg must run there."""
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {REDIS_URL_ENV} is not: the real-Redis leg must run in CI")
        pytest.skip(f"set {REDIS_URL_ENV}=redis://host:port/db to run against a real Redis")
    return url
