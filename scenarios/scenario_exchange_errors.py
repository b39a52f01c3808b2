"""Exchange 5xx errors: the client retries with backoff and trading carries on.

For four minutes, 40% of MEXC calls answer ``503 Service Unavailable``. The exchange
client retries each failed attempt with capped exponential backoff, so every retry shows up
as a sibling ``mexc-api-request`` span after an ERROR attempt, and ``api_request_latency_ms``
counts the failures by ``outcome``. The error-ratio alert must notice within seven minutes
(its window plus its ``for``) and clear once the exchange is healthy again; the ledger must
still reconcile.

Copy this module for your own bot: change the faults, the expected alerts and, if your bot
is not the reference one, the runner's targets (see ``pytest_sniper_otel.chaos.runner``).
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault

SCENARIO = Scenario(
    name="exchange_errors",
    title="40% of exchange calls fail with 503 for four minutes",
    faults=[
        fault("exchange.http_error", start="1m", duration="4m", probability=0.4, status=503),
    ],
    # The rule looks at a 5 minute rate and must hold for 2 minutes; with a call every few
    # seconds the error series needs a few scrapes to exist, so allow window + for.
    alerts=[expect_alert("ExchangeApiErrorRatioHigh", within="7m", resolves_within="7m")],
)


def test_exchange_errors(chaos):
    chaos.run(SCENARIO)
