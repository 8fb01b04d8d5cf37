"""Checks of media files that only tests need."""

from __future__ import annotations

from pathlib import Path

import av
from google.cloud.storage import Bucket
from PIL import Image, ImageOps

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


# Pictures are compared as small greyscale thumbnails: what a person sees at a glance (the
# layout and the light), not the encoder's noise.
THUMBNAIL = (32, 32)


def video_frames(path: Path) -> list[Image.Image]:
    """Every video frame of `path`, in order, as RGB pictures."""
    with av.open(str(path)) as container:
        return [_picture(frame) for frame in container.decode(container.streams.video[0])]


def first_frame(path: Path) -> Image.Image:
    """The first video frame of `path`, as an RGB picture."""
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            return _picture(frame)
    raise MediaProbeError(f"{path.name}: no video frame")


def _picture(frame: av.VideoFrame) -> Image.Image:
    picture: Image.Image = frame.to_image()  # type: ignore[no-untyped-call]  # PyAV's stubs lack it
    return picture.convert("RGB")


def picture_difference(one: Image.Image, other: Image.Image) -> float:
    """The mean absolute difference (0-255) of two pictures, both shrunk to one small greyscale
    thumbnail; `other` is first cropped to `one`'s shape (as a video crops a picture to fill
    its frame)."""
    fitted = ImageOps.fit(other.convert("RGB"), one.size, Image.Resampling.LANCZOS)
    # Greyscale pixels are one byte each.
    a, b = (p.convert("L").resize(THUMBNAIL, Image.Resampling.BOX).tobytes() for p in (one, fitted))
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
