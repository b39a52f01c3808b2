"""Clock faults: the exchange's clock lags the bot's, and the host clock steps both ways.

For eight minutes the exchange's clock runs 30 s behind the bot's: the bot fires its
snipes at what it believes is launch time, the exchange answers "trading pair not open",
and those intents must end as ``rejected`` (never lost, never duplicated) -- only while the
skew lasts. Meanwhile the host clock jumps forward 90 s (a VM resume) and later steps back
60 s (NTP correcting): scheduled workflows catch up after the first and wait after the
second. Every span must end, the ledger must reconcile and no alert may fire spuriously.
"""

from pytest_sniper_otel.chaos import Scenario, fault


def _skew_and_jumps_observed(run):
    jumps = [f for f in run.faults if f.name == "clock.jump"]
    assert all(f.total_hits() == 1 for f in jumps), "a clock jump was not applied"
    start, end = run.window(0)
    not_open = [i for i in run.bot.ledger if i.reason.startswith("30001")]
    assert not_open, "no order met the lagging exchange"
    outside = [i.client_order_id for i in not_open if not start <= i.created_at <= end]
    assert not outside, f"'not open' rejections outside the skew window: {outside}"


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
