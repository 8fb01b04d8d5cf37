"""`refund`: refunds failed and canceled creations, settles final ones' media, finishes
deletes (Pub/Sub push of the creation status stream, STATUS_TOPIC)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.events import pubsub_message
from shared.core.handling import event_handler
from shared.core.runtime import per_process
from shared.creations.status_events import status_event_in
from shared.wiring import build_refund_handler

_refunds = per_process(build_refund_handler)


@functions_framework.cloud_event
@event_handler
def refund(event: CloudEvent) -> None:
    _refunds().on_status_event(status_event_in(pubsub_message(event)), event_id=event["id"])
