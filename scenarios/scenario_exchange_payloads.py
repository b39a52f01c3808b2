"""Bad data: malformed payloads, and a calendar that is stale or full of duplicates.

Some calendar and ticker answers arrive truncated or as an HTML error page with status 200;
the client validates every payload against its schema, rejects the bad ones (an ERROR span
carrying the exception) and retries. Meanwhile the calendar serves duplicated entries whose
copies carry an older ready state, then freezes (a stuck cache). Discovery must drop
duplicates and stale states, log that it did, and never trade twice on one listing.
Rejected payloads count as failed calls (``outcome="malformed"``), so the error-ratio alert
must fire.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _no_listing_traded_twice(run):
    buys = [i.symbol for i in run.bot.ledger if i.side == "BUY"]
    assert len(buys) == len(set(buys)), f"a listing was bought twice: {sorted(buys)}"
    dropped = run.summary["calendar_dropped"]
    assert dropped["duplicates"] > 0, "duplicated calendar entries were never seen"


SCENARIO = Scenario(
    name="exchange_payloads",
    title="truncated and non-JSON answers; duplicated, then frozen calendar",
    faults=[
        fault("exchange.malformed", start="1m", duration="6m", probability=0.5,
              endpoints=("calendar", "ticker"), mode="truncated"),
        fault("exchange.malformed", start="1m", duration="6m", probability=0.5,
              endpoints=("account", "order.status"), mode="not_json"),
        fault("exchange.duplicate_calendar", start="1m", duration="3m"),
        fault("exchange.stale_calendar", start="5m", duration="3m"),
    ],
    # rejected payloads are failed calls: the error-ratio alert must see them
    alerts=[expect_alert("ExchangeApiErrorRatioHigh", within="7m", resolves_within="7m")],
    breaker="any",
    verify=_no_listing_traded_twice,
)


def test_exchange_payloads(chaos):
    chaos.run(SCENARIO)
