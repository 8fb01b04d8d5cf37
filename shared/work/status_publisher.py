"""Announcing status moves on `STATUS_TOPIC` (see `shared.creations.status_events`)."""

from __future__ import annotations

from google.cloud.pubsub_v1 import PublisherClient

from shared.core import tracing
from shared.core.errors import QueueUnavailable
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.status_events import StatusEvent
from shared.work.publishing import BoundedPublisher

logger = get_logger(__name__)


class PubSubStatusAnnouncer:
    """Publishes status events; a failure is logged and answered False, never raised: the
    move it announces is committed already, and callers decide what a lost one costs them."""

    def __init__(self, client: PublisherClient, settings: Settings) -> None:
        self._publisher = BoundedPublisher(client, settings)
        self._topic = settings.status_topic

    def announce(self, event: StatusEvent) -> bool:
        try:
            trace = tracing.from_id(event.trace) or tracing.current()
            attributes = event.attributes() | tracing.attributes(trace)
            self._publisher.publish(self._topic, event.encode(), attributes)
        except QueueUnavailable as exc:
            logger.warning(
                f"status event not published: {exc.message}",
                extra=log_fields(creation_id=event.creation_id, status=event.status),
            )
            return False
        return True
