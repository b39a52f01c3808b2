"""Shared by every test directory.

pytester restores sys.modules after each in-process run, so a module an inner session
imports first is imported afresh by the next one: a second SessionTelemetry, and SDK
classes that no longer match the installed providers. Installing here, in the outer
process, keeps the plugin's modules and the OTel SDK loaded and shared by every in-process
run (tests/plugin, tests/chaos), as they are by the tests of one session.
"""

from __future__ import annotations

import pytest_sniper_otel.telemetry  # noqa: F401  (with spans, metrics, logs)
from pytest_sniper_otel.capture import install_session

install_session()
