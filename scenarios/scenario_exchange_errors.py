"""Exchange 5xx errors: the client retries with backoff and trading carries on.

For five minutes, 60% of MEXC calls answer ``503 Service Unavailable``. The exchange
client retries each failed attempt with capped exponential backoff, so every retry shows up
as a sibling ``mexc-api-request`` span after an ERROR attempt, and ``api_request_latency_ms``
counts the failures by ``outcome``. The error-ratio alert must notice within seven minutes
(its window plus its ``for``) and clear once the exchange is healthy again; the ledger must
still reconcile.

Copy this module for your own bot: change the faults, the expected alerts and, if your bot
is not the reference one, the runner's targets (see ``pytest_sniper_otel.chaos.runner``).
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _calendar_every_poll(config):
    # Every discovery poll (30 s) asks the exchange instead of every other one: about ten
    # calendar calls fall in the fault window whatever the seed's calendar, where a quiet
    # seed made four or five and a few unlucky draws could leave the alert unfed.
    config.calendar_ttl = 20.0

SCENARIO = Scenario(
    name="exchange_errors",
    title="60% of exchange calls fail with 503 for five minutes",
    faults=[
        # Dense enough that each endpoint's error series is scraped more than once: a series'
        # first sample is not an increase, so sparse errors are invisible to rate().
        fault("exchange.http_error", start="1m", duration="5m", probability=0.6, status=503),
    ],
    # The rule looks at a 5 minute rate and must hold for 2 minutes; with a call every few
    # seconds the error series needs a few scrapes to exist, so allow window + for.
    configure=_calendar_every_poll,
    alerts=[expect_alert("ExchangeApiErrorRatioHigh", within="7m", resolves_within="7m")],
)


def test_exchange_errors(chaos):
    chaos.run(SCENARIO)
