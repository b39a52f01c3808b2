"""A recorded run: the snapshots an evaluator observed and the alerts it saw firing.

Recordings are what promtool unit tests are generated from (``input_series`` from the
snapshots, ``alert_rule_test`` from the firing sets), and they round-trip through JSON so a
chaos run can be saved and exported later with ``sniper-otel rules export --recording``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..metrics import MetricsSnapshot, SeriesPoint
from .evaluator import AlertEvaluator


@dataclass(frozen=True)
class Recording:
    name: str
    interval: float
    snapshots: tuple[MetricsSnapshot, ...]
    firing: tuple[tuple[str, ...], ...]  # per snapshot: the alerts firing after evaluating it
    values: tuple[Mapping[str, float | None], ...] = ()  # per snapshot: each rule's value

    @classmethod
    def of(cls, evaluator: AlertEvaluator, name: str) -> Recording:
        return cls(
            name,
            evaluator.interval,
            tuple(evaluator.snapshots),
            tuple(tuple(e.firing) for e in evaluator.evaluations),
            tuple(dict(e.values) for e in evaluator.evaluations),
        )

    def times_ms(self) -> list[int]:
        """Sample times relative to the first one, checked to lie on the interval grid."""
        if not self.snapshots:
            raise SpecError(f"recording {self.name!r} is empty")
        t0 = self.snapshots[0].time_unix_nano // 1_000_000
        step = round(self.interval * 1000)
        out = []
        for i, s in enumerate(self.snapshots):
            t = s.time_unix_nano // 1_000_000 - t0
            if t != i * step:
                raise SpecError(
                    f"recording {self.name!r}: snapshot {i} is at +{t / 1000:g}s, not "
                    f"+{i * step / 1000:g}s; promtool needs one sample every {self.interval:g}s"
                )
            out.append(t)
        return out

    # JSON ------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "interval": self.interval,
                "snapshots": [
                    {"time_unix_nano": s.time_unix_nano, "points": [_point_data(p) for p in s]}
                    for s in self.snapshots
                ],
                "firing": [list(f) for f in self.firing],
                "values": [dict(v) for v in self.values],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Recording:
        data = json.loads(text)
        snapshots = []
        for s in data["snapshots"]:
            series: dict[str, list[SeriesPoint]] = {}
            for p in s["points"]:
                point = _point_from(p)
                series.setdefault(point.name, []).append(point)
            snapshots.append(
                MetricsSnapshot(s["time_unix_nano"], {k: tuple(v) for k, v in series.items()})
            )
        return cls(
            data["name"],
            float(data["interval"]),
            tuple(snapshots),
            tuple(tuple(f) for f in data["firing"]),
            tuple(data.get("values", ())),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        try:
            return cls.from_json(Path(path).read_text())
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"{path}: not a recording: {exc!r}") from None


def _point_data(p: SeriesPoint) -> dict[str, Any]:
    data = asdict(p)
    data["attributes"] = dict(p.attributes)
    for key in ("min", "max"):  # JSON has no infinities
        if not math.isfinite(data[key]):
            data[key] = None
    return data


def _point_from(data: Mapping[str, Any]) -> SeriesPoint:
    fields: dict[str, Any] = dict(data)
    fields["min"] = math.inf if fields.get("min") is None else fields["min"]
    fields["max"] = -math.inf if fields.get("max") is None else fields["max"]
    fields["bucket_counts"] = tuple(fields.get("bucket_counts", ()))
    fields["boundaries"] = tuple(fields.get("boundaries", ()))
    return SeriesPoint(**fields)
