"""Websocket disconnects: the price feed drops and refuses reconnects for a while.

The market-data feed disconnects and then flaps for three minutes, refusing reconnects for
90 s each time: longer than the alert's ``for: 1m`` plus a scrape, so detection does not
depend on how the flaps happen to fall. The safety monitor falls back to REST prices (cached
briefly) and retries the feed with backoff in ``websocket-reconnect`` spans.
``websocket_connections_active`` drops to 0, so ``WebsocketConnectionsDown`` must fire within
two minutes and resolve after rollback.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _feed_dropped_and_recovered(run):
    assert run.summary["feed_disconnects"] >= 1
    assert run.bot.feed.connected, "the feed never reconnected after the rollback"


SCENARIO = Scenario(
    name="websocket_disconnect",
    title="the price feed drops and flaps for three minutes",
    faults=[fault("feed.disconnect", start="1m", duration="3m", probability=0.5, down_for=90)],
    alerts=[expect_alert("WebsocketConnectionsDown", within="2m", resolves_within="3m")],
    verify=_feed_dropped_and_recovered,
)


def test_websocket_disconnect(chaos):
    chaos.run(SCENARIO)
