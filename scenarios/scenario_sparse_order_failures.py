"""Sparse failures on a quiet bot: order placements fail for twenty-five minutes.

Every order placement fails with ``503`` and its retries too; the bot's other calls are
healthy, so the API error ratio stays far below its 5% threshold. Orders are rare (one per
listing launch, a few minutes apart), so each failure is a single increment of a counter.
``rate()`` cannot see an increment from a series' first sample: the bot starts its
``orders_total`` and ``api_errors_total`` series at 0, and ``OrderPlacementFailing`` must
fire on the first failure.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault

SCENARIO = Scenario(
    name="sparse_order_failures",
    title="every order placement fails (503) for twenty-five minutes, a handful of orders in all",
    faults=[
        fault("exchange.http_error", start="1m", duration="25m", probability=0.3, status=503,
              endpoints=("order.place",)),
    ],
    duration=1800.0,
    alerts=[expect_alert("ExchangeApiErrorRatioHigh", within="25m", resolves_within="12m")],
    breaker="any",
)


def test_sparse_order_failures(chaos):
    chaos.run(SCENARIO)
