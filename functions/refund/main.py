"""`refund` (Firestore trigger on creations/{id}) and `dead_letter` (dead-letter topic push).

One source, two deployed functions: both exist so that every failed creation is refunded.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.events import document_change, event_handler, job_from_event, pubsub_message
from shared.runtime import per_process
from shared.wiring import build_dead_letter_handler, build_refund_handler

DELIVERY_COUNT_ATTRIBUTE = "CloudPubSubDeadLetterSourceDeliveryCount"

_refunds = per_process(build_refund_handler)
_dead_letters = per_process(build_dead_letter_handler)


@functions_framework.cloud_event
@event_handler
def refund(event: CloudEvent) -> None:
    _refunds().on_creation_change(document_change(event), event_id=event["id"])


@functions_framework.cloud_event
@event_handler
def dead_letter(event: CloudEvent) -> None:
    attempts = pubsub_message(event).attributes.get(DELIVERY_COUNT_ATTRIBUTE)
    _dead_letters().on_dead_letter(
        job_from_event(event), event_id=event["id"], delivery_attempts=attempts
    )
