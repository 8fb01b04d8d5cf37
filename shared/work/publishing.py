"""Publishing to Pub/Sub with a bounded wait: jobs and status events leave the same way."""

from __future__ import annotations

from collections.abc import Mapping

from google.cloud.pubsub_v1 import PublisherClient

from shared.core.calls import bounded_retry
from shared.core.errors import QueueUnavailable
from shared.core.settings import Settings


class BoundedPublisher:
    """Publishes one message and waits for its id at most `PUBLISH_TIMEOUT_SECONDS`, so a dead
    Pub/Sub becomes a prompt `QueueUnavailable` instead of a hung request."""

    def __init__(self, client: PublisherClient, settings: Settings) -> None:
        self._client = client
        self._project = settings.gcp_project
        self._timeout = settings.publish_timeout_seconds
        self._retry = bounded_retry(self._timeout)

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """The message id. Raises `QueueUnavailable`.

        The client retries in the background; our timeout bounds that, so a message reported
        as not published is rarely published later (consumers are idempotent, and a job's
        worker finds its creation failed, or submit sees it claimed, if one is).
        """
        topic_path = self._client.topic_path(self._project, topic)
        try:
            future = self._client.publish(
                topic_path, data, retry=self._retry, timeout=self._timeout, **attributes
            )
            return str(future.result(timeout=self._timeout + 1))
        except Exception as exc:
            raise QueueUnavailable(f"could not publish to {topic}: {type(exc).__name__}") from exc
