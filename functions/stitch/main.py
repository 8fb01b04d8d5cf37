"""`stitch` (Reel Maker): joins a reel's clips into one video per job message (Pub/Sub push)."""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.core.handling import event_handler
from shared.core.runtime import per_process
from shared.wiring import build_stitch_worker
from shared.work.jobs import job_from_event

_worker = per_process(build_stitch_worker)


@functions_framework.cloud_event
@event_handler
def stitch(event: CloudEvent) -> None:
    _worker().handle(job_from_event(event), event_id=event["id"])
