"""`refund`: refunds a failed or canceled creation (Firestore trigger on creations/{id})."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.events import document_change
from shared.core.handling import event_handler
from shared.core.runtime import per_process
from shared.wiring import build_refund_handler

_refunds = per_process(build_refund_handler)


@functions_framework.cloud_event
@event_handler
def refund(event: CloudEvent) -> None:
    _refunds().on_creation_change(document_change(event), event_id=event["id"])
