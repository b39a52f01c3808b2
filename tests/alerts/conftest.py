"""The promtool fixture: the alert tests' one way to find promtool."""

from __future__ import annotations

import os

import pytest

from pytest_sniper_otel.alerts import find_promtool


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool from $PROMTOOL or PATH; skipped when missing, except under CI=true."""
    found = find_promtool()
    if found is None:
        message = "promtool not found: set PROMTOOL or put it on PATH (Debian package prometheus)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; under CI the cross-check is required")
        pytest.skip(message)
    return found
