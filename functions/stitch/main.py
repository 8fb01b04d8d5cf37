"""`stitch` (Reel Maker): joins a reel's clips into one video per job message (Pub/Sub push)."""

from __future__ import annotations

from functools import lru_cache

import functions_framework
from cloudevents.http import CloudEvent

from shared.events import event_handler, job_from_event
from shared.generation.worker import GenerationWorker
from shared.log import setup_logging
from shared.settings import load_settings
from shared.wiring import build_stitch_worker


@lru_cache(maxsize=1)
def _worker() -> GenerationWorker:
    settings = load_settings()
    setup_logging(settings.log_level)
    return build_stitch_worker(settings)


@functions_framework.cloud_event
@event_handler
def stitch(event: CloudEvent) -> None:
    _worker().handle(job_from_event(event), event_id=event["id"])
