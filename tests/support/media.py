"""Checks of media files that only tests need."""

from __future__ import annotations

from pathlib import Path

import av

from shared.media.probe import MediaProbeError


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
