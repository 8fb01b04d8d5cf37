"""Veo: one long-running operation per creation, resumed (never restarted) on redelivery.

Start
    `generate_videos` with one video of the requested duration, aspect ratio, negative
    prompt and seed, and, for a video from an image draft (`request.source_image`), that image
    (`image=`) with its MIME type, its bytes read from the bucket here. Never its `gs://` URI:
    Veo would read it as the project's Vertex AI service agent, which every Vertex caller in
    the project shares, and which may therefore write only under `tmp/` and read nothing (the
    Developer API takes no URI either, and Google cannot reach the storage emulator). An image
    whose object is gone fails the video (`source_image_missing`) before anything is started.
    In Vertex AI mode Veo writes the MP4 straight into our bucket, under
    `tmp/{uid}/{creation}/{attempt scope}/` (`output_gcs_uri`): no video travels base64-encoded
    in an operation answer. (Not when our bucket is the local storage emulator, which Google
    cannot reach: then Veo returns the video in the operation's answer.) Not under `media/`:
    the operation runs on whatever happens to the creation, and may write after it has failed
    (`too_many_attempts`) or been deleted; under `tmp/` the bucket's lifecycle rule removes
    such a late video, and the creation's settle (`shared.money.refunds`) removes the folder
    once the creation is final. The folder is the starting attempt's own, so operations of two
    attempts never share a name. The operation's name is saved on the creation
    (`checkpoint.veo_operation`) *before* any waiting, so whatever happens next, no later
    attempt starts a second, paid operation for the same creation.

Wait
    `operations.get` with a backoff from GENAI_POLL_INITIAL_SECONDS doubling up to
    GENAI_POLL_MAX_SECONDS, until this attempt's deadline (`context.deadline`, inside the
    function's timeout). A status check that fails transiently (429, 5xx, network) is just
    retried at the next tick: the operation runs on regardless. Progress is an estimate from
    the time since the operation started (saved with it, so a resumed attempt continues the
    bar where the last one left it), always below 100.

    Past the deadline: `ProviderTimeout`. The redelivered job finds the saved name and resumes
    polling the same operation; once the deliveries run out the creation fails
    (`delivery_exhausted`, or `too_many_attempts`) and is refunded.

Finish
    `operation.error` (the SDK does not raise it) is mapped by `errors.from_operation_error`;
    a transient one also clears the checkpoint, so the next attempt starts afresh instead of
    resuming an operation that can only fail again. No video with `rai_media_filtered_count`
    or reasons is `SafetyBlocked`; no video at all is `EmptyResult`. The video is copied into
    `context.workdir` (from our bucket, from the answer's bytes, or, in Developer API mode,
    through `files.download`) and measured; the worker stores it under its own attempt's folder
    in `media/`, as every provider's result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any

from google import genai
from google.api_core import exceptions as gexc
from google.cloud.storage import Client as StorageClient
from google.genai import types

from shared.core.calls import TRANSIENT_ERRORS
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.model import Job
from shared.creations.requests import VideoRequest
from shared.media.probe import MediaProbeError, probe
from shared.media.providers.base import (
    EmptyResult,
    GeneratedMedia,
    GenerationContext,
    ProviderPermanent,
    ProviderTimeout,
    ProviderTransient,
    SafetyBlocked,
)
from shared.media.providers.genai.client import call_options
from shared.media.providers.genai.errors import brief, from_operation_error, sdk_errors
from shared.media.providers.source_image import SourceImageReader
from shared.media.storage import bounded_storage_retry, split_gs_uri, staging_prefix

logger = get_logger(__name__)

SERVICE = "Veo"
OPERATION_KEY = "veo_operation"  # checkpoint.veo_operation: the operation's full name
STARTED_KEY = "veo_started_at"  # checkpoint.veo_started_at: epoch seconds, for progress
# A typical Veo run; only shapes the progress estimate (half the bar after ~0.7 of this).
EXPECTED_SECONDS = 90.0
PROGRESS_START, PROGRESS_SPAN = 5, 90  # the estimate moves from 5 towards 95, never 100


@dataclass(frozen=True)
class VeoRunner:
    client: genai.Client
    settings: Settings
    storage: Callable[[], StorageClient]
    _: KW_ONLY
    output_to_bucket: bool
    source_images: SourceImageReader
    sleep: Callable[[float], None] = time.sleep
    wall_clock: Callable[[], float] = time.time

    def make(
        self, job: Job, request: VideoRequest, context: GenerationContext
    ) -> list[GeneratedMedia]:
        fields = log_fields(creation_id=job.creation_id, user_id=job.user_id, model=request.model)
        saved = str(context.checkpoint.get(OPERATION_KEY) or "")
        if resumes_operation(context):
            logger.info(f"resuming Veo operation {saved}", extra=fields)
            # `name` is declared on the SDK's Operation mixin, which type checkers do not see
            # as a constructor argument; validating a dict is the same thing.
            operation = types.GenerateVideosOperation.model_validate({"name": saved})
            started_at = _number(context.checkpoint.get(STARTED_KEY), self.wall_clock())
            resumed = True
        else:
            operation = self._start(job, request, context)
            started_at = self.wall_clock()
            # Saved before any waiting: from here on no attempt starts a second operation.
            # (Raises LostClaim if another worker owns the creation now.)
            context.save_checkpoint({OPERATION_KEY: operation.name, STARTED_KEY: started_at})
            logger.info(f"started Veo operation {operation.name}", extra=fields)
            resumed = False
        operation = self._wait(operation, started_at, context, check_at_once=resumed)
        video = self._video_of(operation, context)
        return [self._fetch(video, context)]

    def _start(
        self, job: Job, request: VideoRequest, context: GenerationContext
    ) -> types.GenerateVideosOperation:
        output = None
        if self.output_to_bucket:
            prefix = staging_prefix(job.user_id, job.creation_id)
            output = f"gs://{self.settings.media_bucket}/{prefix}{context.scope}/"
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=request.duration_seconds,
            aspect_ratio=request.aspect_ratio,
            negative_prompt=request.negative_prompt,
            seed=request.seed,
            output_gcs_uri=output,
            # Veo 3 models make a soundtrack when asked (Vertex requires the choice for some of
            # them); the offline provider's videos have sound too.
            generate_audio=True if request.model.startswith("veo-3") else None,
            http_options=call_options(self.settings, context.seconds_left()),
        )
        image = self._source_image(request, context)
        with sdk_errors(SERVICE):
            operation = self.client.models.generate_videos(
                model=request.model,
                source=types.GenerateVideosSource(prompt=request.prompt, image=image),
                config=config,
            )
        if not operation.name:
            raise ProviderPermanent("Veo accepted the request but named no operation to follow.")
        return operation

    def _source_image(
        self, request: VideoRequest, context: GenerationContext
    ) -> types.Image | None:
        """The image the video starts from, as Veo takes it (see the module docstring)."""
        source = request.source_image
        if source is None:
            return None
        path = self.source_images.download(source, context.workdir, context)
        return types.Image(image_bytes=path.read_bytes(), mime_type=source.mime_type)

    def _wait(
        self,
        operation: types.GenerateVideosOperation,
        started_at: float,
        context: GenerationContext,
        *,
        check_at_once: bool,
    ) -> types.GenerateVideosOperation:
        """Poll until done. A resumed operation (a bare name) is checked at once; a fresh one
        was just described by the start call, so the first check waits one interval."""
        settings = self.settings
        interval = settings.genai_poll_initial_seconds
        wait_first = not check_at_once
        failed_check: ProviderTransient | None = None
        while not operation.done:
            self._report(started_at, context)
            left = context.seconds_left()
            if left <= 0:
                raise _timeout(failed_check)
            if wait_first:
                self.sleep(min(interval, left))
                interval = min(interval * 2, settings.genai_poll_max_seconds)
            wait_first = True
            config = types.GetOperationConfig(
                http_options=call_options(settings, context.seconds_left())
            )
            try:
                with sdk_errors(SERVICE):
                    operation = self.client.operations.get(operation, config=config)
                failed_check = None
            except ProviderTransient as exc:
                failed_check = exc  # the operation runs on; check again at the next tick
        return operation

    def _report(self, started_at: float, context: GenerationContext) -> None:
        elapsed = max(0.0, self.wall_clock() - started_at)
        share = 1 - math.exp(-elapsed / EXPECTED_SECONDS)
        context.report_progress(int(PROGRESS_START + PROGRESS_SPAN * share))

    def _video_of(
        self, operation: types.GenerateVideosOperation, context: GenerationContext
    ) -> types.Video:
        if operation.error:
            error = from_operation_error(operation.error, SERVICE)
            if isinstance(error, ProviderTransient):
                # Resuming would only read the same error: let the next attempt start afresh.
                context.save_checkpoint({OPERATION_KEY: None, STARTED_KEY: None})
            raise error
        response = operation.response or operation.result
        videos = [
            item.video
            for item in (response.generated_videos or [] if response else [])
            if item.video is not None and (item.video.video_bytes or item.video.uri)
        ]
        if videos:
            return videos[0]
        filtered = response.rai_media_filtered_count if response else None
        reasons = (
            [brief(r) for r in (response.rai_media_filtered_reasons or [])] if response else []
        )
        if filtered or reasons:
            detail = "; ".join(reasons) or "no reason given"
            raise SafetyBlocked(f"Veo withheld the video under its safety rules: {detail}")
        raise EmptyResult("Veo finished without a video.")

    def _fetch(self, video: types.Video, context: GenerationContext) -> GeneratedMedia:
        path = context.workdir / "video.mp4"
        if video.video_bytes:
            path.write_bytes(video.video_bytes)
        elif video.uri and video.uri.startswith("gs://"):
            self._download_object(video.uri, path, context)
        elif video.uri:
            # Developer API: the video is a file of the Files API, fetched with our API key.
            config = types.DownloadFileConfig(
                http_options=call_options(self.settings, context.seconds_left())
            )
            with sdk_errors(SERVICE):
                self.client.files.download(file=video, destination=str(path), config=config)
        try:
            found = probe(path)
        except MediaProbeError as exc:
            raise ProviderPermanent(f"Veo returned a video that cannot be read: {exc}") from exc
        content_type = video.mime_type if (video.mime_type or "").startswith("video/") else None
        return GeneratedMedia(
            path,
            content_type or "video/mp4",
            found.width,
            found.height,
            found.duration_seconds,
        )

    def _download_object(self, uri: str, path: Path, context: GenerationContext) -> None:
        bucket, name = split_gs_uri(uri)
        timeout = min(self.settings.genai_request_timeout_seconds, max(1.0, context.seconds_left()))
        try:
            blob = self.storage().bucket(bucket).blob(name)
            blob.download_to_filename(
                str(path), timeout=timeout, retry=bounded_storage_retry(timeout)
            )
        except gexc.NotFound as exc:
            path.unlink(missing_ok=True)
            raise ProviderPermanent(f"Veo reported a video at {uri}, but it is not there.") from exc
        except TRANSIENT_ERRORS as exc:
            path.unlink(missing_ok=True)
            raise ProviderTransient(
                f"Could not read Veo's video from Cloud Storage ({type(exc).__name__})."
            ) from exc


def resumes_operation(context: GenerationContext) -> bool:
    """Whether an earlier attempt started a Veo operation this one should follow."""
    saved = context.checkpoint.get(OPERATION_KEY)
    return isinstance(saved, str) and bool(saved)


def _timeout(failed_check: ProviderTransient | None) -> ProviderTimeout:
    if failed_check is not None:
        return ProviderTimeout(
            "Veo's status checks kept failing until this attempt's deadline "
            f"({failed_check.message}); the next attempt resumes the same operation."
        )
    return ProviderTimeout(
        "Veo had not finished the video by this attempt's deadline; the next attempt resumes "
        "the same operation."
    )


def _number(value: Any, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default
