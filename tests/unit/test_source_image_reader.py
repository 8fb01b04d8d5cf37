"""How reading a video's source image fails: gone for good, or storage busy for now (the
successful reads, against the storage emulator, are in tests/integration)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared.creations.requests import SourceImage
from shared.media.providers.base import GenerationContext, ProviderTransient
from shared.media.providers.source_image import SourceImageMissing, SourceImageReader

SOURCE = SourceImage(
    creation_id="img1", index=2, uri="gs://bucket/media/u/img1/1-x/2.png", mime_type="image/png"
)


class FailingBlob:
    """A blob whose reads raise `error`, after writing part of the file (as a cut download)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def download_to_filename(self, filename: str, **_options: Any) -> None:
        Path(filename).write_bytes(b"\x89PNG half")
        raise self.error


class Storage:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.named: list[tuple[str, str]] = []

    def bucket(self, name: str) -> Storage:
        self._bucket = name
        return self

    def blob(self, name: str) -> FailingBlob:
        self.named.append((self._bucket, name))
        return FailingBlob(self.error)


def reader(storage: Storage) -> SourceImageReader:
    return SourceImageReader(lambda: storage, timeout_seconds=5)


def context(workdir: Path) -> GenerationContext:
    return GenerationContext(workdir=workdir, deadline=time.monotonic() + 30)


def test_a_missing_object_is_source_image_missing(tmp_path: Path) -> None:
    storage = Storage(gexc.NotFound("no such object"))
    with pytest.raises(SourceImageMissing) as missing:
        reader(storage).download(SOURCE, tmp_path, context(tmp_path))
    assert missing.value.code == "source_image_missing"
    assert "image 2 of creation img1" in missing.value.message
    assert storage.named == [("bucket", "media/u/img1/1-x/2.png")]
    assert list(tmp_path.iterdir()) == []  # no half-written file is left behind


@pytest.mark.parametrize(
    "error", [gexc.ServiceUnavailable("down"), gexc.TooManyRequests("slow"), ConnectionError()]
)
def test_storage_that_does_not_answer_is_transient(tmp_path: Path, error: Exception) -> None:
    with pytest.raises(ProviderTransient, match=type(error).__name__) as busy:
        reader(Storage(error)).download(SOURCE, tmp_path, context(tmp_path))
    assert busy.value.code == "provider_unavailable"
    assert list(tmp_path.iterdir()) == []


def test_other_errors_are_not_swallowed(tmp_path: Path) -> None:
    # A refusal (permission) points at the deployment: the worker's own handling decides.
    with pytest.raises(gexc.Forbidden):
        reader(Storage(gexc.Forbidden("no"))).download(SOURCE, tmp_path, context(tmp_path))
