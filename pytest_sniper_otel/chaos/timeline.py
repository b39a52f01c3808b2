"""The fault timeline, the engine shared by the ``chaos`` fixture and the scenario runner.

:class:`FaultTimeline` injects each fault when its schedule starts, steps it while active
and rolls it back when the schedule ends, or when :meth:`FaultTimeline.rollback_all` is
called (always, in a ``finally``); :class:`JournalEntry` records each of those moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .faults import Fault, FaultSpec


@dataclass
class JournalEntry:
    at: float
    action: str
    fault: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"at": round(self.at, 6), "action": self.action, "fault": self.fault,
                "detail": self.detail}


class FaultTimeline:
    """Faults bound to targets, driven by a scenario-relative time ``t`` (seconds)."""

    def __init__(
        self, seed: int, *, offset: float = 0.0, until: float = math.inf,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.seed = seed
        self.clock = clock  # the system's clock, recorded in each fault's activity
        self.offset = offset  # scenario time at which schedules' zero falls
        self.until = until  # scenario time at which every fault is rolled back
        self.entries: list[tuple[Fault, Any]] = []
        self.journal: list[JournalEntry] = []

    def add(self, spec: FaultSpec, target: Any) -> Fault:
        f = spec.build(len(self.entries), self.seed)
        if self.clock is not None:
            f.clock_now = self.clock
        self.entries.append((f, target))
        return f

    @property
    def faults(self) -> list[Fault]:
        return [f for f, _ in self.entries]

    def boundaries(self) -> list[float]:
        out = set()
        for f, _ in self.entries:
            out.add(self.offset + f.schedule.start)
            end = self.offset + f.schedule.end
            if math.isfinite(end):
                out.add(end)
        if math.isfinite(self.until):
            out.add(self.until)
        return sorted(out)

    def update(self, t: float, dt: float = 0.0) -> None:
        """Inject what is due at ``t``, roll back what ended, step what stays active."""
        for f, target in self.entries:
            rel = t - self.offset
            due = f.schedule.active_at(rel) and t < self.until
            if due and not f.active and not f.records:
                f.inject(target, at=rel)
                self.journal.append(JournalEntry(rel, "inject", f.name, repr(f)))
            elif f.active and not due:
                self._rollback(f, rel)
            elif f.active and dt > 0:
                f.step(target, rel, dt)

    def _rollback(self, f: Fault, rel: float) -> None:
        try:
            f.rollback(at=rel)
            self.journal.append(JournalEntry(rel, "rollback", f.name))
        except Exception as exc:  # keep rolling back the others; report this one
            self.journal.append(JournalEntry(rel, "rollback_failed", f.name, repr(exc)))
            raise

    def rollback_all(self, t: float) -> None:
        """Roll back every active fault (newest first); raises the first failure at the end."""
        first: Exception | None = None
        for f, _ in reversed(self.entries):
            if f.active:
                try:
                    self._rollback(f, t - self.offset)
                except Exception as exc:
                    first = first or exc
        if first is not None:
            raise first
