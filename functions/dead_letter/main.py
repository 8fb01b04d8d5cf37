"""`dead_letter`: fails (so refunds) the creation of a job Pub/Sub gave up on (dead-letter push)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.events import pubsub_message
from shared.core.handling import event_handler
from shared.core.runtime import per_process
from shared.wiring import build_dead_letter_handler

_dead_letters = per_process(build_dead_letter_handler)


@functions_framework.cloud_event
@event_handler
def dead_letter(event: CloudEvent) -> None:
    _dead_letters().on_dead_letter(pubsub_message(event), event_id=event["id"])
