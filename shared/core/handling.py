"""What becomes of an event when its handler fails: the one ack-or-redeliver policy.

A handler that returns normally acks the event; one that raises gets it redelivered
(functions-framework answers 500; Pub/Sub and Eventarc then retry with backoff). So a
permanent problem is logged and swallowed, and a transient one re-raised.

Each event is handled under the trace it carries (`shared.core.tracing`): a Pub/Sub message's
`traceparent` attribute. Each ends with a
line saying how it ended and how long it took (at DEBUG when it ended well).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cloudevents.http import CloudEvent

from shared.core import tracing
from shared.core.calls import TRANSIENT_ERRORS
from shared.core.errors import PermanentError, RetryableError
from shared.core.events import PUBSUB_MESSAGE_PUBLISHED
from shared.core.log import get_logger, log_fields

logger = get_logger(__name__)

F = TypeVar("F", bound=Callable[[CloudEvent], None])


def event_handler(function: F) -> F:
    """Apply the retry policy: permanent errors ack, transient ones redeliver."""

    @functools.wraps(function)
    def wrapper(event: CloudEvent) -> None:
        fields: dict[str, Any] = {"event_id": event["id"], "event_type": event["type"]}
        started = time.monotonic()

        def took() -> dict[str, Any]:
            return {**fields, "duration_ms": round((time.monotonic() - started) * 1000, 1)}

        with tracing.bound(trace_of(event)):
            try:
                function(event)
            except PermanentError as exc:
                logger.error(
                    f"event dropped: {exc.message}",
                    extra=log_fields(**took(), error_code=exc.code),
                )
            except (RetryableError, *TRANSIENT_ERRORS) as exc:
                logger.warning(
                    f"event will be retried: {exc}",
                    extra=log_fields(**took(), error=type(exc).__name__),
                )
                raise
            except Exception:
                logger.exception(
                    "event failed unexpectedly; it will be retried", extra=log_fields(**took())
                )
                raise
            else:
                # Debug: an event that ends well has said what it did (and one with nothing to
                # do says why, in one line: docs/contract.md).
                logger.debug("event handled", extra=log_fields(**took()))

    return wrapper  # type: ignore[return-value]


def trace_of(event: CloudEvent) -> tracing.Trace | None:
    """The trace an event carries, if any: read leniently (a malformed event is the handler's
    to refuse, with its own log line, under no trace)."""
    try:
        if event["type"] == PUBSUB_MESSAGE_PUBLISHED:
            data = event.data
            message = data.get("message") if isinstance(data, dict) else None
            found = message.get("attributes") if isinstance(message, dict) else None
            return tracing.from_attributes(found) if isinstance(found, dict) else None
    except Exception:  # not readable: the handler says why
        return None
    return None
