"""One duration grammar: the same text means the same seconds in a fault schedule, a scenario
expectation, an alert rule and both command lines, and bad text is refused the same way."""

from __future__ import annotations

import pytest

from pytest_sniper_otel import SpecError, did_you_mean, parse_duration

GRAMMAR = [
    ("90", 90.0), (90, 90.0), (1.5, 1.5), ("1.5", 1.5), ("250ms", 0.25), ("90s", 90.0),
    ("1.5m", 90.0), ("1m30s", 90.0), ("2h", 7200.0), ("1h30m", 5400.0), ("1d", 86400.0),
    ("-5m", -300.0), (" 5m ", 300.0),
]


@pytest.mark.parametrize(("text", "seconds"), GRAMMAR)
def test_the_grammar(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "1m 30s", "1M", "", "inf", "nan", "1e400", "m"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_duration(text, what="start")
    assert str(raised.value) == (
        f"start must be a number of seconds or a string like '2m', got {text!r} "
        "(units ms, s, m, h, d: 250ms, 90s, 1m30s)"
    )


@pytest.mark.parametrize(("value", "message"), [
    (True, "start must be a number of seconds or a string like '2m', got bool True"),
    (None, "start must be a number of seconds or a string like '2m', got NoneType None"),
    (float("inf"), "start must be a finite number of seconds, got inf"),
    ("9" * 400 + "s", "start must be a finite number of seconds, got '" + "9" * 400 + "s'"),
])
def test_wrong_types_and_infinities(value: object, message: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_duration(value, what="start")  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_every_reader_of_durations_agrees() -> None:
    from pytest_sniper_otel.alerts import rule
    from pytest_sniper_otel.chaos import expect_alert, fault

    spec = fault("redis.outage", start="1m30s", duration="1h30m")
    assert (spec.schedule.start, spec.schedule.duration) == (90.0, 5400.0)
    assert expect_alert("RedisUnavailable", within="1m30s").within == 90.0
    assert rule("Slow", "max(portfolio_drawdown_ratio) > 0.1", for_="1m30s").for_ == 90.0


def test_did_you_mean() -> None:
    assert did_you_mean("sied", ["side", "symbol"]) == "; did you mean 'side'?"
    assert did_you_mean("sied", ["side"], template=" ({})") == " (did you mean 'side'?)"
    assert did_you_mean("zzz", ["side"]) == ""
    assert did_you_mean("order_total", ["orders_total", "order_totals", "x"], n=3) == (
        "; did you mean 'orders_total', 'order_totals'?")
