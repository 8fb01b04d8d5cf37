"""Reading the image a video starts from (`VideoRequest.source_image`) out of Cloud Storage.

The image was one of the caller's drafts when the video was asked for; the draft may have
been deleted since, taking its objects with it. Then the video can never be made:
`SourceImageMissing` fails the creation (and the usual path refunds it). A storage that does
not answer this time is `ProviderTransient`: the job is redelivered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from google.api_core import exceptions as gexc
from google.cloud.storage import Blob
from google.cloud.storage import Client as StorageClient

from shared.core.calls import TRANSIENT_ERRORS
from shared.creations.requests import SourceImage
from shared.media.providers.base import GenerationContext, ProviderPermanent, ProviderTransient
from shared.media.storage import bounded_storage_retry, split_gs_uri

# File name suffixes for the MIME types image drafts have (anything else: `.img`, which
# ffmpeg and Pillow still open by their contents).
SUFFIXES = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class SourceImageMissing(ProviderPermanent, code="source_image_missing"):
    """The image the video starts from is gone (its draft was deleted after the video was
    asked for)."""


@dataclass(frozen=True)
class SourceImageReader:
    """Reads source images with the storage client `storage` builds (on first use), each call
    bounded by `timeout_seconds` and by the generation's deadline."""

    storage: Callable[[], StorageClient]
    timeout_seconds: float

    def download(self, source: SourceImage, workdir: Path, context: GenerationContext) -> Path:
        """The image as a file in `workdir`."""
        target = workdir / f"source-image{SUFFIXES.get(source.mime_type, '.img')}"
        timeout = self._timeout(context)
        try:
            with _reading(source):
                # Streams to disk in chunks: memory stays bounded whatever the image's size.
                self._blob(source).download_to_filename(
                    str(target), timeout=timeout, retry=bounded_storage_retry(timeout)
                )
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def _blob(self, source: SourceImage) -> Blob:
        bucket, name = split_gs_uri(source.uri)
        return self.storage().bucket(bucket).blob(name)

    def _timeout(self, context: GenerationContext) -> float:
        return min(self.timeout_seconds, max(1.0, context.seconds_left()))


@contextmanager
def _reading(source: SourceImage) -> Iterator[None]:
    """Storage's errors while reading `source`, as the provider errors above."""
    try:
        yield
    except gexc.NotFound:
        raise SourceImageMissing(
            f"The image this video starts from (image {source.index} of creation"
            f" {source.creation_id}) is no longer available; it may have been deleted."
        ) from None
    except TRANSIENT_ERRORS as exc:
        raise ProviderTransient(
            f"Could not read the source image from Cloud Storage ({type(exc).__name__})."
        ) from exc
