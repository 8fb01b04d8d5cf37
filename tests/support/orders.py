"""Creations as the worker hands them to a provider, for provider tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.core.settings import Settings
from shared.creations.model import Job
from shared.creations.requests import stored_request
from shared.media.providers.base import (
    GeneratedMedia,
    GenerationContext,
)
from shared.media.providers.offline import OfflineProvider

# Small images keep the tests quick; tests of the real default size pass Settings().
FAST = Settings(offline_image_long_side_px=128)


@dataclass(frozen=True)
class Order:
    """One creation as the worker hands it over: which one, its stored request, the attempt."""

    job: Job
    request: dict[str, Any]
    attempt: int = 1

    def again(self, *, attempt: int | None = None, creation_id: str | None = None) -> Order:
        job = self.job.model_copy(update={"creation_id": creation_id or self.job.creation_id})
        return Order(job, self.request, attempt or self.attempt)


def image_job(prompt: str = "a lighthouse at dusk", *, attempt: int = 1, **request: Any) -> Order:
    body = {"prompt": prompt, "model": "imagen-4.0-generate-001", "aspect_ratio": "1:1", "count": 1}
    job = Job(creation_id="c-1", user_id="u-1", type="image")
    return Order(job, {**body, **request}, attempt)


def video_job(seconds: int = 4, **request: Any) -> Order:
    body = {
        "prompt": "waves on a pebble beach",
        "model": "veo-3.0-fast-generate-001",
        "aspect_ratio": "16:9",
        "duration_seconds": seconds,
        "seed": 11,
    }
    return Order(Job(creation_id="c-2", user_id="u-1", type="video"), {**body, **request})


def context_in(
    workdir: Path,
    *,
    seconds: float = 30.0,
    progress: Callable[[int], None] | None = None,
    attempt: int = 1,
) -> GenerationContext:
    workdir.mkdir(parents=True, exist_ok=True)
    return GenerationContext(
        workdir=workdir,
        deadline=time.monotonic() + seconds,
        attempt=attempt,
        report_progress=progress or (lambda _percent: None),
    )


def generate(
    provider: OfflineProvider, order: Order, context: GenerationContext
) -> list[GeneratedMedia]:
    """What the worker does: check the stored request, then hand it to the provider."""
    request = stored_request(order.job.type, order.request)
    return provider.generate(order.job, request, context)


def make(order: Order, workdir: Path, settings: Settings = FAST) -> list[GeneratedMedia]:
    return generate(OfflineProvider(settings), order, context_in(workdir, attempt=order.attempt))
