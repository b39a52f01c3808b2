"""Rate limiting: MEXC answers 429 with ``Retry-After`` and the client waits as told.

For five minutes 90% of calls are rejected with ``429 Too Many Requests`` and
``Retry-After: 3``. The client honours the header (on the simulated clock), retries as
sibling spans, and ``api_request_latency_ms{outcome="rate_limited"}`` feeds the
``ExchangeRateLimited`` alert, which must fire within three minutes and clear afterwards.
"""

from pytest_sniper_otel.chaos import Scenario, expect_alert, fault


def _calendar_every_poll(config):
    # Every discovery poll (30 s) asks the exchange instead of every other one: about ten
    # calendar calls fall in the fault window whatever the seed's calendar, where a quiet
    # seed made four or five and a few unlucky draws could leave the alert unfed.
    config.calendar_ttl = 20.0

SCENARIO = Scenario(
    name="exchange_rate_limit",
    title="90% of exchange calls get 429 Retry-After: 3 for five minutes",
    # the rule wants more than 3 rejections a minute: a quiet bot makes about 2 calls a
    # minute, and each retry of a rejected call is rejected again 9 times in 10
    faults=[fault("exchange.rate_limit", start="1m", duration="5m", probability=0.9,
                  retry_after=3)],
    configure=_calendar_every_poll,
    alerts=[expect_alert("ExchangeRateLimited", within="4m", resolves_within="5m")],
)


def test_exchange_rate_limit(chaos):
    run = chaos.run(SCENARIO)
    # the client waited as told: each rate-limited attempt was followed by its retry
    assert run.faults[0].total_hits() > 0
