"""What becomes of an event when its handler fails: the one ack-or-redeliver policy.

A handler that returns normally acks the event; one that raises gets it redelivered
(functions-framework answers 500; Pub/Sub and Eventarc then retry with backoff). So a
permanent problem is logged and swallowed, and a transient one re-raised.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from cloudevents.http import CloudEvent

from shared.core.calls import TRANSIENT_ERRORS
from shared.core.errors import PermanentError, RetryableError
from shared.core.log import get_logger, log_fields

logger = get_logger(__name__)

F = TypeVar("F", bound=Callable[[CloudEvent], None])


def event_handler(function: F) -> F:
    """Apply the retry policy: permanent errors ack, transient ones redeliver."""

    @functools.wraps(function)
    def wrapper(event: CloudEvent) -> None:
        fields = {"event_id": event["id"], "event_type": event["type"]}
        try:
            function(event)
        except PermanentError as exc:
            logger.error(
                f"event dropped: {exc.message}",
                extra=log_fields(**fields, error_code=exc.code),
            )
        except (RetryableError, *TRANSIENT_ERRORS) as exc:
            logger.warning(
                f"event will be retried: {exc}",
                extra=log_fields(**fields, error=type(exc).__name__),
            )
            raise
        except Exception:
            logger.exception(
                "event failed unexpectedly; it will be retried", extra=log_fields(**fields)
            )
            raise

    return wrapper  # type: ignore[return-value]
