"""A recorded run: the snapshots an evaluator scraped and what each evaluation found.

Recordings are what promtool unit tests are generated from (``input_series`` from the
snapshots; alert states, pending included, and every clause's value from the evaluations),
and they round-trip through JSON so a chaos run can be saved and exported later with
``sniper-otel rules export --recording``.
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
from .evaluator import AlertEvaluator, AlertState, Evaluation


@dataclass(frozen=True)
class Recording:
    name: str
    interval: float  # between scrapes
    snapshots: tuple[MetricsSnapshot, ...]
    evaluations: tuple[Evaluation, ...]
    evaluation_interval: float

    @classmethod
    def of(cls, evaluator: AlertEvaluator, name: str) -> Recording:
        return cls(
            name,
            evaluator.interval,
            tuple(evaluator.snapshots),
            tuple(evaluator.evaluations),
            evaluator.evaluation_interval,
        )

    @property
    def firing(self) -> tuple[tuple[str, ...], ...]:
        """Per evaluation: the alerts firing after it."""
        return tuple(tuple(e.firing) for e in self.evaluations)

    def scrape_times_ms(self) -> list[int]:
        if not self.snapshots:
            raise SpecError(f"recording {self.name!r} is empty")
        return [s.time_unix_nano // 1_000_000 for s in self.snapshots]

    def evaluation_times_ms(self) -> list[int]:
        """Evaluation times, checked to lie on one grid of ``evaluation_interval``."""
        if not self.evaluations:
            raise SpecError(f"recording {self.name!r} has no evaluation")
        times = [round(e.time * 1000) for e in self.evaluations]
        step = round(self.evaluation_interval * 1000)
        for i, t in enumerate(times):
            if t != times[0] + i * step:
                raise SpecError(
                    f"recording {self.name!r}: evaluation {i} is at +{(t - times[0]) / 1000:g}s, "
                    f"not +{i * step / 1000:g}s; promtool evaluates every "
                    f"{self.evaluation_interval:g}s"
                )
        return times

    # JSON ------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "interval": self.interval,
                "evaluation_interval": self.evaluation_interval,
                "snapshots": [
                    {"time_unix_nano": s.time_unix_nano, "points": [_point_data(p) for p in s]}
                    for s in self.snapshots
                ],
                "evaluations": [
                    {
                        "time": e.time,
                        "states": {k: str(v) for k, v in e.states.items()},
                        "values": {k: [_number_data(x) for x in v]
                                   for k, v in e.clause_values.items()},
                    }
                    for e in self.evaluations
                ],
            }
        )  # fmt: skip

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
        evaluations = []
        for e in data["evaluations"]:
            clause_values = {k: tuple(_number_from(x) for x in v) for k, v in e["values"].items()}
            evaluations.append(
                Evaluation(
                    float(e["time"]),
                    {k: AlertState(v) for k, v in e["states"].items()},
                    {k: v[0] for k, v in clause_values.items()},
                    clause_values,
                )
            )
        return cls(
            data["name"],
            float(data["interval"]),
            tuple(snapshots),
            tuple(evaluations),
            float(data["evaluation_interval"]),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        try:
            return cls.from_json(Path(path).read_text())
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"{path}: not a recording: {exc!r}") from None


def _number_data(x: float | None) -> float | str | None:
    """JSON has no NaN or infinities: they are written as the strings Go prints."""
    if x is None or math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("+Inf" if x > 0 else "-Inf")


def _number_from(x: float | str | None) -> float | None:
    return None if x is None else float(x)


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
