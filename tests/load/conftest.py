"""Load-test smoke tests run locust in subprocesses; this file registers their marker."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "load: runs locust in subprocesses on loopback (deselect: -m 'not load')"
    )
