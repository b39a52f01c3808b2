"""Faults: validation, inject/rollback against the seams, activity records, export path."""

from __future__ import annotations

import json
import threading
from typing import Any

import fakeredis
import pytest
import redis
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SpanExportResult

from pytest_sniper_otel.chaos.export import ExportPipeline, export_pipeline
from pytest_sniper_otel.chaos.faults import FaultError, Schedule, fault
from pytest_sniper_otel.chaos.redis_faults import Eviction
from pytest_sniper_otel.flow.exchange import ApiRequest, ApiResponse, TransportTimeout


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "exchange.http_eror"},
         "unknown fault 'exchange.http_eror'; did you mean 'exchange.http_error'?"),
        ({"name": "redis.outage", "start": "5m", "end": "2m"},
         "schedule ends before it starts: end 120s is not after start 300s"),
        ({"name": "redis.outage", "start": 10, "duration": -1},
         "schedule ends before it starts: duration -1s from start 10s"),
        ({"name": "redis.outage", "probability": 1.5},
         "probability must be within [0, 1], got 1.5"),
        ({"name": "redis.outage", "probability": -0.1},
         "probability must be within [0, 1], got -0.1"),
        ({"name": "exchange.http_error", "status": 404},
         "fault 'exchange.http_error': status must be a 5xx code, got 404"),
        ({"name": "exchange.rate_limit", "retry_afterr": 3},
         "fault 'exchange.rate_limit': unknown parameter(s) retry_afterr "
         "(parameters: endpoints, retry_after)"),
        ({"name": "market.dud_listings", "rate": 0.5},
         "fault 'market.dud_listings': unknown parameter(s) rate (parameters: none)"),
        ({"name": "market.dud_listings", "probability": 2},
         "probability must be within [0, 1], got 2"),
        ({"name": "redis.outage", "start": "soon"},
         "start must be a number of seconds or a string like '2m', got 'soon'"),
    ],
)
def test_bad_fault_input_is_named(kwargs: dict[str, Any], message: str) -> None:
    name = kwargs.pop("name")
    with pytest.raises(FaultError) as info:
        fault(name, **kwargs)
    assert str(info.value).startswith(message)


def test_schedule_parses_durations() -> None:
    s = Schedule.of("1.5m", duration="90s", probability=0.25)
    assert (s.start, s.end, s.probability) == (90.0, 180.0, 0.25)
    assert s.active_at(90.0) and s.active_at(179.9) and not s.active_at(180.0)
    assert Schedule.of(10).end == float("inf")


# -- exchange transport seam ---------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def tick(self, seconds: float) -> None:
        self.t += seconds

    def time(self) -> float:
        return self.t


class _Client:
    def __init__(self) -> None:
        self.clock = _Clock()
        self.calls = 0

        def transport(request: ApiRequest) -> ApiResponse:
            self.calls += 1
            return ApiResponse(200, json.dumps({"code": 0, "data": [
                {"symbol": "AAAUSDT", "sts": 2, "st": 2, "tt": 4}]}).encode())

        self.original = transport
        self.transport: Any = transport


REQ = ApiRequest("GET", "/api/v3/calendar", "calendar")


def test_overlapping_call_faults_stack_and_roll_back_in_any_order() -> None:
    client = _Client()
    limit = fault("exchange.rate_limit", retry_after=7).build(0, 1)
    slow = fault("exchange.latency", latency=2.0, jitter=0.0).build(1, 1)
    slow.inject(client, at=0.0)
    assert client.transport(REQ).status == 200 and client.clock.t == 2.0
    limit.inject(client, at=5.0)
    answer = client.transport(REQ)
    assert answer.status == 429 and answer.headers["Retry-After"] == "7"
    slow.rollback(at=6.0)  # the first one in leaves first: the chain stays for the other
    assert client.transport is not client.original
    limit.rollback(at=8.0)
    assert client.transport is client.original
    assert [a.to_json() for a in limit.records] == [
        {"started": 5.0, "ended": 8.0, "hits": 1, "misses": 0, "clock_started": None,
         "clock_ended": None}]
    assert slow.records[0].hits == 2


def test_probability_is_seeded_and_reproducible() -> None:
    def hits(seed: int) -> list[int]:
        client = _Client()
        f = fault("exchange.http_error", probability=0.3).build(0, seed)
        f.inject(client, at=0.0)
        return [client.transport(REQ).status for _ in range(200)]

    first = hits(7)
    assert first == hits(7) != hits(8)
    assert 30 < first.count(503) < 90


def test_timeout_where_the_server_acted() -> None:
    client = _Client()
    f = fault("exchange.timeout", after=3.0, server_acted=True).build(0, 0)
    f.inject(client, at=0.0)
    with pytest.raises(TransportTimeout):
        client.transport(REQ)
    assert client.calls == 1 and client.clock.t == 3.0


