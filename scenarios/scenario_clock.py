"""Clock faults: the exchange's clock lags the bot's, and the host clock steps both ways.

For eight minutes the exchange's clock runs 30 s behind the bot's: the exchange refuses
the bot's signed requests (their timestamp is outside its ``recvWindow``: code 700003), and
a snipe fired at what the bot believes is launch time meets "trading pair not open" (30001);
either way the lag is met, and such intents must end as ``rejected`` (never lost, never
duplicated) -- only while the skew lasts. Meanwhile the host clock jumps forward 90 s (a
VM resume) and later steps back 60 s (NTP correcting): scheduled workflows catch up after
the first and wait after the second. Every span must end, the ledger must reconcile and no
alert may fire spuriously.
"""

from pytest_sniper_otel.chaos import Scenario, fault


def _skew_and_jumps_observed(run):
    jumps = [f for f in run.faults if f.name == "clock.jump"]
    assert all(f.total_hits() == 1 for f in jumps), "a clock jump was not applied"
    start, end = run.window(0)
    refused = [i for i in run.bot.ledger if i.reason.startswith(("30001", "700003"))]
    # whether a snipe falls in the window depends on the seed's calendar; the signed calls
    # (balances, orders) the exchange refuses for their timestamp do not
    lagged = [s for s in run.spans_between("mexc-api-request", start, end)
              if "code 700003" in (s.status.description or "")]
    assert refused or lagged, "nothing met the lagging exchange"
    outside = [i.client_order_id for i in refused if not start <= i.created_at <= end]
    assert not outside, f"lag rejections outside the skew window: {outside}"


SCENARIO = Scenario(
    name="clock",
    title="exchange clock 30 s behind; host clock jumps +90 s then -60 s",
    faults=[
        fault("clock.skew", start="1m", duration="8m", component="exchange", offset=-30),
        fault("clock.jump", start="5m", duration="1m", seconds=90),
        fault("clock.jump", start="7m", duration="1m", seconds=-60),
    ],
    breaker="any",
    verify=_skew_and_jumps_observed,
)


def test_clock(chaos):
    chaos.run(SCENARIO)
