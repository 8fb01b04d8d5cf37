"""`webhooks`: signs and POSTs the status events a creation's webhook asks for (Pub/Sub push
of the creation status stream, STATUS_TOPIC, filtered to `attributes.webhook = "1"`)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.events import pubsub_message
from shared.core.handling import event_handler
from shared.core.runtime import per_process
from shared.creations.status_events import status_event_in
from shared.webhooks.delivery import REPLAY_ATTRIBUTE
from shared.wiring import build_webhook_delivery

_deliveries = per_process(build_webhook_delivery)


@functions_framework.cloud_event
@event_handler
def webhooks(event: CloudEvent) -> None:
    message = pubsub_message(event)
    _deliveries().on_status_event(
        status_event_in(message),
        event_id=event["id"],
        replay=message.attributes.get(REPLAY_ATTRIBUTE) == "1",
    )
