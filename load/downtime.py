"""The seed's "50% reduction in unplanned downtime through proactive monitoring", modelled
with the chaos suite's journal.

Downtime of a fault = time from the fault's start to its detection + the time to fix it
once detected. With the alert rules, detection is the journal's measured detection delay
of each expected alert (simulated seconds, every rule evaluated as Prometheus would). The
baseline without alerts is a person checking a dashboard every P minutes: the fault starts
at a uniformly random point of the interval, so it is seen P/2 after its start on average.
The time to fix is the same in both arms and unknown to this harness; the ratio is given
for a fix time of 0 (detection alone: the most favourable to alerting) and of 15 minutes.

    sniper-otel chaos --json suite.json && python load/downtime.py suite.json
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

PERIODS_MIN = (15, 30, 60)
FIX_MIN = (0, 15)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    journal = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    rows: list[tuple[str, str, float]] = []
    for scenario in journal["scenarios"]:
        for alert in scenario.get("alerts", {}).get("expected", []):
            if alert.get("fired") and alert.get("detection_delay") is not None:
                rows.append((scenario["experiment"]["name"], alert["alert"],
                             float(alert["detection_delay"])))
    if not rows:
        print("no expected alert fired in this journal: nothing to model", file=sys.stderr)
        return 1
    header = f"{'scenario':<24}{'alert':<26}{'detected':>9}" + "".join(
        f"{f'vs {p} min':>11}" for p in PERIODS_MIN)
    print("downtime with alerts / with a person checking every P minutes (fix time 0)")
    print(header)
    for name, alert, delay in rows:
        ratios = "".join(f"{delay / (p * 30):>10.2f}x" for p in PERIODS_MIN)
        print(f"{name:<24}{alert:<26}{delay / 60:>7.1f} m{ratios}")
    delays = [d for _, _, d in rows]
    print(f"\n{len(rows)} detections, median {statistics.median(delays) / 60:.1f} min after the "
          "fault started")
    for fix in FIX_MIN:
        parts = []
        for p in PERIODS_MIN:
            ratio = statistics.median([(d + fix * 60) / (p * 30 + fix * 60) for d in delays])
            parts.append(f"{ratio:.2f}x vs every {p} min")
        print(f"median downtime ratio, fix time {fix} min: {', '.join(parts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
