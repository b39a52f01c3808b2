"""Shared pieces of the plugin's pytester tests.

In-process or subprocess? The plugin installs global OpenTelemetry providers once per
process, exactly as in a user's session where many tests share them. So behaviour *inside*
a session (helpers, report sections, per-test isolation) is tested with in-process
``pytester.runpytest_inprocess``: fast, and sharing providers with earlier in-process runs is
what a real session does between its tests. Anything that depends on what the process held
*before* the plugin looked (the report header, a provider a conftest installed first, an
import-time tracer created before any provider, ``-n 2`` workers) runs in a fresh interpreter
with ``pytester.runpytest_subprocess``.
"""

from __future__ import annotations

import pytest

from .pytester_helpers import APP


@pytest.fixture
def app(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory holding ``app.py`` (import it from the generated tests)."""
    pytester.makepyfile(app=APP)
    pytester.syspathinsert()
    return pytester
