"""The job queue: a message naming one creation to make, how it is published, how it is read.

A job carries only `Job` (creation id, user id, type); everything else is in the creation's
document, which the worker claims before acting. Images and videos go to `GENERATE_TOPIC`,
reels to `STITCH_TOPIC`. Its attributes repeat the creation id and type, and carry the trace
bound at publish (`traceparent`, see `shared.core.tracing`), which
`shared.core.handling.event_handler` binds again for the worker.
"""

from __future__ import annotations

import json
from typing import Final, Protocol

from cloudevents.http import CloudEvent
from google.cloud.pubsub_v1 import PublisherClient

from shared.core import tracing
from shared.core.errors import QueueUnavailable
from shared.core.events import PubSubMessage, json_model_in, pubsub_message
from shared.core.settings import Settings
from shared.creations.model import Job
from shared.work.publishing import BoundedPublisher

# A job is well under a kilobyte (three short strings); a message far bigger is not one, and
# is refused before it is parsed.
MAX_JOB_BYTES: Final = 4096


class JobPublisher(Protocol):
    def publish(self, job: Job, *, topic: str) -> str:
        """Enqueue `job` on `topic`; return the message id. Raises `QueueUnavailable`."""
        ...


def topic_for(creation_type: str, settings: Settings) -> str:
    return settings.stitch_topic if creation_type == "reel" else settings.generate_topic


class PubSubJobPublisher:
    """Publishes jobs with a bounded wait, so a dead queue becomes a prompt `503`."""

    def __init__(self, client: PublisherClient, settings: Settings) -> None:
        self._publisher = BoundedPublisher(client, settings)

    def publish(self, job: Job, *, topic: str) -> str:
        # Defaults left out: a job of a creation without a webhook is the three ids it was.
        data = json.dumps(job.model_dump(mode="json", exclude_defaults=True)).encode()
        try:
            return self._publisher.publish(
                topic,
                data,
                {"creation_id": job.creation_id, "type": job.type, **tracing.attributes()},
            )
        except QueueUnavailable as exc:
            cause = type(exc.__cause__ or exc).__name__
            raise QueueUnavailable(f"the job could not be enqueued on {topic}: {cause}") from exc


def job_from_event(event: CloudEvent) -> Job:
    """The job a work message (a Pub/Sub push) carries."""
    return job_in(pubsub_message(event))


def job_in(message: PubSubMessage) -> Job:
    """The job in a Pub/Sub message; `MalformedEvent` (acked, logged) if it holds none."""
    return json_model_in(message, Job, what="a job", max_bytes=MAX_JOB_BYTES)
