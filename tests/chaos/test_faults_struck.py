"""The ``faults_struck`` check: a fault that never strikes fails its scenario, saying why,
unless its schedule says ``may_miss``; and each fault counts what it actually did."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_sniper_otel.chaos import Scenario, fault, run_scenario
from pytest_sniper_otel.chaos.checks import CheckResult
from pytest_sniper_otel.chaos.faults import FaultSpec
from pytest_sniper_otel.chaos.result import ScenarioRun
from pytest_sniper_otel.flow.exchange import ApiRequest, ApiResponse


def _scenario(*faults: FaultSpec, **overrides: Any) -> Scenario:
    fields: dict[str, Any] = {"name": "t", "title": "test", "faults": list(faults),
                              "warmup": 10.0, "duration": 60.0, "recovery": 10.0,
                              "baseline": False}
    fields.update(overrides)
    return Scenario(**fields)


def _struck(run: ScenarioRun) -> CheckResult:
    (check,) = [c for c in run.checks if c.name == "faults_struck"]
    return check


def test_a_fault_on_a_path_without_traffic_fails_the_scenario() -> None:
    # "contracts" is a real endpoint, but the bot never calls it
    run = run_scenario(_scenario(
        fault("exchange.http_error", start=10, duration=30, endpoints=("contracts",))), seed=0)
    assert not run.ok and [c.name for c in run.broken] == ["faults_struck"]
    assert _struck(run).detail == (
        "exchange.http_error(endpoints=('contracts',), status=503) +10s..+40s never struck: "
        "0 occurrences seen, its target had no traffic on that path while it was active")
    assert run.to_json()["verification"][-1] == {
        "check": "faults_struck", "held": False, "detail": _struck(run).detail, "trace_ids": []}
    assert "  faults_struck: exchange.http_error(endpoints=('contracts',), status=503) " \
        "+10s..+40s never struck: 0 occurrences" in run.failure_message()


def test_a_probability_that_never_comes_up_fails_the_scenario() -> None:
    run = run_scenario(_scenario(
        fault("redis.outage", start=10, duration=30, probability=1e-6)), seed=0)
    assert [c.name for c in run.broken] == ["faults_struck"]
    assert _struck(run).detail == (
        "redis.outage() +10s..+40s p=1e-06 never struck: 10 occurrences seen, the "
        "probability 1e-06 never came up")


def test_may_miss_lets_a_fault_that_never_struck_pass_and_says_so() -> None:
    run = run_scenario(_scenario(
        fault("redis.outage", start=10, duration=30, probability=1e-6, may_miss=True),
        fault("redis.latency", start=10, duration=30)), seed=0)
    assert run.ok, run.failure_message()
    detail = _struck(run).detail
    assert detail.startswith("1 of 2 faults struck: redis.latency x")
    assert detail.endswith("; allowed to miss (may_miss): redis.outage() +10s..+40s p=1e-06 "
                           "may_miss never struck: 10 occurrences seen, the probability 1e-06 "
                           "never came up")
    assert run.to_json()["faults"][0]["schedule"]["may_miss"] is True
    assert repr(run.scenario.faults[0]) == (
        "fault('redis.outage', start=10, duration=30, probability=1e-06, may_miss=True)")


def test_a_scenario_without_faults_has_nothing_to_strike() -> None:
    run = run_scenario(_scenario(), seed=0)
    assert _struck(run) == CheckResult("faults_struck", True, "no faults")


def test_may_miss_must_be_a_bool() -> None:
    from pytest_sniper_otel.chaos.faults import FaultError

    with pytest.raises(FaultError, match="may_miss must be True or False, got 'yes'"):
        fault("redis.outage", may_miss="yes")  # type: ignore[arg-type]


def test_a_flush_counts_every_key_it_evicted() -> None:
    run = run_scenario(_scenario(fault("redis.eviction", start=10, duration=30, flush=True)),
                       seed=0)
    assert run.ok, run.failure_message()
    evicted = run.faults[0].evicted  # type: ignore[attr-defined]
    assert evicted > 0 and run.faults[0].total_hits() == evicted


def _faulty(spec: FaultSpec, answers: list[ApiResponse]) -> tuple[Any, Any]:
    class Client:
        clock = None

        def transport(self, request: ApiRequest) -> ApiResponse:
            return answers.pop(0)

    client = Client()
    f = spec.build(0, 0)
    f.inject(client, at=0.0)
    return f, client


CALENDAR = ApiRequest("GET", "/api/operation/new_coin_calendar", "calendar")
LISTED = ApiResponse(200, json.dumps({"data": [{"vcoinName": "A", "sts": 2}]}).encode())
DOWN = ApiResponse(503, b'{"code": 503}')


def test_body_faults_do_not_count_an_error_answer_they_cannot_corrupt() -> None:
    for name in ("exchange.malformed", "exchange.duplicate_calendar"):
        f, client = _faulty(fault(name, endpoints=("calendar",)), [DOWN, LISTED])
        assert client.transport(CALENDAR).status == 503
        assert (f.total_hits(), f.total_misses()) == (0, 0), name
        client.transport(CALENDAR)
        assert f.total_hits() == 1, name


def test_a_stale_calendar_counts_only_the_answers_it_replays() -> None:
    f, client = _faulty(fault("exchange.stale_calendar"), [LISTED, DOWN])
    client.transport(CALENDAR)
    assert f.total_hits() == 0  # the first answer is fresh
    assert client.transport(CALENDAR) is not None and f.total_hits() == 1


def test_under_pytest_a_fault_that_never_struck_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
from pytest_sniper_otel.chaos import Scenario, fault

QUIET = Scenario(name="quiet", title="t", baseline=False, warmup=10.0, duration=60.0,
                 recovery=10.0, faults=[fault("exchange.timeout", start=10, duration=30,
                                              endpoints=("currencies",))])


def test_quiet(chaos):
    chaos.run(QUIET)
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "E*AssertionError: chaos scenario 'quiet' (seed 0) broke:",
        "E*  faults_struck: exchange.timeout(endpoints=('currencies',), after=5.0, "
        "server_acted=False) +10s..+40s never struck: 0 occurrences seen, its target had no "
        "traffic on that path while it was active",
    ])


def test_a_fault_added_in_a_test_that_never_struck_errors_at_teardown(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("""
from pytest_sniper_otel.chaos import fault
from pytest_sniper_otel.flow.exchange import ApiRequest, ApiResponse

