"""The job queue: the message that says which creation to make, publishing it, receiving it."""

from __future__ import annotations

import json
from typing import Protocol

from cloudevents.http import CloudEvent
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud.pubsub_v1 import PublisherClient
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.core.errors import QueueUnavailable
from shared.core.events import MalformedEvent, pubsub_message
from shared.core.settings import Settings


class Job(BaseModel):
    """The body of a work message: which creation to make. Everything else is in Firestore."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    creation_id: str
    user_id: str
    type: str


class JobPublisher(Protocol):
    def publish(self, job: Job, *, topic: str) -> str:
        """Enqueue `job` on `topic`; return the message id. Raises `QueueUnavailable`."""
        ...


def topic_for(kind: str, settings: Settings) -> str:
    return settings.stitch_topic if kind == "reel" else settings.generate_topic


class PubSubJobPublisher:
    """Publishes jobs with a bounded wait, so a dead queue becomes a prompt `503`."""

    def __init__(self, client: PublisherClient, settings: Settings) -> None:
        self._client = client
        self._project = settings.gcp_project
        self._timeout = settings.publish_timeout_seconds

    def publish(self, job: Job, *, topic: str) -> str:
        topic_path = self._client.topic_path(self._project, topic)
        data = json.dumps(job.model_dump()).encode()
        # The client retries transient errors in the background; bound that by our own timeout
        # so a message we report as not enqueued is not published later (and if it were, the
        # worker would find the creation already failed and skip it).
        retry = Retry(
            predicate=lambda exc: isinstance(exc, gexc.ServiceUnavailable | gexc.DeadlineExceeded),
            initial=0.05,
            maximum=1.0,
            timeout=self._timeout,
        )
        try:
            future = self._client.publish(
                topic_path,
                data,
                retry=retry,
                timeout=self._timeout,
                creation_id=job.creation_id,
                type=job.type,
            )
            return str(future.result(timeout=self._timeout + 1))
        except Exception as exc:
            raise QueueUnavailable(
                f"the job could not be enqueued on {topic}: {type(exc).__name__}"
            ) from exc


def job_from_event(event: CloudEvent) -> Job:
    """The job a work message carries."""
    message = pubsub_message(event)
    try:
        return Job.model_validate(json.loads(message.data))
    except (ValueError, ValidationError) as exc:
        raise MalformedEvent(f"the message is not a job: {exc}") from None
