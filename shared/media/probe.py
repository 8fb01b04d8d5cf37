"""What a media file really is: sizes, duration and codecs read from the file itself.

Providers report what they produced by measuring it, not by trusting the numbers they asked
for: an encoder may round a size or pad a duration, and the creation's `media` item must say
what a viewer will actually get.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

# Microseconds per second: the unit of a container's duration (PyAV's `av.time_base`).
CONTAINER_TIME_BASE = 1_000_000


class MediaProbeError(Exception):
    """The file is not the media we expected (unreadable, no video stream, corrupt image)."""


@dataclass(frozen=True)
class ProbeResult:
    width: int
    height: int
    duration_seconds: float
    video_codec: str
    audio_codec: str | None
    fps: float
    pixel_format: str | None  # e.g. "yuv420p", the one every browser plays


def probe(path: Path) -> ProbeResult:
    """Read a video file's first video stream (and first audio stream, if any)."""
    # Imported here: PyAV takes a few hundred ms to load, and an image job never needs it.
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise MediaProbeError(f"{path.name}: no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            return ProbeResult(
                width=video.width,
                height=video.height,
                duration_seconds=stream_duration_seconds(
                    video.duration, video.time_base, container.duration
                ),
                video_codec=video.codec_context.name,
                audio_codec=audio.codec_context.name if audio is not None else None,
                fps=float(video.average_rate) if video.average_rate else 0.0,
                pixel_format=video.codec_context.pix_fmt,
            )
    except av.FFmpegError as exc:
        raise MediaProbeError(f"{path.name}: {exc}") from exc


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, after checking the file is intact."""
    # Imported here: the stitch function probes videos only and does not ship Pillow.
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            size = image.size
            # verify() checks the structure (and PNG CRCs) without decoding every pixel.
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise MediaProbeError(f"{path.name}: {exc}") from exc
    return size


def stream_duration_seconds(
    stream_duration: int | None, time_base: Fraction | None, container_duration: int | None
) -> float:
    """A video stream's duration in seconds, from what PyAV reads of the stream and container.

    The stream's own duration is what a player shows; the container's (in microseconds) may
    also count a longer audio track, so it is only the fallback.
    """
    if stream_duration is not None and time_base is not None:
        return float(stream_duration * time_base)
    if container_duration is not None:
        return container_duration / CONTAINER_TIME_BASE
    return 0.0
