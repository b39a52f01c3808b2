"""On a pytest-xdist worker: the tests that share one real Redis server run on one worker.

Tests marked ``sniper_otel_real_redis`` use the same server (``SNIPER_OTEL_REDIS_URL``), and
some pause it (``CLIENT PAUSE WRITE`` in ``scenario_redis_pause``): on two workers at once,
another test's SET timed out. Under ``--dist loadgroup`` they get one ``xdist_group``, so
they run one after another on one worker while the other tests spread out. Under another
distribution, with ``SNIPER_OTEL_REDIS_URL`` set, the first worker says once that they may
run at once.

xdist's scheduler reads each test's group from its id (``<nodeid>@<group>``); once the worker
has sent those ids, the tests take their own ids back, so reports, ``--lf`` and the terminal
show the ids the tests were collected with (with the suffix, ``--lf`` never matched a
grouped test's recorded failure and silently skipped it).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from .. import SniperOtelWarning
from .plugin import REAL_REDIS_MARKER

REAL_REDIS_GROUP = REAL_REDIS_MARKER  # the xdist_group name, shown after each test's id
REDIS_URL_ENV = "SNIPER_OTEL_REDIS_URL"


class RealRedisGroup:
    """Registered on xdist workers only (``config.workerinput`` is set there)."""

    name = "sniper-otel-real-redis-group"

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.workerinput: dict[str, Any] = config.workerinput  # type: ignore[attr-defined]
        # a grouped test -> (its own id, the id with its group that xdist's scheduler reads)
        self.grouped: dict[pytest.Item, tuple[str, str]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Generator[None]:
        # xdist's own hook reads the xdist_group marks (and names each grouped test
        # "<nodeid>@<group>", which its loadgroup scheduler splits on): mark before it runs.
        # A wrapper, as xdist registers its hook last on a worker, so it runs before any
        # plain hook of a plugin or conftest.
        loadgroup = bool(getattr(self.config.option, "loadgroup", False))  # set by xdist
        if not loadgroup:
            yield
            self._warn_if_spread(items)
            return
        group = pytest.mark.xdist_group(REAL_REDIS_GROUP)
        own_ids = {item: item.nodeid for item in items}
        for item in items:
            if item.get_closest_marker(REAL_REDIS_MARKER) is not None:
                item.add_marker(group)
        yield
        # xdist's hook named each grouped test "<nodeid>@<group>" in item._nodeid. Until the
        # worker sends the ids, the tests keep their own: --lf selects by them after this.
        self.grouped = {}
        for item, own in own_ids.items():
            meant = item.__dict__.get("_nodeid")
            if isinstance(meant, str) and meant != own:
                self.grouped[item] = (own, meant)
                _set_nodeid(item, own)  # pytest 9.2 never took xdist's id; an older one did

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_finish(self) -> Generator[None]:
        # Around xdist's own hook, which sends the ids: it sends the grouped ones (pytest 9.2
        # no longer reads item._nodeid, where xdist put them: pytest-xdist issue 1386).
        for item, (_, grouped) in self.grouped.items():
            _set_nodeid(item, grouped)
        try:
            yield
        finally:
            for item, (own, _) in self.grouped.items():
                _set_nodeid(item, own)

    def _warn_if_spread(self, items: list[pytest.Item]) -> None:
        workers = int(self.workerinput.get("workercount", 1))
        if (workers < 2 or self.workerinput.get("workerid") != "gw0"  # said once, by gw0
                or not os.environ.get(REDIS_URL_ENV)):  # without a server they skip
            return
        shared = [item for item in items if item.get_closest_marker(REAL_REDIS_MARKER)]
        if len(shared) < 2:
            return
        path, line, _ = shared[0].location
        warnings.warn_explicit(SniperOtelWarning(
            f"sniper-otel: {len(shared)} tests marked {REAL_REDIS_MARKER} share one Redis "
            f"server ({REDIS_URL_ENV}) and may run at once on the {workers} xdist workers, "
            "where one that pauses the server makes the others time out; --dist loadgroup "
            "runs them one after another on one worker"), None, path, (line or 0) + 1)


def _set_nodeid(item: pytest.Item, nodeid: str) -> None:
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # an older pytest: the id is the string itself
        vars(item)["_nodeid"] = nodeid
        return
    item._id = coerce_node_id(nodeid)
