"""The Celery worker's one task: claim the creation, draw its PNG, upload it, move it to draft.

Run as `celery -A benchmarks.baseline.tasks worker` (benchmarks/baseline/stack.py does, with
the pool and flags the benchmark uses). The broker is Redis at `BASELINE_REDIS_URL`; results
are not kept (the creation document is the result). `acks_late` with prefetch 1: a job is
acknowledged after it ran, and each pool process reserves one job at a time.
"""

from __future__ import annotations

import logging
import os
import time
from functools import cache
from typing import Any

from celery import Celery  # type: ignore[import-untyped]
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.storage import Bucket
from google.cloud.storage import Client as StorageClient

from benchmarks.baseline.config import settings
from benchmarks.baseline.creations import Claim, Creations
from benchmarks.baseline.image import draw_png
from benchmarks.baseline.jsonlog import log, setup

setup(os.environ.get("LOG_LEVEL", "INFO"))

TASK_NAME = "baseline.generate"
logger = logging.getLogger("baseline.worker")

app = Celery("baseline", broker=settings().redis_url)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    # Our JSON lines go to stderr as they are; Celery keeps its own (plain) log format.
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
)


@cache
def _clients(pid: int) -> tuple[Creations, Bucket]:
    """This process's clients, made after the pool forked (gRPC channels do not survive a
    fork); `pid` is the cache key for that reason."""
    config = settings()
    db = firestore.Client(project=config.project)
    if config.storage_emulator_host:
        gcs = StorageClient(
            project=config.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=config.storage_emulator_host),
        )
    else:
        gcs = StorageClient(project=config.project)
    return Creations(db, config), gcs.bucket(config.media_bucket)


def generate(creation_id: str) -> str:
    """Make one creation; what became of it (`draft`, `failed`, `skipped`, `lost_claim`)."""
    creations, bucket = _clients(os.getpid())
    phases = _Phases()
    claim = creations.claim(creation_id)
    phases.done("claim")
    if claim is None:
        log(logger, "skipped", creation_id=creation_id)
        return "skipped"
    try:
        png = _draw(claim)
        phases.done("draw")
        media = [_upload(claim, bucket, png)]
        phases.done("upload")
    except Exception as exc:
        logger.exception("generation failed")
        creations.fail(creation_id, "generation_failed", type(exc).__name__, owner=claim.owner)
        return "failed"
    if not creations.complete(claim, media):
        log(logger, "claim lost", creation_id=creation_id)
        return "lost_claim"
    phases.done("finish")
    log(logger, "generation done", creation_id=creation_id, user_id=claim.user_id, **phases.ms)
    return "draft"


class _Phases:
    """Milliseconds spent in each phase of one job, for its log line."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self.ms[f"{phase}_ms"] = round((now - self._last) * 1000, 1)
        self._last = now


def _draw(claim: Claim) -> bytes:
    request = claim.request
    return draw_png(
        f"{request.get('prompt')}\0{request.get('seed', claim.creation_id)}",
        settings().image_side_px,
    )


def _upload(claim: Claim, bucket: Bucket, png: bytes) -> dict[str, Any]:
    side = settings().image_side_px
    name = f"media/{claim.user_id}/{claim.creation_id}/0.png"
    bucket.blob(name).upload_from_string(png, content_type="image/png")
    return {
        "uri": f"gs://{bucket.name}/{name}",
        "content_type": "image/png",
        "width": side,
        "height": side,
        "bytes": len(png),
    }


generate_task: Any = app.task(name=TASK_NAME, ignore_result=True)(generate)
