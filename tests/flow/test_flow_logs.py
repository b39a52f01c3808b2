"""Structured logs: correlated with the flow's spans, carrying context, never secrets."""

from __future__ import annotations

import re

import pytest

from pytest_sniper_otel import Telemetry
from pytest_sniper_otel.flow import ApiRequest, ApiResponse, SniperBot
from pytest_sniper_otel.flow.config import default_credentials


@pytest.mark.sniper_otel_bot(seed=2)
def test_every_log_record_is_correlated_with_a_span_of_the_flow(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(600)
    assert len(telemetry.logs) > 10
    telemetry.assert_logs_correlated()


@pytest.mark.sniper_otel_bot(seed=2)
def test_each_outcome_has_a_log_record_inside_its_execution_span(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    sniper_bot.run_for(600)
    sniper_bot.settle()
    assert len(sniper_bot.ledger) > 0
    spans_by_id = {s.context.span_id: s for s in telemetry.spans}
    for intent in sniper_bot.ledger:
        records = [r for r in telemetry.logs
                   if r.attributes.get("client_order_id") == intent.client_order_id
                   and r.attributes.get("outcome") == intent.outcome]
        assert len(records) == 1, intent
        record = records[0]
        assert record.body == f"order {intent.outcome}"
        assert record.attributes["execution_id"] == intent.execution_id
        assert record.attributes["symbol"] == intent.symbol
        assert record.attributes["component"] == "ExecutionAgent"
        assert record.attributes["agent_id"] == "sniper-2/execution"
        # the record's span is the execution flow of this order, or one of its children
        flow = spans_by_id[record.span_id]
        if flow.name != "trading-execution-flow":
            assert flow.parent is not None, flow.name
            flow = spans_by_id[flow.parent.span_id]
        assert flow.name == "trading-execution-flow"
        assert (flow.attributes or {}).get("order.client_order_id") == intent.client_order_id
        assert record.trace_id == flow.context.trace_id


@pytest.mark.sniper_otel_bot(seed=3)
def test_no_api_key_secret_or_signature_reaches_telemetry(
    sniper_bot: SniperBot, telemetry: Telemetry
) -> None:
    signatures: list[str] = []
    inner = sniper_bot.client.transport

    def recording(request: ApiRequest) -> ApiResponse:
        if "signature" in request.params:
            signatures.append(request.params["signature"])
        return inner(request)

    sniper_bot.client.transport = recording
    sniper_bot.run_for(600)
    credentials = default_credentials(3)
    assert len(signatures) > 5  # the bot did sign private calls, and they were accepted
    assert sniper_bot.client.failures == 0
    telemetry.assert_no_secrets(
        credentials.api_key, credentials.api_secret, *signatures,
        re.compile(r"signature", re.IGNORECASE), re.compile(r"\b[0-9a-f]{64}\b"),
    )
    assert "***" in repr(credentials) and credentials.api_secret not in repr(credentials)
