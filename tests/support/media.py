"""Checks of media files that only tests need."""

from __future__ import annotations

from pathlib import Path

import av
from google.cloud.storage import Bucket

from shared.media.probe import MediaProbeError
from shared.media.storage import split_gs_uri


def download(bucket: Bucket, uri: str, folder: Path) -> Path:
    """The object `uri` (which must be in `bucket`), saved in `folder` under its own name."""
    bucket_name, name = split_gs_uri(uri)
    assert bucket_name == bucket.name, f"{uri} is not in {bucket.name}"
    target = folder / Path(name).name
    bucket.blob(name).download_to_filename(str(target))
    return target


def decode_check(path: Path) -> int:
    """Decode every video frame (proving the file plays to its end); return how many there are."""
    frames = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaProbeError(f"{path.name}: no video stream")
            for _frame in container.decode(container.streams.video[0]):
                frames += 1
    except av.FFmpegError as exc:
        raise MediaProbeError(f"{path.name}: {exc}") from exc
    return frames
