"""Dud listings: announced launches that never open.

For thirty minutes every genuine listing that launches is called off at the last moment:
the calendar shows it ready up to its launch (so the model calls it "will open"), then
says it is not trading, and an order on it is refused (30001, not open). Each of those
calls is judged false once its launch has passed, so the share of false calls among those
judged in 15 minutes reaches 1:

* ``PatternFalsePositiveRateHigh`` fires (the 15 minute window turns over to duds, then
  ``for: 5m``) and resolves once listings open again, and no other alert fires
  (``quiet_alerts``);
* ``pattern_false_positives_total`` rose by the calls judged in the fault's window, and
  the fault-free run of the same seed made no false call at all;
* the bot bought nothing it was called off: every order on a dud was refused by the
  exchange, ends ``rejected`` in the ledger and in ``orders_total``, and the ledger
  reconciles (the default checks).
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault
from pytest_sniper_otel.flow import Outcome


def _counter(snapshot, name):
    return sum(p.value or 0 for p in snapshot.points(name))


def _counter_at(run, name, seconds):
    """The counter at the last scrape at or before ``seconds`` since the run's start."""
    seen = [(t, v) for t, v in run.timeline(name) if t <= seconds]
    return seen[-1][1] if seen else 0.0


def _duds_judged_false(run):
    dud = run.faults[0]
    called_off = sorted(run.bot.exchange.called_off)
    assert dud.total_hits() == len(called_off) > 0, (
        f"{dud.total_hits()} strikes, {len(called_off)} listings called off")

    start, end = run.relative_window(0)
    judged = "pattern_positive_calls_judged_total"
    false = "pattern_false_positives_total"
    # every call judged while the fault held was a dud's; none before it
    rose = _counter_at(run, false, end) - _counter_at(run, false, start)
    judged_in = _counter_at(run, judged, end) - _counter_at(run, judged, start)
    assert _counter_at(run, false, start) == 0, "false calls before the fault"
    assert judged_in >= 5 and rose == judged_in, (
        f"{rose:g} of {judged_in:g} calls judged during the fault were false")
    assert _counter(run.baseline.final_snapshot, false) == 0, "the healthy run made false calls"

    # no dud was bought: every order on one was refused as not open
    on_duds = [i for i in run.bot.ledger if i.symbol in called_off]
    assert on_duds, "no order was tried on a dud"
    let_through = [i for i in on_duds
                   if i.outcome != Outcome.REJECTED or not i.reason.startswith("30001")]
    assert not let_through, f"orders on duds not refused as not open: {let_through[:3]}"


SCENARIO = Scenario(
    name="dud_listings",
    title="announced listings never open for thirty minutes",
    faults=[fault("market.dud_listings", start="1m", duration="36m")],
    duration=2280.0,
    # the 15 minute window must turn over to judged duds (at least 5), then hold for 5m
    alerts=[
        expect_alert("PatternFalsePositiveRateHigh", within="34m", resolves_within="8m"),
        # the bot's own safety: refused entries in a row open the breaker, and the
        # execution agent's health sinks with them
        expect_alert("CircuitBreakerOpen", within="20m", resolves_within="8m"),
        expect_alert("AgentHealthLow", within="20m", resolves_within="8m"),
    ],
    quiet_alerts=True,
    breaker="opens_and_closes",
    verify=_duds_judged_false,
)


def test_dud_listings(chaos):
    chaos.run(SCENARIO)
