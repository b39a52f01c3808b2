"""Clock faults: the wall clock steps forward and back, and the exchange's clock is skewed.

Five minutes into the method the host clock jumps forward 90 s (a VM resume); two minutes
later it steps back 60 s (NTP correcting); meanwhile the exchange's clock runs 20 s ahead of
the bot's. Scheduled workflows catch up after the forward jump and wait after the backward
one; orders must still reconcile, every span must end, and no alert may fire spuriously.
"""

from pytest_sniper_otel.chaos import Scenario, fault


def _time_moved_as_injected(run):
    jumps = [f for f in run.faults if f.name == "clock.jump"]
    assert all(f.total_hits() == 1 for f in jumps), "a clock jump was not applied"


SCENARIO = Scenario(
    name="clock",
    title="wall clock jumps +90 s then -60 s; exchange clock 20 s ahead",
    faults=[
        fault("clock.skew", start="1m", duration="8m", component="exchange", offset=20),
        fault("clock.jump", start="5m", duration="1m", seconds=90),
        fault("clock.jump", start="7m", duration="1m", seconds=-60),
    ],
    breaker="any",
    verify=_time_moved_as_injected,
)


def test_clock(chaos):
    chaos.run(SCENARIO)