def test_calendar_faults_only_touch_the_calendar() -> None:
    client = _Client()
    dup = fault("exchange.duplicate_calendar").build(0, 0)
    dup.inject(client, at=0.0)
    data = client.transport(REQ).json()["data"]
    assert [(e["symbol"], e["tt"]) for e in data] == [("AAAUSDT", 4), ("AAAUSDT", 1)]
    other = ApiRequest("GET", "/api/v3/ticker/price", "ticker")
    assert client.transport(other).json()["data"] == data[:1]
    assert dup.records[0].hits == 1


def test_dud_listings_need_an_exchange_that_can_call_off_a_launch() -> None:
    duds = fault("market.dud_listings").build(0, 0)
    with pytest.raises(FaultError, match=r"^market.dud_listings: target _Client has no "
                                         r"'called_off'$"):
        duds.inject(_Client(), at=0.0)
    assert not duds.active and duds.records == []


# -- redis ---------------------------------------------------------------------------------
class _Cache:
    def __init__(self) -> None:
        self.client = fakeredis.FakeRedis()
        self.clock = _Clock()


def test_redis_outage_at_the_connection_pool_and_rollback() -> None:
    cache = _Cache()
    cache.client.set("sniper:a", "1")
    outage = fault("redis.outage").build(0, 0)
    outage.inject(cache, at=0.0)
    with pytest.raises(redis.ConnectionError, match="Connection refused"):
        cache.client.get("sniper:a")
    with pytest.raises(redis.ConnectionError):
        pipe = cache.client.pipeline()
        pipe.set("sniper:b", "2")
        pipe.execute()
    outage.rollback(at=1.0)
    assert "get_connection" not in vars(cache.client.connection_pool)
    assert cache.client.get("sniper:a") == b"1"
    assert outage.records[0].hits == 2


def test_redis_latency_and_eviction() -> None:
    cache = _Cache()
    for i in range(100):
        cache.client.set(f"sniper:k{i}", i)
    cache.client.set("other:k", 1)
    lat = fault("redis.latency", latency=0.5, jitter=0.0).build(0, 0)
    lat.inject(cache, at=0.0)
    cache.client.get("sniper:k1")
    assert cache.clock.t == 0.5
    lat.rollback(at=1.0)
    evict = fault("redis.eviction", pattern="sniper:*", probability=0.5).build(0, 3)
    assert isinstance(evict, Eviction)
    evict.inject(cache, at=0.0)
    left = len(list(cache.client.scan_iter("sniper:*")))
    assert 25 < left < 75 and evict.evicted == 100 - left
    flush = fault("redis.eviction", flush=True).build(0, 0)
    flush.inject(cache, at=0.0)
    assert list(cache.client.scan_iter("sniper:*")) == []
    assert cache.client.get("other:k") == b"1"


def test_client_pause_refuses_fakeredis() -> None:
    f = fault("redis.client_pause").build(0, 0)
    with pytest.raises(FaultError, match="needs a real Redis server"):
        f.inject(_Cache(), at=0.0)


# -- model ---------------------------------------------------------------------------------
class _Knobs:
    confidence_drift = 0.0
    inference_slowdown = 1.0
    false_positive_burst = 0.0


class _Model:
    def __init__(self) -> None:
        self.knobs = _Knobs()


def test_model_drift_ramps_and_restores() -> None:
    model = _Model()
    drift = fault("model.confidence_drift", shift=-0.4, ramp=100).build(0, 0)
    drift.inject(model, at=0.0)
    assert model.knobs.confidence_drift == 0.0
    drift.step(model, at=50.0, dt=50.0)
    assert model.knobs.confidence_drift == pytest.approx(-0.2)
    drift.step(model, at=200.0, dt=150.0)
    assert model.knobs.confidence_drift == pytest.approx(-0.4)
    drift.rollback(at=200.0)
    assert model.knobs.confidence_drift == 0.0


# -- telemetry export path -------------------------------------------------------------------
class _Exporter:
    def __init__(self) -> None:
        self.got = 0

    def export(self, items: Any) -> Any:
        self.got += len(items)
        return SpanExportResult.SUCCESS


def _conserved(p: ExportPipeline) -> bool:
    s = p.stats
    return s.accepted["traces"] == (
        s.exported["traces"] + s.dropped_total("traces") + p.queued("traces")
    )


def _spans(n: int) -> None:
    tracer = trace.get_tracer("chaos-test")
    for _ in range(n):
        with tracer.start_as_current_span("work"):
            pass


