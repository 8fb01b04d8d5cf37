"""`dead_letter`: fails (so refunds) the creation of a job Pub/Sub gave up on (dead-letter push)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.events import event_handler, pubsub_message
from shared.core.runtime import per_process
from shared.wiring import build_dead_letter_handler
from shared.work.jobs import job_from_event

# Pub/Sub sets it on every message it moves to a dead-letter topic.
DELIVERY_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"

_dead_letters = per_process(build_dead_letter_handler)


@functions_framework.cloud_event
@event_handler
def dead_letter(event: CloudEvent) -> None:
    attempts = pubsub_message(event).attributes.get(DELIVERY_COUNT_ATTRIBUTE)
    _dead_letters().on_dead_letter(
        job_from_event(event), event_id=event["id"], delivery_attempts=attempts
    )
