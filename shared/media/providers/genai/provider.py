"""The google-genai provider: Veo videos, Imagen and Gemini images (PROVIDER=genai).

The model named in the creation's request picks the family (models.py), the family picks
the SDK call (veo.py, images.py), and errors.py turns whatever goes wrong into the provider
errors the worker understands. docs/providers.md tells operators how to use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache

from google import genai
from google.auth.credentials import Credentials
from google.cloud.storage import Client as StorageClient

from shared.core.clients import storage_client
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.model import Job
from shared.creations.requests import ImageRequest, StoredRequest, VideoRequest
from shared.media.providers.base import (
    GeneratedMedia,
    GenerationContext,
    InvalidGenerationRequest,
)
from shared.media.providers.genai.client import build_client
from shared.media.providers.genai.images import make_gemini_images, make_imagen
from shared.media.providers.genai.models import (
    MAKES,
    MODE_NAMES,
    family_of,
    runs_in,
    unsupported_models,
)
from shared.media.providers.genai.veo import VeoRunner, resumes_operation
from shared.media.providers.source_image import SourceImageReader

logger = get_logger(__name__)


class GenaiProvider:
    def __init__(
        self,
        settings: Settings,
        *,
        client: genai.Client | None = None,
        credentials: Credentials | None = None,
        storage: Callable[[], StorageClient] | None = None,
        veo_output_to_bucket: bool | None = None,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`client`/`credentials` replace the ones built from settings (tests). The storage
        client (for Veo's output in our bucket) is built on first use only.
        `veo_output_to_bucket` overrides `veo_writes_to_bucket(settings)`."""
        self._settings = settings
        self._client = client or build_client(settings, credentials=credentials)
        storage = storage or cache(lambda: storage_client(settings))
        self._veo = VeoRunner(
            self._client,
            settings,
            storage,
            output_to_bucket=(
                veo_writes_to_bucket(settings)
                if veo_output_to_bucket is None
                else veo_output_to_bucket
            ),
            source_images=SourceImageReader(storage, settings.media_timeout_seconds),
            sleep=sleep,
            wall_clock=wall_clock,
        )
        # Said once at startup, where operators look: jobs for these models will fail (and be
        # refunded) with a message naming the reason.
        for model, reason in unsupported_models(
            settings.allowed_models, settings.genai_mode
        ).items():
            logger.warning(
                f"allowed model {model} cannot run with PROVIDER=genai: {reason}",
                extra=log_fields(model=model),
            )

    def generate(
        self, job: Job, request: StoredRequest, context: GenerationContext
    ) -> list[GeneratedMedia]:
        if not isinstance(request, ImageRequest | VideoRequest):
            raise InvalidGenerationRequest(f"type: Google's models do not make {request.TYPE}s.")
        family = family_of(request.model)
        if family is None:
            raise InvalidGenerationRequest(
                f"model: {request.model} is not a Veo, Imagen or Gemini image model."
            )
        if MAKES[family] != request.TYPE:
            raise InvalidGenerationRequest(
                f"model: {request.model} makes {MAKES[family]}s, not {request.TYPE}s."
            )
        # An operation started earlier can be followed in either mode; a new call cannot.
        resuming = isinstance(request, VideoRequest) and resumes_operation(context)
        mode = self._settings.genai_mode
        if not resuming and not runs_in(request.model, mode):
            raise InvalidGenerationRequest(
                f"model: {request.model} runs only on Vertex AI; this deployment uses "
                f"{MODE_NAMES[mode]}, where google-genai cannot call it."
            )
        if isinstance(request, VideoRequest):
            return self._veo.make(job, request, context)
        if family == "imagen":
            return make_imagen(self._client, self._settings, request, context)
        return make_gemini_images(self._client, self._settings, request, context)


def veo_writes_to_bucket(settings: Settings) -> bool:
    """Whether Veo is asked to write into the media bucket (`output_gcs_uri`), and so is given
    a video's source image by its `gs://` URI rather than its bytes.

    Only Vertex AI has the option. Google cannot write into a local storage emulator, so with
    STORAGE_EMULATOR_HOST set it is used only when GENAI_BASE_URL points the SDK at a local
    double, which can; the local stack against the real API gets the video inline instead.
    """
    if settings.genai_mode != "vertex":
        return False
    return not settings.storage_emulator_host or bool(settings.genai_base_url)
