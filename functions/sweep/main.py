"""`sweep`: moves stuck creations on; Cloud Scheduler publishes to its topic on a schedule."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.events import pubsub_message
from shared.core.handling import event_handler
from shared.core.runtime import per_process
from shared.wiring import build_sweeper

_sweeper = per_process(build_sweeper)


@functions_framework.cloud_event
@event_handler
def sweep(event: CloudEvent) -> None:
    pubsub_message(event)  # only checks the event is a Pub/Sub message; its body is unused
    _sweeper().sweep()
