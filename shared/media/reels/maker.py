"""Reel Maker: the provider behind `stitch`. Fetches the clips, joins them, returns the reel.

It plugs into the same `GenerationWorker` as the media providers, so reels get the same
claims, leases, progress writes, deterministic upload, `draft` move and refunds on failure.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud.storage import Client as StorageClient

from shared.core.calls import TRANSIENT_ERRORS
from shared.creations.model import Job
from shared.creations.progress import MAX_WORKING
from shared.creations.requests import ReelRequest, StoredRequest
from shared.media.providers.base import (
    GeneratedMedia,
    GenerationContext,
    InvalidGenerationRequest,
    ProviderPermanent,
    ProviderTransient,
)
from shared.media.reels.stitcher import StitchResult, stitch
from shared.media.storage import bounded_storage_retry, split_gs_uri

# Share of the progress bar spent fetching clips; the join takes the rest.
DOWNLOAD_SHARE = 20

Stitch = Callable[..., StitchResult]


class ClipMissing(ProviderPermanent, code="clip_missing"):
    """A clip's media is gone (deleted after the reel was requested)."""


class ReelMaker:
    def __init__(
        self, storage: StorageClient, *, timeout_seconds: float, stitch_clips: Stitch = stitch
    ) -> None:
        self._storage = storage
        self._timeout = timeout_seconds
        self._retry = bounded_storage_retry(timeout_seconds)
        self._stitch = stitch_clips

    def generate(
        self, job: Job, request: StoredRequest, context: GenerationContext
    ) -> list[GeneratedMedia]:
        if not isinstance(request, ReelRequest):
            raise InvalidGenerationRequest(f"type: Reel Maker does not make {request.TYPE}s")
        sources = request.sources
        clips = []
        for index, uri in enumerate(sources):
            clips.append(self._download(uri, context.workdir / f"clip-{index:02d}.mp4", index))
            context.report_progress((index + 1) * DOWNLOAD_SHARE // len(sources))

        def joined(percent: int) -> None:
            context.report_progress(
                DOWNLOAD_SHARE + percent * (MAX_WORKING - DOWNLOAD_SHARE) // 100
            )

        result = self._stitch(
            clips, context.workdir / "reel.mp4", deadline=context.deadline, on_progress=joined
        )
        return [
            GeneratedMedia(
                path=result.path,
                content_type="video/mp4",
                width=result.width,
                height=result.height,
                duration_seconds=result.duration_seconds,
            )
        ]

    def _download(self, uri: str, target: Path, index: int) -> Path:
        bucket, name = split_gs_uri(uri)
        try:
            # Streams to disk in chunks: memory stays bounded whatever the clip's size.
            self._storage.bucket(bucket).blob(name).download_to_filename(
                str(target), retry=self._retry, timeout=self._timeout
            )
        except gexc.NotFound:
            target.unlink(missing_ok=True)
            raise ClipMissing(
                f"Clip {index + 1} is no longer available; it may have been deleted."
            ) from None
        except TRANSIENT_ERRORS as exc:
            raise ProviderTransient(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc
        return target
