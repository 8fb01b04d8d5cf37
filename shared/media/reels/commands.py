"""The two ffmpeg command lines a reel is made with: a stream-copy join and a re-encode.

Pure functions from probed clips to arguments for `run_ffmpeg`, so the choices below can be
read (and tested) without running anything.

The re-encode normalises every clip to one canvas before the `concat` filter, which needs
identical frame sizes, sample aspect ratios and audio formats:

- Size: the first clip's displayed size (even sides, long side at most `MAX_LONG_SIDE`).
  The user chose which clip opens the reel; it is shown as made, unscaled, and the reel's
  shape is predictable from that choice. "The largest clip" would upscale the others (softer
  pictures, and more pixels to encode against the function's hard timeout).
- Other clips are scaled to fit inside it and centred on black bars (letterbox/pillarbox):
  nothing is cropped or stretched.
- Frame rate: the first clip's, unless it is not a sane constant rate; then `FALLBACK_FPS`.
- Audio: AAC, 48 kHz stereo (the common denominator of players). Each clip's audio is padded
  or cut to its video's length, and a clip without audio gets silence of that length, so the
  pictures and sound of every later clip stay in sync.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from shared.media.reels.clips import ClipInfo

MAX_LONG_SIDE = 1920  # a 4K first clip would make the whole reel 4K: too slow, too big
FALLBACK_FPS = Fraction(30)
MAX_FPS = 60
AUDIO_RATE = 48000
AUDIO_LAYOUT = "stereo"
AUDIO_FORMAT = f"aformat=sample_fmts=fltp:sample_rates={AUDIO_RATE}:channel_layouts={AUDIO_LAYOUT}"
# The clips are already lossy; a second generation a little above x264's default (23)
# keeps the joins from looking softer than the clips themselves.
VIDEO_CRF = "20"
AUDIO_BITRATE = "128k"
KEYFRAME_SECONDS = 2  # seekable reels; x264's default is up to ~10 s between keyframes
# A reel is a new work: the first clip's tags (creation time, encoder, any location) do not
# describe it, so none are carried over.
COMMON_OUTPUT_ARGS = ("-map_metadata", "-1", "-movflags", "+faststart", "-f", "mp4", "-y")


@dataclass(frozen=True)
class Canvas:
    """The frame every clip is normalised to on the re-encode path."""

    width: int
    height: int
    fps: Fraction


def choose_canvas(clips: Sequence[ClipInfo]) -> Canvas:
    """The re-encode's size and frame rate (see the module docstring)."""
    first = clips[0]
    width, height = first.width, first.height
    long_side = max(width, height)
    if long_side > MAX_LONG_SIDE:
        width = round(width * MAX_LONG_SIDE / long_side)
        height = round(height * MAX_LONG_SIDE / long_side)
    fps = Fraction(first.fps).limit_denominator(1001)  # 29.97 -> 30000/1001
    if not 1 <= fps <= MAX_FPS:
        fps = FALLBACK_FPS
    # H.264 in yuv420p needs even sides.
    return Canvas(max(2, width - width % 2), max(2, height - height % 2), fps)


def concat_list(paths: Sequence[Path]) -> str:
    """The concat demuxer's list file for `paths` (absolute, so the list can live anywhere)."""
    lines = ["ffconcat version 1.0"]
    for path in paths:
        text = str(path.resolve())
        if "\n" in text or "\r" in text:
            raise ValueError(f"a clip path cannot contain a line break: {text!r}")
        # Single-quoted; a quote inside is closed, escaped and reopened: ' -> '\''
        quoted = text.replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def copy_args(list_file: Path, output: Path) -> list[str]:
    """Join the clips in `list_file` without re-encoding (they passed `can_copy`)."""
    return [
        *("-f", "concat", "-safe", "0", "-i", str(list_file)),
        *("-map", "0:v:0", "-map", "0:a:0?", "-c", "copy"),
        *COMMON_OUTPUT_ARGS,
        str(output),
    ]


def reencode_args(clips: Sequence[ClipInfo], canvas: Canvas, output: Path) -> list[str]:
    """Normalise every clip to `canvas`, join them with the concat filter, encode once."""
    inputs: list[str] = []
    chains: list[str] = []
    for index, clip in enumerate(clips):
        inputs += ["-i", str(clip.path)]
        chains.append(f"[{index}:v:0]{_video_chain(canvas)}[v{index}]")
        chains.append(f"{_audio_chain(index, clip)}[a{index}]")
    pairs = "".join(f"[v{index}][a{index}]" for index in range(len(clips)))
    chains.append(f"{pairs}concat=n={len(clips)}:v=1:a=1[v][a]")
    keyframe_interval = max(1, round(canvas.fps * KEYFRAME_SECONDS))
    return [
        *inputs,
        *("-filter_complex", ";".join(chains), "-map", "[v]", "-map", "[a]"),
        *("-c:v", "libx264", "-preset", "veryfast", "-crf", VIDEO_CRF, "-pix_fmt", "yuv420p"),
        *("-g", str(keyframe_interval)),
        *("-c:a", "aac", "-b:a", AUDIO_BITRATE),
        *COMMON_OUTPUT_ARGS,
        str(output),
    ]


def _video_chain(canvas: Canvas) -> str:
    size = f"{canvas.width}:{canvas.height}"
    return ",".join(
        [
            # The concat filter wants every segment to start at 0.
            "setpts=PTS-STARTPTS",
            # Rate first: a 60 fps clip on a 30 fps canvas then scales half the frames.
            f"fps={canvas.fps}",
            f"scale={size}:force_original_aspect_ratio=decrease",
            f"pad={size}:(ow-iw)/2:(oh-ih)/2",
            "setsar=1",
            "format=yuv420p",
        ]
    )


def _audio_chain(index: int, clip: ClipInfo) -> str:
    # Cut (or, after apad, fill) to the video's length, so the next clip starts in sync.
    to_video_length = f"atrim=end={clip.duration_seconds:.6f}"
    if clip.audio_codec is None:
        return f"anullsrc=r={AUDIO_RATE}:cl={AUDIO_LAYOUT},{AUDIO_FORMAT},{to_video_length}"
    return ",".join(
        [
            f"[{index}:a:0]aresample={AUDIO_RATE}:async=1:first_pts=0",  # silence a late start
            AUDIO_FORMAT,
            "apad",
            to_video_length,
            "asetpts=PTS-STARTPTS",
        ]
    )
