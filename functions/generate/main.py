"""`generate`: makes the media of one creation per job message (Pub/Sub push)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.handling import event_handler
from shared.core.runtime import per_process
from shared.wiring import build_generation_worker
from shared.work.jobs import job_from_event

_worker = per_process(build_generation_worker)


@functions_framework.cloud_event
@event_handler
def generate(event: CloudEvent) -> None:
    _worker().handle(job_from_event(event), event_id=event["id"])
