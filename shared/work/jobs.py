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
from pydantic import ValidationError

from shared.core import tracing
from shared.core.calls import bounded_retry
from shared.core.errors import QueueUnavailable
from shared.core.events import MalformedEvent, PubSubMessage, pubsub_message
from shared.core.settings import Settings
from shared.creations.model import Job

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
        self._client = client
        self._project = settings.gcp_project
        self._timeout = settings.publish_timeout_seconds
        self._retry = bounded_retry(self._timeout)

    def publish(self, job: Job, *, topic: str) -> str:
        topic_path = self._client.topic_path(self._project, topic)
        data = json.dumps(job.model_dump()).encode()
        try:
            # The client retries in the background; our timeout bounds that, so a message we
            # report as not enqueued is rarely published later (and if it is, the worker finds
            # the creation failed and skips it, or submit sees it claimed and says accepted).
            future = self._client.publish(
                topic_path,
                data,
                retry=self._retry,
                timeout=self._timeout,
                creation_id=job.creation_id,
                type=job.type,
                **tracing.attributes(),
            )
            return str(future.result(timeout=self._timeout + 1))
        except Exception as exc:
            raise QueueUnavailable(
                f"the job could not be enqueued on {topic}: {type(exc).__name__}"
            ) from exc


def job_from_event(event: CloudEvent) -> Job:
    """The job a work message (a Pub/Sub push) carries."""
    return job_in(pubsub_message(event))


def job_in(message: PubSubMessage) -> Job:
    """The job in a Pub/Sub message; `MalformedEvent` if it holds none.

    Whatever cannot be a job is malformed here, so it is acked (once, with one log line) rather
    than failing the same way on every delivery.
    """
    if len(message.data) > MAX_JOB_BYTES:
        raise MalformedEvent(f"the message is not a job: {len(message.data)} bytes")
    try:
        return Job.model_validate(json.loads(message.data))
    except RecursionError:  # deep nesting: json.loads gives up with this, not a ValueError
        raise MalformedEvent("the message is not a job: nested too deeply") from None
    except ValidationError as exc:
        # One short line: the errors without the input, which may be long.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MalformedEvent(f"the message is not a job: {problems}") from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise MalformedEvent(f"the message is not a job: {exc}") from None
