"""Where an event goes whose retries ran out: `WEBHOOK_EXHAUSTED_TOPIC`, for an operator.

The message is a status event (what `shared.creations.status_events.StatusEvent` reads) with
what became of the delivery beside it, so it can be read as it is and replayed by publishing
it back to `STATUS_TOPIC` with the attributes it names (docs/webhooks.md, "Operating it").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from google.cloud.pubsub_v1 import PublisherClient

from shared.core.settings import Settings
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
        data = json.dumps(message, separators=(",", ":"), default=str).encode()
        self._publisher.publish(self._topic, data, attributes)
