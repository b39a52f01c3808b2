"""The exchange may lie: impossible numbers and pathological bodies are malformed answers.

A malformed answer is an ERROR span, an ERROR log, ``api_errors_total{error_type="malformed"}``
and the normal retry path; it never becomes a position, and no RecursionError or
OverflowError escapes into a workflow. ``reconcile()`` flags whatever impossible value a
ledger holds anyway.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_sniper_otel.flow import ApiRequest, ApiResponse, BotConfig, MarketConditions, SniperBot
from pytest_sniper_otel.flow.client import (
    ACCOUNT,
    CALENDAR,
    DECIMAL,
    ORDER,
    TICKER,
    TIMESTAMP,
    ExchangeUnavailable,
)
from pytest_sniper_otel.flow.ledger import Outcome

from .flowkit import install, listings

SCHEMAS = {"calendar": CALENDAR, "ticker": TICKER, "order.place": ORDER, "order.status": ORDER,
           "account": ACCOUNT}
DEEP = "[" * 50_000 + "]" * 50_000


def _raw(text: str) -> str:
    """A placeholder that :func:`_dump` turns into ``text`` verbatim (non-standard JSON)."""
    return f"\x00raw:{text}\x00"


def _dump(payload: Any) -> bytes:
    body = json.dumps(payload)
    while "\\u0000raw:" in body:
        start = body.index('"\\u0000raw:')
        end = body.index('\\u0000"', start)
        body = body[:start] + body[start + len('"\\u0000raw:'):end] + body[end + len('\\u0000"'):]
    return body.encode()


# values that no leaf of the given kind may hold; each must be refused as malformed
HOSTILE: dict[Any, list[Any]] = {
    DECIMAL: ["inf", "Infinity", "-Infinity", "NaN", "1e400", "-0.5", "1" * 5000, "12abc", 1.5,
              None, _raw("NaN"), _raw("1e400"), _raw(DEEP)],
    TIMESTAMP: [10**400, -1, 1.5, "1700000000000", True, _raw("Infinity"), _raw("1e400"),
                _raw("9" * 4000)],
    int: [10**400, -(10**30), 2.5, "3", False, None, _raw("NaN"), _raw(DEEP)],
    str: [12, None, [], {"nested": [[[]]]}, _raw(DEEP)],
    bool: ["true", 1, None],
}
BODIES = [DEEP, '{"a":' * 50_000, "1" * 5000, "NaN", "Infinity", "1e400", '"\udcff"', "\xff\xfe",
          "[" + "1e400," * 100 + "1]", "{}"]


Path = tuple[Any, ...]


def _leaves(value: Any, schema: Any, path: Path = ()) -> list[tuple[Path, Any]]:
    """(path, schema) of every field of ``value`` its schema describes, containers included."""
    found: list[tuple[Path, Any]] = [(path, schema)] if path else []
    if isinstance(schema, list) and isinstance(value, list):
        for i, item in enumerate(value):
            found += _leaves(item, schema[0], (*path, i))
    elif isinstance(schema, dict) and isinstance(value, dict):
        for key, sub in schema.items():
            if key in value:
                found += _leaves(value[key], sub, (*path, key))
    return found


@dataclass(frozen=True)
class Mutation:
    """One lie: replace, or delete, the field ``pick`` selects, or replace the whole body."""

    kind: str  # "replace" | "delete" | "body"
    pick: int
    value: int

    def apply(self, payload: Any, schema: Any) -> bytes:
        if self.kind == "body":
            return BODIES[self.value % len(BODIES)].encode("utf-8", "surrogatepass")
        path, leaf = _leaves(payload, schema)[self.pick % len(_leaves(payload, schema))]
        parent = payload
        for step in path[:-1]:
            parent = parent[step]
        if self.kind == "delete" and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            options = HOSTILE.get(leaf, [None, "x", _raw(DEEP)]) if not isinstance(
                leaf, list | dict) else [None, "x", 3, _raw(DEEP)]
            parent[path[-1]] = options[self.value % len(options)]
        return _dump(payload)


class Liar:
    """The real exchange, whose ``nth`` answer of an endpoint is mutated as scheduled."""

    def __init__(self, inner: Callable[[ApiRequest], ApiResponse],
                 schedule: dict[tuple[str, int], Mutation]) -> None:
        self.inner, self.schedule = inner, schedule
        self.calls: Counter[str] = Counter()
        self.lies: Counter[str] = Counter()

    def __call__(self, request: ApiRequest) -> ApiResponse:
        response = self.inner(request)
        n = self.calls[request.endpoint]
        self.calls[request.endpoint] += 1
        mutation = self.schedule.get((request.endpoint, n))
        if mutation is None or response.status != 200:
            return response
        self.lies[request.endpoint] += 1
        body = mutation.apply(response.json(), SCHEMAS[request.endpoint])
        return ApiResponse(200, body, response.headers)


def hostile_config() -> BotConfig:
    # three genuine listings inside the first minutes, a calm market: any discrepancy is a lie
    # (a short calendar TTL: every discovery asks the exchange)
    return BotConfig(listings=listings(60.0, 120.0, 200.0), calendar_ttl=5.0,
                     conditions=MarketConditions(partial_fill_rate=0.3, reject_rate=0.0))


def lie_once(faults: Any, fields: dict[str, Any]) -> Callable[[ApiRequest], ApiResponse]:
    """The real answer with ``fields`` overwritten (raw values allowed)."""

    def action(request: ApiRequest) -> ApiResponse:
        response = faults.inner(request)
        return ApiResponse(200, _dump({**response.json(), **fields}), response.headers)

    return action


def malformed_count(telemetry: Any) -> int:
    snapshot = telemetry.metrics_snapshot()
    return int(sum(p.value for p in snapshot.points("api_errors_total")
                   if p.attributes.get("error_type") == "malformed"))


def assert_every_lie_counted(telemetry: Any, lies: int) -> None:
    assert malformed_count(telemetry) == lies
    rejected = [r for r in telemetry.logs if r.body == "malformed exchange response rejected"]
    assert len(rejected) == lies and all(r.severity_text == "ERROR" for r in rejected)
    assert len(telemetry.find_spans("mexc-api-request", attributes={"error.type": "malformed"},
                                    status="ERROR")) == lies


@pytest.mark.parametrize("value", ["inf", "Infinity", "NaN", "1e400", "-3", _raw("1e400"),
                                   _raw("NaN"), _raw("Infinity"), _raw(DEEP)])
def test_an_impossible_executed_quantity_is_malformed_not_a_position(
    value: Any, telemetry: Any, clock: Any
) -> None:
    bot = SniperBot.create(seed=3, clock=clock, config=hostile_config())
    try:
        faults = install(bot)
        # every answer about an order lies once, then the truth arrives on the retry
        for endpoint in ("order.place", "order.status"):
            faults.next(endpoint, lie_once(faults, {"executedQty": value}))
        bot.run_for(240)
        bot.settle()
        assert all(math.isfinite(p.qty) for p in bot.positions.values())
        assert bot.reconcile() == []
        assert bot.summary()["workflow_errors"] == 0
        assert_every_lie_counted(telemetry, 2)
    finally:
        bot.close()


@pytest.mark.parametrize("body", BODIES, ids=lambda b: f"{b[:12]!r}x{len(b)}")
def test_a_pathological_body_is_retried_as_malformed(body: str, telemetry: Any, clock: Any) -> None:
    bot = SniperBot.create(seed=3, clock=clock, config=hostile_config())
    try:
        install(bot).next("calendar", lambda r: ApiResponse(200, body.encode("utf-8",
                                                                             "surrogatepass")))
        bot.run_for(60)
        assert bot.summary()["workflow_errors"] == 0
        assert_every_lie_counted(telemetry, 1)
        # the retry got the truth: discovery went on
        assert telemetry.find_spans("fetch-calendar-data", status="UNSET")
    finally:
        bot.close()


def test_a_calendar_timestamp_beyond_any_date_is_malformed(telemetry: Any, clock: Any) -> None:
    bot = SniperBot.create(seed=3, clock=clock, config=hostile_config())
    try:
        faults = install(bot)
        mangle = faults.mangle(lambda p: {**p, "data": [{**e, "firstOpenTime": 10**400}
                                                        for e in p["data"]]})
        faults.always("calendar", mangle)
        with pytest.raises(ExchangeUnavailable, match="expected epoch milliseconds, got an "
                                                      "integer of 401 digits"):
            bot.client.get_calendar()
        faults.always("calendar", None)
        bot.run_for(240)
        assert bot.summary()["workflow_errors"] == 0
    finally:
        bot.close()


def test_an_answer_filling_more_than_was_ordered_is_malformed(telemetry: Any, clock: Any) -> None:
    bot = SniperBot.create(seed=3, clock=clock, config=hostile_config())
    try:
        faults = install(bot)
        faults.next("order.place", lie_once(faults, {"cummulativeQuoteQty": "99999999"}))
        bot.run_for(240)
        bot.settle()
        assert bot.reconcile() == []
        assert malformed_count(telemetry) == 1
    finally:
        bot.close()


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("filled_qty", math.inf, "filled_qty is inf"),
    ("filled_quote", math.nan, "filled_quote is nan"),
    ("filled_qty", -1.0, "filled_qty is -1.0"),
    ("filled_quote", 1e12, "spent 1e+12 of an order for"),
])
def test_reconcile_flags_non_finite_and_impossible_ledger_values(
    field: str, value: float, problem: str, sniper_bot: SniperBot
) -> None:
    sniper_bot.run_for(600)
    sniper_bot.settle()
    assert sniper_bot.reconcile() == []
    intent = next(i for i in sniper_bot.ledger
                  if i.side == "BUY" and i.outcome == Outcome.FILLED)
    setattr(intent, field, value)
    problems = sniper_bot.reconcile()
    assert any(f"{intent.client_order_id}: impossible ledger value: {problem}" in p
               for p in problems), problems


# -- the property: any schedule of lies, the whole bot for four simulated minutes ----------------
mutations = st.builds(Mutation, kind=st.sampled_from(["replace", "replace", "delete", "body"]),
                      pick=st.integers(0, 200), value=st.integers(0, 50))
schedules = st.dictionaries(
    st.one_of(st.tuples(st.sampled_from(["calendar", "ticker", "account"]), st.integers(0, 30)),
              st.tuples(st.sampled_from(["order.place", "order.status"]), st.integers(0, 8))),
    mutations, min_size=1, max_size=25,
).map(lambda s: {("calendar", 0): Mutation("body", 0, 0), **s})


@pytest.mark.slow
@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schedule=schedules, seed=st.integers(0, 2**16), feed_down=st.booleans())
def test_any_schedule_of_lies_is_counted_and_the_ledger_reconciles(
    schedule: dict[tuple[str, int], Mutation], seed: int, feed_down: bool, telemetry: Any,
    clock: Any,
) -> None:
    telemetry.clear()
    bot = SniperBot.create(seed=seed, clock=clock, config=hostile_config())
    try:
        if feed_down:  # positions are priced over REST: the ticker answers too
            bot.feed.disconnect("test", down_for=3600.0)
        liar = Liar(bot.client.transport, schedule)
        bot.client.transport = liar
        bot.run_for(240)
        bot.settle()
        assert bot.ledger.pending() == []
        assert bot.reconcile() == []
        assert all(math.isfinite(p.qty) and p.qty >= 0 for p in bot.positions.values())
        assert bot.summary()["workflow_errors"] == 0
        assert_every_lie_counted(telemetry, sum(liar.lies.values()))
    finally:
        bot.close()