def test_pipeline_counts_drops_by_reason_and_conserves(telemetry: Any) -> None:
    pipeline = export_pipeline()
    sink = _Exporter()
    pipeline.exporter = sink
    raising = fault("telemetry.exporter_raises").build(0, 0)
    with pipeline.enabled():
        _spans(10)
        pipeline.pump(0.0)
        assert sink.got == 10
        raising.inject(pipeline, at=1.0)
        _spans(5)
        pipeline.pump(1.0)
        raising.rollback(at=2.0)
        assert pipeline.exporter is sink
        overflow = fault("telemetry.queue_overflow", max_queue=4).build(0, 0)
        overflow.inject(pipeline, at=2.0)
        _spans(10)
        assert _conserved(pipeline)
        overflow.rollback(at=3.0)
        pipeline.drain(3.0)
        assert pipeline.open_spans() == []
        assert _conserved(pipeline) and pipeline.queued() == 0
    failed = {"signal": "traces", "reason": "export_failed"}
    assert telemetry.metric("telemetry_dropped_total", failed).value == 5
    full = {"signal": "traces", "reason": "queue_full"}
    assert telemetry.metric("telemetry_dropped_total", full).value == 6
    assert sink.got == 14


def test_hanging_exporter_never_blocks_the_caller(telemetry: Any) -> None:
    pipeline = export_pipeline()
    hang = fault("telemetry.exporter_hangs").build(0, 0)
    with pipeline.enabled():
        old = pipeline.max_queue
        pipeline.max_queue = 50
        try:
            hang.inject(pipeline, at=0.0)
            for step in range(20):
                _spans(10)
                pipeline.pump(float(step))
            assert _conserved(pipeline)
            hang.rollback(at=20.0)
        finally:
            pipeline.max_queue = old
    # One export timed out (a real 200 ms wait) and every later pump saw the stuck worker
    # and dropped instead of waiting: had the caller blocked on the hang, it would not have
    # come back at all.
    s = pipeline.stats
    assert s.dropped[("traces", "export_timeout")] == 10
    assert s.dropped[("traces", "queue_full")] == 200 - 10 - 50
    assert telemetry.metric("telemetry_dropped_total").value == 150


def test_slow_exporter_backs_up_on_simulated_time(telemetry: Any) -> None:
    pipeline = export_pipeline()
    slow = fault("telemetry.exporter_slow", latency=10.0).build(0, 0)
    with pipeline.enabled():
        old = pipeline.max_queue
        pipeline.max_queue = 30
        try:
            slow.inject(pipeline, at=0.0)
            for step in range(20):
                _spans(5)
                pipeline.pump(float(step))
            assert _conserved(pipeline)
        finally:
            slow.rollback(at=20.0)
            pipeline.max_queue = old
    # exports at t=0 (5 spans) and t=10 (the 30 queued); the queue overflowed in between
    assert pipeline.stats.exported["traces"] == 35
    assert pipeline.stats.dropped[("traces", "queue_full")] == 35
    assert pipeline.queued() == 30


class _Gate:
    """A log exporter that holds each export until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.got = 0

    def export(self, items: Any) -> SpanExportResult:
        self.release.wait(30)
        self.got += len(items)
        return SpanExportResult.SUCCESS


def _export_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "sniper-otel-export"}


def test_exports_reuse_an_idle_thread_and_never_queue_behind_a_hung_one() -> None:
    pipeline = ExportPipeline(export_timeout=0.05, log_exporter=_Exporter())
    before = _export_threads()
    with pipeline.enabled():
        for step in range(50):
            pipeline.on_emit(object())
            pipeline.pump(float(step))
    assert pipeline.stats.exported["logs"] == 50
    assert len(_export_threads() - before) == 1
    gate = _Gate()
    pipeline.log_exporter = gate
    with pipeline.enabled():
        pipeline.on_emit(object())
        pipeline.pump(0.0)
        assert pipeline.stats.dropped[("logs", "export_timeout")] == 1
    # a new run while that export still hangs: its exports start at once, on a new thread
    sink = _Exporter()
    pipeline.log_exporter = sink
    try:
        with pipeline.enabled():
            pipeline.on_emit(object())
            pipeline.pump(1.0)
            assert pipeline.stats.exported["logs"] == 1 and sink.got == 1
        assert len(_export_threads() - before) == 2
    finally:
        gate.release.set()


def test_the_default_sink_is_counted_without_a_thread() -> None:
    pipeline = ExportPipeline()
    before = _export_threads()
    with pipeline.enabled():
        for step in range(5):
            pipeline.on_emit(object())
            pipeline.pump(float(step))
    assert pipeline.stats.exported["logs"] == 5 and pipeline.log_exporter.exported == 5
    assert _export_threads() - before == set()
