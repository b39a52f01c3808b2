"""A second copy of clock_asyncio (pytester's in-process runs restore ``sys.modules``, and
the next import loads the module again) shares the first copy's state: the clocks running,
the loops adopted and the originals saved, so a loop never follows a clock that stopped."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
from types import ModuleType

import pytest

import pytest_sniper_otel
from pytest_sniper_otel import clock_asyncio
from pytest_sniper_otel.clock import SimClock

NS = 1_000_000_000


def loop_sleeps(loop: asyncio.AbstractEventLoop, seconds: float) -> float:
    """How long ``asyncio.sleep(seconds)`` lasted on ``loop``'s time (read while it runs:
    the loop follows a clock from its ``run_forever`` on)."""

    async def sleep() -> float:
        start = loop.time()
        await asyncio.sleep(seconds)
        return loop.time() - start

    return loop.run_until_complete(sleep())


def reimported(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A second copy, loaded as after pytester restored ``sys.modules``: from now on
    ``SimClock`` (``from . import clock_asyncio``) reaches it, not the first."""
    monkeypatch.setattr(pytest_sniper_otel, "clock_asyncio", clock_asyncio)
    monkeypatch.delitem(sys.modules, clock_asyncio.__name__)
    second = importlib.import_module(clock_asyncio.__name__)
    assert second is not clock_asyncio
    assert pytest_sniper_otel.clock_asyncio is second
    return second


def test_a_clock_started_by_one_copy_and_stopped_by_another_leaves_no_patch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = asyncio.BaseEventLoop.run_forever
    loop = asyncio.new_event_loop()
    try:
        with SimClock() as outer:  # through the first copy: patches run_forever
            patched = asyncio.BaseEventLoop.run_forever
            assert patched is not original
            second = reimported(monkeypatch)
            with SimClock() as inner:  # through the second copy
                assert asyncio.BaseEventLoop.run_forever is patched  # not wrapped again
                assert loop_sleeps(loop, 5) == pytest.approx(5)
                assert inner.monotonic_ns() == pytest.approx(5 * NS)
                assert outer.monotonic_ns() == 0
            # the loop goes on on the outer clock, which the first copy started
            assert loop_sleeps(loop, 3) == pytest.approx(3)
            assert outer.monotonic_ns() == pytest.approx(3 * NS)
            assert inner.monotonic_ns() == pytest.approx(5 * NS)
        # the outer clock stopped through the second copy: the first copy's patch is gone
        assert asyncio.BaseEventLoop.run_forever is original
        assert second._SHARED is clock_asyncio._SHARED
        assert second._SHARED.clocks == []
        # real time again, not the stopped clock ("SimClock is not running" from select)
        assert 0.01 <= loop_sleeps(loop, 0.01) < 5
        fresh = asyncio.new_event_loop()
        try:
            assert 0.01 <= loop_sleeps(fresh, 0.01) < 5
        finally:
            fresh.close()
    finally:
        loop.close()


def test_a_copy_loaded_from_a_fresh_spec_shares_clocks_and_servers_with_the_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.find_spec(clock_asyncio.__name__)
    assert spec is not None and spec.loader is not None
    second = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(second)
    assert second is not clock_asyncio
    original = asyncio.BaseEventLoop.run_forever
    unregister = second.register_in_process_server(lambda: False, ("127.0.0.1", 1))
    try:
        assert clock_asyncio._served_in_process(("127.0.0.1", 1))
    finally:
        unregister()
    assert not clock_asyncio._served_in_process(("127.0.0.1", 1))
    loop = asyncio.new_event_loop()
    try:
        with SimClock() as first_clock:  # through the first copy
            monkeypatch.setattr(pytest_sniper_otel, "clock_asyncio", second)
            with SimClock() as second_clock:  # through the second copy
                assert loop_sleeps(loop, 2) == pytest.approx(2)
                assert second_clock.monotonic_ns() == pytest.approx(2 * NS)
                assert first_clock.monotonic_ns() == 0
            monkeypatch.undo()
            assert loop_sleeps(loop, 1) == pytest.approx(1)
            assert first_clock.monotonic_ns() == pytest.approx(1 * NS)
        assert asyncio.BaseEventLoop.run_forever is original
    finally:
        loop.close()
