"""Captured OpenTelemetry log records, and the stdlib ``logging`` bridge.

The SDK's logs API is still underscore-private (``opentelemetry.sdk._logs``); every import
of it lives in this module so that a rename upstream touches one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor


@dataclass(frozen=True)
class LogRecordView:
    """One OTel log record of this test. ``trace_id``/``span_id`` are 0 when uncorrelated."""

    body: Any
    severity_text: str
    severity_number: int
    trace_id: int
    span_id: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    logger_name: str = ""
    timestamp: int = 0

    @property
    def correlated(self) -> bool:
        return bool(self.trace_id and self.span_id)

    def describe(self) -> str:
        where = (
            f"trace={self.trace_id:032x} span={self.span_id:016x}"
            if self.correlated
            else "uncorrelated"
        )
        return f"{self.severity_text:<5} {self.logger_name}: {self.body} [{where}]"


def view_of(record: Any) -> LogRecordView:
    """A :class:`LogRecordView` of an SDK ``ReadWriteLogRecord``/``ReadableLogRecord``."""
    lr = record.log_record
    scope = record.instrumentation_scope
    attrs = dict(lr.attributes or {})
    severity = lr.severity_number
    return LogRecordView(
        body=lr.body,
        severity_text=lr.severity_text or "",
        severity_number=int(severity.value) if severity is not None else 0,
        trace_id=lr.trace_id or 0,
        span_id=lr.span_id or 0,
        attributes=attrs,
        logger_name=str(attrs.get("logger.name") or (scope.name if scope is not None else "")),
        timestamp=lr.timestamp or lr.observed_timestamp or 0,
    )


def new_logger_provider() -> LoggerProvider:
    from opentelemetry.sdk._logs import LoggerProvider

    return LoggerProvider()


def routing_processor(sink: Any) -> LogRecordProcessor:
    """A processor that hands each emitted record to ``sink(record)``; never raises."""
    from opentelemetry.sdk._logs import LogRecordProcessor

    class _Router(LogRecordProcessor):
        def on_emit(self, log_record: Any) -> None:
            sink(log_record)

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return _Router()


class _BridgeFilter(logging.Filter):
    """What the bridge leaves out (one filter: it runs for every record).

    * The SDK's own troubles, reported through stdlib logging: bridging those back into
      OTel would capture SDK noise as the test's logs (and can recurse).
    * A record that another OTel logging handler on its way up the logger tree already
      sends to the same provider: an app that bridged stdlib logging itself would otherwise
      see every record twice.
    * Every record while ``active()`` says no (no capture window open).
    """

    def __init__(
        self, provider: object, ours: logging.Handler, active: Callable[[], bool] | None
    ) -> None:
        super().__init__()
        self._provider = provider
        self._ours = ours
        self._active = active

    def filter(self, record: logging.LogRecord) -> bool:
        if self._active is not None and not self._active():
            return False
        name = record.name
        if name.startswith(("opentelemetry", "pytest_sniper_otel._internal")):
            return False
        # The registry read directly: logging.getLogger() takes logging's module lock.
        logger: Any = logging.Logger.manager.loggerDict.get(name)
        if not isinstance(logger, logging.Logger):
            logger = logging.getLogger(name)
        provider, ours = self._provider, self._ours
        while logger is not None:
            for handler in logger.handlers:
                if handler is ours:
                    continue
                # Both OTel LoggingHandlers (the SDK's and instrumentation-logging's) keep
                # their provider in _logger_provider, no public accessor exists; a wrapper
                # (logfire's proxy) holds the SDK provider in .provider. Read from the
                # instance's dict: a getattr default on every other handler costs an
                # AttributeError each.
                target = getattr(handler, "__dict__", _NO_ATTRIBUTES).get("_logger_provider")
                if (
                    target is not None
                    and (target is provider or getattr(target, "provider", None) is provider)
                    and record.levelno >= handler.level
                ):
                    return False
            logger = logger.parent if logger.propagate else None
        return True


_NO_ATTRIBUTES: dict[str, Any] = {}


def bridge_handler(
    provider: LoggerProvider,
    level: int = logging.NOTSET,
    *,
    active: Callable[[], bool] | None = None,
) -> logging.Handler:
    """The stdlib -> OTel handler of opentelemetry-instrumentation-logging (not the deprecated
    SDK one); it stamps the active span's trace_id/span_id on each record. Records below
    ``level`` are not bridged, whatever the root logger's level is, nor records another
    OTel handler already sends to ``provider``, nor any record while ``active()`` (when
    given) returns False."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    handler = LoggingHandler(level=level, logger_provider=provider)
    handler.addFilter(_BridgeFilter(provider, handler, active))
    return handler
