"""A second copy of the clock module (pytester's in-process runs restore ``sys.modules``, and
the next import loads the module again) keeps its own ``time.sleep`` patch, saving the first
copy's patch as the sleep it replaces. Clocks nest (freezegun unwinds its freezers last in,
first out, and fails on any other order), so the copies' patches unwind in order too.
"""

from __future__ import annotations

import importlib.util
import time
from types import ModuleType

import pytest

from pytest_sniper_otel import clock

NS = 1_000_000_000


def second_copy() -> ModuleType:
    spec = importlib.util.find_spec(clock.__name__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module is not clock and module.SimClock is not clock.SimClock
    return module


def test_nested_clocks_of_two_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", real_sleep)
    second = second_copy()
    with clock.SimClock() as outer:
        with second.SimClock() as inner:
            time.sleep(3)
        time.sleep(1)
    assert (outer.monotonic_ns(), inner.monotonic_ns()) == (NS, 3 * NS)
    assert time.sleep is real_sleep
    time.sleep(0)
