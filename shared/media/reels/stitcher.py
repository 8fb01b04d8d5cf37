"""Joining clips into one reel with ffmpeg.

`stitch` probes every clip, then takes one of two paths:

- copy: the clips are alike (`can_copy`), so the concat demuxer joins them without
  re-encoding. Seconds for any length, and no quality loss.
- reencode: otherwise every clip is normalised to one size, rate and audio layout and encoded
  once (`shared.media.reels.commands` says how and why).

Memory: ffmpeg works from and to files; no video passes through Python. ffmpeg's own memory
grows with the clip count on the re-encode path, where every clip is an open input holding a
few decoded frames until its turn. Measured peaks for mixed 1080p clips: 365 MB for 3, 530 MB
for 10, 745 MB for 20 (x264 at 1080p is most of the base, then ~25 MB a clip); the copy path
stays under 100 MB. Size the function's memory for the most clips a reel may have.

Progress is the share of the reel's total duration written so far (0-99; the caller reports
100 when it is done). Failures are permanent (`shared.media.reels.errors`); a failed stitch leaves
no output file.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from shared.creations.progress import RisingPercent
from shared.media.ffmpeg import FfmpegError, FfmpegTimedOut, run_ffmpeg
from shared.media.reels.clips import ClipInfo, can_copy, probe_clip
from shared.media.reels.commands import choose_canvas, concat_list, copy_args, reencode_args
from shared.media.reels.errors import StitchError, StitchTimeout, UnreadableClip

Mode = Literal["copy", "reencode"]


@dataclass(frozen=True)
class StitchResult:
    """The written reel, as measured from the file."""

    path: Path
    mode: Mode
    duration_seconds: float
    width: int
    height: int
    bytes: int


def stitch(
    paths: Sequence[Path],
    output: Path,
    *,
    deadline: float,
    on_progress: Callable[[int], None] = lambda _percent: None,
) -> StitchResult:
    """Join the clips at `paths`, in order, into the MP4 `output`.

    `deadline` is a `time.monotonic()` value. Raises `UnreadableClip`, `StitchTimeout` or
    `StitchError`; `output` does not exist afterwards in any of those cases.
    """
    # samefile also sees through symlinks and hard links; a new output costs one stat.
    if output.exists() and any(Path(p).exists() and output.samefile(p) for p in paths):
        raise ValueError(f"the output {output} is also one of the clips")
    try:
        if not paths:
            raise StitchError("A reel needs at least one clip.")
        clips = [probe_clip(Path(path)) for path in paths]
        progress = _share_of(sum(clip.duration_seconds for clip in clips), on_progress)
        mode: Mode = "copy" if can_copy(clips) else "reencode"
        if mode == "copy":
            _join_by_copy(clips, output, deadline, progress)
        else:
            _run(reencode_args(clips, choose_canvas(clips), output), deadline, progress)
        return _measure(output, mode)
    except BaseException:
        # Also on KeyboardInterrupt and the like: neither a half-written MP4 nor one left by an
        # earlier attempt may be taken for this stitch's result.
        output.unlink(missing_ok=True)
        raise


def _join_by_copy(
    clips: Sequence[ClipInfo], output: Path, deadline: float, progress: Callable[[float], None]
) -> None:
    # The list sits next to the output: the caller's workdir, removed with it at worst.
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", suffix=".concat.txt", dir=output.parent, delete=False
    ) as listing:
        listing.write(concat_list([clip.path for clip in clips]))
    list_file = Path(listing.name)
    try:
        _run(copy_args(list_file, output), deadline, progress)
    finally:
        list_file.unlink(missing_ok=True)


def _run(args: list[str], deadline: float, progress: Callable[[float], None]) -> None:
    if time.monotonic() >= deadline:
        raise StitchTimeout("The deadline passed before the clips could be joined.")
    try:
        run_ffmpeg(args, deadline=deadline, on_progress=progress)
    except FfmpegTimedOut as exc:
        raise StitchTimeout("The reel could not be finished before the deadline.") from exc
    except FfmpegError as exc:
        raise StitchError(f"ffmpeg could not join the clips: {exc}") from exc


def _measure(output: Path, mode: Mode) -> StitchResult:
    # probe_clip reads the header only: a full probe would decode frames of the new reel, as
    # slow as probing every clip again. It also reports the displayed size.
    try:
        found = probe_clip(output)
    except UnreadableClip as exc:
        raise StitchError(f"ffmpeg wrote an unreadable reel: {exc}") from exc
    return StitchResult(
        path=output,
        mode=mode,
        duration_seconds=found.duration_seconds,
        width=found.width,
        height=found.height,
        bytes=output.stat().st_size,
    )


def _share_of(total_seconds: float, report: Callable[[int], None]) -> Callable[[float], None]:
    """Seconds of output written, as rising whole percents of `total_seconds` (0-99)."""
    percent = RisingPercent(report)
    return lambda seconds: percent(100 * seconds / total_seconds if total_seconds > 0 else 0)