TICKER = ApiRequest("GET", "/api/v3/ticker/price", "ticker")


class Client:
    def __init__(self, clock):
        self.clock = clock
        self.transport = lambda request: ApiResponse(200, b'{"price": "1"}')

    def poll(self, dt):
        self.transport(TICKER)
        self.clock.tick(dt)


def test_wrong_endpoint(chaos, clock):
    client = Client(clock)
    chaos.bind(exchange=client)
    chaos.add(fault("exchange.rate_limit", start=10, duration=20, endpoints=("account",)))
    chaos.advance(60, step=1.0, run=client.poll)


def test_allowed_to_miss(chaos, clock):
    client = Client(clock)
    chaos.bind(exchange=client)
    chaos.add(fault("exchange.rate_limit", start=10, duration=20, probability=1e-9,
                    may_miss=True))
    chaos.advance(60, step=1.0, run=client.poll)


def test_struck(chaos, clock):
    client = Client(clock)
    chaos.bind(exchange=client)
    chaos.add(fault("exchange.rate_limit", start=10, duration=20))
    chaos.advance(60, step=1.0, run=client.poll)
""")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_wrong_endpoint*",
        "E*FaultError: chaos fault(s) of this test tested nothing (give the "
        "schedule may_miss=True if that is expected): exchange.rate_limit(endpoints="
        "('account',), retry_after=2.0) +10s..+30s never struck: 0 occurrences seen, its "
        "target had no traffic on that path while it was active",
    ])
