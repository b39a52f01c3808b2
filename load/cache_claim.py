"""The seed's "15-25% improvement in cache hit rates through detailed monitoring", measured.

Runs the reference bot for ``--minutes`` simulated minutes on each seed twice, without and
with cache warming driven by its own hit/miss metrics (``BotConfig(cache_warming=
CacheWarming())``), and prints per seed the hit rates, their ratio, and what warming costs:
extra exchange requests and extra model inferences. Hit rates are read the way a dashboard
reads them, from the ``cache_hits_total`` / ``cache_misses_total`` counters the bot
exports (an SDK meter provider with an in-memory reader; each run's increase), and checked
against the cache's own tally. Time is simulated, so every figure is the same on every run
and machine: the first seed is run twice per arm to show it.

    python load/cache_claim.py [--seeds 10] [--minutes 30] [--json out.json]
    nox -s cache_claim
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData, Sum

from pytest_sniper_otel.clock import SimClock
from pytest_sniper_otel.flow import ApiRequest, ApiResponse, BotConfig, CacheWarming, SniperBot

CLAIM = (1.15, 1.25)
MIN_SEEDS = 5


@dataclass
class Arm:
    hits: dict[str, int]  # per key_pattern, from the exported counters
    misses: dict[str, int]
    requests: Counter[str] = field(default_factory=Counter)  # exchange requests per endpoint
    inferences: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def hit_rate(self) -> float:
        hits, misses = sum(self.hits.values()), sum(self.misses.values())
        return hits / (hits + misses) if hits + misses else 0.0

    def pattern_rate(self, pattern: str) -> float:
        hits, misses = self.hits.get(pattern, 0), self.misses.get(pattern, 0)
        return hits / (hits + misses) if hits + misses else float("nan")

    def figures(self) -> dict[str, Any]:
        return {"hit_rate": round(self.hit_rate, 6), "hits": self.hits, "misses": self.misses,
                "requests": dict(sorted(self.requests.items())), "inferences": self.inferences,
                "warming": self.summary.get("cache_warming")}


def counters(reader: InMemoryMetricReader, name: str) -> dict[str, int]:
    """Cumulative value per ``key_pattern`` of a counter, as exported."""
    data: MetricsData | None = reader.get_metrics_data()
    out: dict[str, int] = {}
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name and isinstance(metric.data, Sum):
                    for point in metric.data.data_points:
                        pattern = str((point.attributes or {}).get("key_pattern"))
                        out[pattern] = out.get(pattern, 0) + int(point.value)
    return out


def increase(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in sorted(after.items()) if v - before.get(k, 0)}


def run(reader: InMemoryMetricReader, seed: int, seconds: float,
        warming: CacheWarming | None) -> Arm:
    hits0, misses0 = counters(reader, "cache_hits_total"), counters(reader, "cache_misses_total")
    requests: Counter[str] = Counter()
    with SimClock() as clock:
        bot = SniperBot.create(seed=seed, clock=clock, config=BotConfig(cache_warming=warming))
        inner: Callable[[ApiRequest], ApiResponse] = bot.client.transport

        def counting(request: ApiRequest) -> ApiResponse:
            requests[request.endpoint] += 1
            return inner(request)

        bot.client.transport = counting
        bot.run_for(seconds)
        summary = bot.summary()
        inferences = bot.model.inferences
        bot.close()
    arm = Arm(increase(counters(reader, "cache_hits_total"), hits0),
              increase(counters(reader, "cache_misses_total"), misses0),
              requests, inferences, summary)
    tally = summary["cache"]
    if (sum(arm.hits.values()), sum(arm.misses.values())) != (tally["hits"], tally["misses"]):
        raise SystemExit(f"seed {seed}: exported counters {arm.hits} / {arm.misses} disagree "
                         f"with the cache's tally {tally}")
    return arm


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10, help=f"seeds 0..N-1 (at least {MIN_SEEDS})")
    p.add_argument("--minutes", type=float, default=30.0, help="simulated minutes per run")
    p.add_argument("--json", type=Path, help="write every figure here")
    args = p.parse_args(argv)
    if args.seeds < MIN_SEEDS:
        p.error(f"--seeds must be at least {MIN_SEEDS}, got {args.seeds}")
    if not args.minutes > 0:
        p.error(f"--minutes must be positive, got {args.minutes}")

    logging.getLogger("sniper").setLevel(logging.ERROR)  # the bot's INFO records: not figures
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    seconds = args.minutes * 60.0
    warming = CacheWarming()

    rows = []
    for seed in range(args.seeds):
        rows.append((seed, run(reader, seed, seconds, None), run(reader, seed, seconds, warming)))
    # determinism: the first seed again, both arms, must give the same figures
    _, off0, on0 = rows[0]
    again = (run(reader, 0, seconds, None), run(reader, 0, seconds, warming))
    if (off0.figures(), on0.figures()) != (again[0].figures(), again[1].figures()):
        raise SystemExit("seed 0 gave different figures on a second run: not deterministic")

    patterns = sorted({k for _, off, on in rows for k in (*off.hits, *off.misses,
                                                          *on.hits, *on.misses)})
    print(f"Cache hit rate, {args.minutes:g} simulated minutes per run, without / with "
          f"warming ({warming})\n")
    head = (f"{'seed':>4}  {'off':>6}  {'on':>6}  {'ratio':>6}  {'+pts':>5}  "
            f"{'misses off->on':>14}  {'requests off->on':>16}  {'extra':>5}  "
            f"{'inferences':>10}  warm patterns")
    print(head)
    ratios, points, extra_share, miss_cut = [], [], [], []
    for seed, off, on in rows:
        ratio = on.hit_rate / off.hit_rate
        extra = sum(on.requests.values()) - sum(off.requests.values())
        miss_off, miss_on = sum(off.misses.values()), sum(on.misses.values())
        ratios.append(ratio)
        points.append(100 * (on.hit_rate - off.hit_rate))
        extra_share.append(extra / sum(off.requests.values()))
        miss_cut.append(1 - miss_on / miss_off)
        warm = ",".join((on.summary.get("cache_warming") or {}).get("warm_patterns", []))
        print(f"{seed:>4}  {off.hit_rate:>6.1%}  {on.hit_rate:>6.1%}  {ratio:>6.3f}  "
              f"{points[-1]:>5.1f}  {f'{miss_off}->{miss_on}':>14}  "
              f"{f'{sum(off.requests.values())}->{sum(on.requests.values())}':>16}  "
              f"{extra:>+5d}  {f'{off.inferences}->{on.inferences}':>10}  {warm}")
    print("\nper key pattern, hit rate off -> on (mean over seeds):")
    for pattern in patterns:
        off_rates = [off.pattern_rate(pattern) for _, off, _ in rows]
        on_rates = [on.pattern_rate(pattern) for _, _, on in rows]
        print(f"  {pattern:<12} {statistics.fmean(off_rates):>6.1%} -> "
              f"{statistics.fmean(on_rates):>6.1%}")
    extra_by_endpoint: Counter[str] = Counter()
    for _, off, on in rows:
        extra_by_endpoint.update(on.requests)
        extra_by_endpoint.subtract(off.requests)
    mean_ratio = statistics.fmean(ratios)
    print(f"\nmean hit-rate ratio (with / without): {mean_ratio:.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); "
          f"+{statistics.fmean(points):.1f} percentage points; "
          f"misses cut by {statistics.fmean(miss_cut):.0%}")
    more_inferences = statistics.fmean(on.inferences / off.inferences - 1 for _, off, on in rows)
    print(f"cost: {statistics.fmean(extra_share):+.1%} exchange requests "
          f"({dict(sorted(extra_by_endpoint.items()))} over {len(rows)} seeds), "
          f"{more_inferences:+.0%} model inferences")
    verdict = ("within" if CLAIM[0] <= mean_ratio <= CLAIM[1] else
               "above" if mean_ratio > CLAIM[1] else "below")
    print(f"seed's claim, a 1.15-1.25x hit rate: {verdict} it "
          f"(the baseline already hits {statistics.fmean(o.hit_rate for _, o, _ in rows):.1%}, "
          f"so the most any warming could reach is "
          f"{statistics.fmean(1 / o.hit_rate for _, o, _ in rows):.3f}x)")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "minutes": args.minutes, "warming": repr(warming), "mean_ratio": mean_ratio,
            "seeds": [{"seed": s, "off": off.figures(), "on": on.figures()}
                      for s, off, on in rows]}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
