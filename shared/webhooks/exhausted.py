"""Where an event goes whose retries ran out: `WEBHOOK_EXHAUSTED_TOPIC`, for an operator.

The message is a status event (what `shared.creations.status_events.StatusEvent` reads) with
what became of the delivery beside it, so it can be read as it is and replayed by publishing
it back to `STATUS_TOPIC` with the attributes it names (docs/webhooks.md, "Operating it"). Every
time in it is RFC 3339 (`2026-12-02T12:00:31Z`), the record's `last_response.at` included.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, Protocol

from google.cloud.pubsub_v1 import PublisherClient

from shared.core.settings import Settings
from shared.webhooks.payload import rfc3339
from shared.work.publishing import BoundedPublisher

__all__ = ["ExhaustedEvents", "PubSubExhaustedEvents"]


class ExhaustedEvents(Protocol):
    def publish(self, message: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        """Publish one given-up event; `QueueUnavailable` (retryable) if it could not be."""
        ...


class PubSubExhaustedEvents:
    def __init__(self, client: PublisherClient, settings: Settings) -> None:
        self._publisher = BoundedPublisher(client, settings)
        self._topic = settings.webhook_exhausted_topic

    def publish(self, message: Mapping[str, Any], attributes: Mapping[str, str]) -> None:
        data = json.dumps(message, separators=(",", ":"), default=_json_value).encode()
        self._publisher.publish(self._topic, data, attributes)


def _json_value(value: object) -> str:
    """What JSON cannot hold as it is: a time (the record's, from Firestore) in RFC 3339,
    anything else as its text."""
    return rfc3339(value) if isinstance(value, dt.datetime) else str(value)
