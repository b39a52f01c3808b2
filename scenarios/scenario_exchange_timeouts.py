"""Timeouts and latency spikes, including the nasty case: the order went through but the
answer never came back.

Order placements time out after the exchange already accepted them (``server_acted``),
while every other call suffers latency spikes of 1.5-3 s. The client treats the timeout as
"outcome unknown" and asks the exchange before deciding, and retries reuse the client
order id, so the ledger must still reconcile with no duplicate order. Timeouts count as
``outcome="timeout"`` in ``api_request_latency_ms`` and must trip the error-ratio alert.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _calendar_every_poll(config):
    # Every discovery poll (30 s) asks the exchange: the timed-out calendar calls that feed
    # the alert do not depend on how busy the seed's calendar is (seed 17 starved it).
    config.calendar_ttl = 20.0

SCENARIO = Scenario(
    name="exchange_timeouts",
    title="order placements time out after the exchange acted; latency spikes elsewhere",
    faults=[
        fault("exchange.timeout", start="1m", duration="6m", probability=0.6,
              endpoints=("order.place", "calendar"), after=3.0, server_acted=True),
        fault("exchange.latency", start="1m", duration="6m", probability=0.5,
              endpoints=("ticker", "order.status", "account"), latency=1.5, jitter=1.5),
    ],
    configure=_calendar_every_poll,
    alerts=[expect_alert("ExchangeApiErrorRatioHigh", within="6m", resolves_within="7m")],
    breaker="any",
)


def test_exchange_timeouts(chaos):
    chaos.run(SCENARIO)
