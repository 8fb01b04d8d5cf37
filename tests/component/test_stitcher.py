"""Reel Maker's stitcher joins real clips: by stream copy when they match, else re-encoded."""

from __future__ import annotations

import dataclasses
import struct
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from shared.media import ffmpeg
from shared.media.probe import probe
from shared.media.providers.offline import video_ffmpeg_args
from shared.media.reels import (
    ClipInfo,
    StitchError,
    StitchResult,
    StitchTimeout,
    UnreadableClip,
    can_copy,
    probe_clip,
    stitch,
)
from shared.media.reels import stitcher as stitcher_module
from shared.media.reels.commands import Canvas, choose_canvas, concat_list
from shared.media.reels.mp4_rotation import video_rotation
from tests.support.media import decode_check

# Generous enough that no stitch here comes near it; the deadline tests set their own.
DEADLINE_SECONDS = 60.0
WIDE, TALL, SQUARE = (320, 180), (180, 320), (240, 240)


def render(path: Path, size: tuple[int, int], seconds: float, *, key: str = "clip") -> Path:
    """A real H.264/AAC clip from the offline provider's recipe (alike for alike sizes)."""
    args = video_ffmpeg_args(key, None, size=size, fps=24, duration_seconds=seconds, output=path)
    ffmpeg.run_ffmpeg(args, deadline=time.monotonic() + DEADLINE_SECONDS)
    return path


def render_silent(path: Path, size: tuple[int, int], seconds: float) -> Path:
    """A clip with no audio stream at all, at another frame rate (30) than `render`'s."""
    args = [
        *("-f", "lavfi", "-i", f"testsrc2=s={size[0]}x{size[1]}:r=30:d={seconds:g}"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-y", str(path)),
    ]
    ffmpeg.run_ffmpeg(args, deadline=time.monotonic() + DEADLINE_SECONDS)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    return {
        # A quote and a space in the name exercise the concat list's quoting.
        "wide": render(folder / "it's wide.mp4", WIDE, 1.0, key="one"),
        "wide_long": render(folder / "wide-long.mp4", WIDE, 1.5, key="two"),
        "tall": render(folder / "tall.mp4", TALL, 1.0),
        "square": render(folder / "square.mp4", SQUARE, 0.5),
        "silent": render_silent(folder / "silent.mp4", WIDE, 1.0),
    }


def join(paths: Sequence[Path], output: Path, **kwargs: Any) -> StitchResult:
    return stitch(paths, output, deadline=time.monotonic() + DEADLINE_SECONDS, **kwargs)


def total_seconds(paths: Sequence[Path]) -> float:
    return sum(probe_clip(path).duration_seconds for path in paths)


def audio_of(path: Path) -> tuple[float, int, int] | None:
    """(seconds, sample rate, channels) of the first audio stream, or None."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        seconds = float(stream.duration * stream.time_base)
        return seconds, stream.codec_context.sample_rate, stream.codec_context.channels


# --- the copy path -------------------------------------------------------------------------


def test_matching_clips_are_joined_by_stream_copy(clips: dict[str, Path], tmp_path: Path) -> None:
    paths = [clips["wide"], clips["wide_long"], clips["wide"]]

    result = join(paths, tmp_path / "reel.mp4")

    assert result.mode == "copy"
    assert (result.width, result.height) == WIDE
    assert result.duration_seconds == pytest.approx(total_seconds(paths), abs=0.1 * len(paths))
    assert result.bytes == result.path.stat().st_size > 0
    assert decode_check(result.path) == round(24 * total_seconds(paths))
    assert audio_of(result.path) is not None
    assert list(tmp_path.iterdir()) == [result.path], "the concat list was left behind"


# --- the re-encode path --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order", "canvas"),
    [
        (["wide", "tall", "square"], WIDE),
        (["tall", "square", "wide"], TALL),
        (["square", "wide", "tall"], SQUARE),
    ],
)
def test_mixed_shapes_are_reencoded_onto_the_first_clips_canvas(
    clips: dict[str, Path], tmp_path: Path, order: list[str], canvas: tuple[int, int]
) -> None:
    paths = [clips[name] for name in order]

    result = join(paths, tmp_path / "reel.mp4")

    assert result.mode == "reencode"
    assert (result.width, result.height) == canvas
    assert result.duration_seconds == pytest.approx(total_seconds(paths), abs=0.1 * len(paths))
    assert decode_check(result.path) > 0
    found = probe(result.path)  # the full probe: the pixel format as decoded
    assert (found.video_codec, found.pixel_format, found.audio_codec) == ("h264", "yuv420p", "aac")


def test_a_clip_without_audio_gets_silence_so_the_reel_has_sound_throughout(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    paths = [clips["wide"], clips["silent"], clips["wide_long"]]

    result = join(paths, tmp_path / "reel.mp4")

    assert result.mode == "reencode"
    audio = audio_of(result.path)
    assert audio is not None
    seconds, rate, channels = audio
    assert (rate, channels) == (48000, 2)
    # Audio as long as the pictures: every clip's sound stayed with its own video.
    assert seconds == pytest.approx(result.duration_seconds, abs=0.1)
    assert result.duration_seconds == pytest.approx(total_seconds(paths), abs=0.1 * len(paths))
    assert decode_check(result.path) > 0


@pytest.mark.parametrize("order", [["wide", "tall"], ["wide", "wide_long"]], ids=["re", "copy"])
def test_progress_is_whole_percents_rising_and_below_100(
    clips: dict[str, Path], tmp_path: Path, order: list[str]
) -> None:
    seen: list[int] = []

    join([clips[name] for name in order], tmp_path / "reel.mp4", on_progress=seen.append)

    assert seen, "no progress was reported"
    assert seen == sorted(set(seen))
    assert all(0 <= percent <= 99 for percent in seen)


# --- failures ------------------------------------------------------------------------------


def test_an_unreadable_clip_is_named_and_nothing_is_written(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all " * 200)
    output = tmp_path / "reel.mp4"

    with pytest.raises(UnreadableClip, match=r"junk\.mp4") as caught:
        join([clips["wide"], junk], output)

    assert caught.value.code == "clip_unreadable"
    assert isinstance(caught.value, StitchError)
    assert not output.exists()


def test_a_missing_clip_is_unreadable_even_over_an_old_output(tmp_path: Path) -> None:
    output = tmp_path / "reel.mp4"
    output.write_bytes(b"a reel from an earlier attempt")

    with pytest.raises(UnreadableClip, match=r"gone\.mp4"):
        join([tmp_path / "gone.mp4"], output)

    assert not output.exists()


def test_an_audio_only_file_is_unreadable_as_a_clip(tmp_path: Path) -> None:
    song = tmp_path / "song.m4a"
    ffmpeg.run_ffmpeg(
        ["-f", "lavfi", "-i", "sine=d=0.5", "-c:a", "aac", "-y", str(song)],
        deadline=time.monotonic() + DEADLINE_SECONDS,
    )

    with pytest.raises(UnreadableClip, match="no video stream"):
        probe_clip(song)


def test_a_passed_deadline_is_a_permanent_stitch_timeout(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "reel.mp4"

    with pytest.raises(StitchTimeout) as caught:
        stitch([clips["wide"], clips["tall"]], output, deadline=time.monotonic())

    assert caught.value.code == "stitch_timeout"
    assert not output.exists()


@pytest.mark.parametrize("order", [["wide", "tall"], ["wide", "wide_long"]], ids=["re", "copy"])
def test_ffmpeg_killed_at_the_deadline_leaves_no_partial_reel(
    clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: list[str]
) -> None:
    output = tmp_path / "reel.mp4"

    # The real ffmpeg, started with a deadline that has just passed, so it is killed mid-run
    # whatever the machine's speed; the output is written first so there is a partial file.
    def run_out_of_time(args: Sequence[str], *, deadline: float, **kwargs: Any) -> None:
        output.write_bytes(b"\0\0\0\x18ftypisom")
        ffmpeg.run_ffmpeg(args, deadline=time.monotonic(), **kwargs)

    monkeypatch.setattr(stitcher_module, "run_ffmpeg", run_out_of_time)

    with pytest.raises(StitchTimeout):
        join([clips[name] for name in order], output)

    assert sorted(tmp_path.iterdir()) == []


def test_other_ffmpeg_failures_carry_its_stderr_and_leave_nothing(
    clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "reel.mp4"

    def fail(args: Sequence[str], **_kwargs: Any) -> None:
        output.write_bytes(b"half a reel")
        raise ffmpeg.FfmpegFailed(1, "Error while filtering: Cannot allocate memory")

    monkeypatch.setattr(stitcher_module, "run_ffmpeg", fail)

    with pytest.raises(StitchError, match="Cannot allocate memory") as caught:
        join([clips["wide"], clips["tall"]], output)

    assert type(caught.value) is StitchError
    assert caught.value.code == "stitch_failed"
    assert not output.exists()


def test_no_clips_is_a_stitch_error(tmp_path: Path) -> None:
    with pytest.raises(StitchError):
        join([], tmp_path / "reel.mp4")


def test_the_output_cannot_overwrite_a_clip(clips: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="one of the clips"):
        join([clips["wide"], clips["tall"]], clips["tall"])


# --- probing -------------------------------------------------------------------------------


def test_probe_reads_size_rate_duration_and_audio_layout(clips: dict[str, Path]) -> None:
    wide = probe_clip(clips["wide"])
    silent = probe_clip(clips["silent"])

    assert (wide.width, wide.height, wide.fps) == (320, 180, 24.0)
    assert wide.duration_seconds == pytest.approx(1.0, abs=0.05)
    assert (wide.video_codec, wide.pixel_format) == ("h264", "yuv420p")
    assert (wide.audio_codec, wide.audio_sample_rate, wide.audio_channels) == ("aac", 44100, 1)
    assert (silent.audio_codec, silent.audio_sample_rate, silent.audio_channels) == (None,) * 3


def rotate(source: Path, degrees: int, output: Path) -> Path:
    """`source` with a display rotation, as phones store portrait video (pixels untouched)."""
    ffmpeg.run_ffmpeg(
        ["-display_rotation", str(degrees), "-i", str(source), "-c", "copy", str(output)],
        deadline=time.monotonic() + DEADLINE_SECONDS,
    )
    return output


@pytest.mark.parametrize("degrees", [0, 90, 180, 270, -90])
def test_rotation_read_from_the_header_is_what_decoding_reports(
    clips: dict[str, Path], tmp_path: Path, degrees: int
) -> None:
    rotated = rotate(clips["wide"], degrees, tmp_path / "rotated.mp4")
    with av.open(str(rotated)) as container:
        decoded = next(container.decode(container.streams.video[0])).rotation

    assert video_rotation(rotated) == decoded


def box(kind: bytes, body: bytes, *, large: bool = False) -> bytes:
    if large:  # size 1, then the real size in 64 bits
        return struct.pack(">I4sQ", 1, kind, 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def test_rotation_parser_reads_64_bit_sizes_and_version_1_track_headers(tmp_path: Path) -> None:
    # ffmpeg writes neither, other muxers do. The matrix a b u / c d v / x y w turns 90 degrees.
    matrix = struct.pack(">9i", 0, -0x10000, 0, 0x10000, 0, 0, 0, 0, 0x40000000)
    tkhd_v1 = bytes([1, 0, 0, 0]) + bytes(32) + bytes(16) + matrix + bytes(8)
    hdlr = bytes(8) + b"vide" + bytes(12)
    sound = box(
        b"trak", box(b"tkhd", bytes(40) + matrix) + box(b"mdia", box(b"hdlr", bytes(8) + b"soun"))
    )
    video = box(b"trak", box(b"tkhd", tkhd_v1) + box(b"mdia", box(b"hdlr", hdlr)))
    path = tmp_path / "made.mp4"
    path.write_bytes(
        box(b"ftyp", b"isom") + box(b"mdat", bytes(100), large=True) + box(b"moov", sound + video)
    )

    assert video_rotation(path) == 90


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"junk" * 100,
        struct.pack(">I4s", 4, b"moov"),
        struct.pack(">I4s", 999, b"moov") + bytes(8),
    ],
    ids=["empty", "junk", "size-below-header", "truncated"],
)
def test_rotation_parser_says_0_for_files_it_cannot_read(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "odd.mp4"
    path.write_bytes(content)

    assert video_rotation(path) == 0


def test_a_rotated_clip_reports_its_displayed_size(clips: dict[str, Path], tmp_path: Path) -> None:
    rotated = rotate(clips["wide"], 90, tmp_path / "rotated.mp4")

    info = probe_clip(rotated)

    assert (info.width, info.height, info.rotation) == (180, 320, 90)
    assert not can_copy([info, probe_clip(clips["wide"])])
    assert join([rotated, clips["wide"]], tmp_path / "reel.mp4").height == 320


def test_a_clip_in_another_container_gets_the_full_probe(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    matroska = tmp_path / "wide.mkv"
    ffmpeg.run_ffmpeg(
        ["-i", str(clips["wide"]), "-c", "copy", str(matroska)],
        deadline=time.monotonic() + DEADLINE_SECONDS,
    )

    found, original = probe_clip(matroska), probe_clip(clips["wide"])

    # Matroska keeps no per-stream duration; the container's also counts the audio's tail.
    assert found.duration_seconds == pytest.approx(original.duration_seconds, abs=0.05)
    assert found == dataclasses.replace(
        original, path=matroska, duration_seconds=found.duration_seconds
    )


def test_h264_that_is_not_8_bit_420_is_never_copied(tmp_path: Path) -> None:
    # High 4:4:4 plays in few browsers; the header-only probe cannot name it, so it is
    # re-encoded, and the reel comes out 4:2:0.
    full_chroma = tmp_path / "444.mp4"
    ffmpeg.run_ffmpeg(
        [
            *("-f", "lavfi", "-i", "testsrc2=s=320x180:r=24:d=0.5"),
            *("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p"),
            str(full_chroma),
        ],
        deadline=time.monotonic() + DEADLINE_SECONDS,
    )

    assert probe_clip(full_chroma).pixel_format is None
    result = join([full_chroma, full_chroma], tmp_path / "reel.mp4")
    assert result.mode == "reencode"
    assert probe(result.path).pixel_format == "yuv420p"


# --- can_copy (pure) -----------------------------------------------------------------------

BASE = ClipInfo(
    path=Path("a.mp4"),
    width=1280,
    height=720,
    fps=24.0,
    duration_seconds=8.0,
    video_codec="h264",
    pixel_format="yuv420p",
    audio_codec="aac",
    audio_sample_rate=48000,
    audio_channels=2,
    codec_fingerprint="f1",
)
NO_AUDIO: dict[str, Any] = {"audio_codec": None, "audio_sample_rate": None, "audio_channels": None}


@pytest.mark.parametrize(
    ("first", "other", "expected"),
    [
        ({}, {}, True),
        ({}, {"path": Path("b.mp4"), "duration_seconds": 3.0}, True),  # length may differ
        ({}, {"fps": 24.004}, True),  # measured rates wobble in far decimals
        (NO_AUDIO, NO_AUDIO, True),
        ({}, {"width": 1920}, False),
        ({}, {"height": 1080}, False),
        ({}, {"fps": 30.0}, False),
        ({}, {"pixel_format": "yuvj420p"}, False),
        ({}, {"video_codec": "hevc"}, False),
        ({"video_codec": "hevc"}, {"video_codec": "hevc"}, False),  # not for browsers
        ({"pixel_format": "yuv444p"}, {"pixel_format": "yuv444p"}, False),
        ({}, NO_AUDIO, False),
        (NO_AUDIO, {"audio_codec": "aac", "audio_sample_rate": 48000, "audio_channels": 2}, False),
        ({}, {"audio_sample_rate": 44100}, False),
        ({}, {"audio_channels": 1}, False),
        ({}, {"audio_codec": "mp3"}, False),
        ({"audio_codec": "opus"}, {"audio_codec": "opus"}, False),
        ({}, {"rotation": 90}, False),
        ({}, {"codec_fingerprint": "f2"}, False),  # other SPS/PPS: undecodable after a copy
    ],
)
def test_can_copy_truth_table(first: dict[str, Any], other: dict[str, Any], expected: bool) -> None:
    head = dataclasses.replace(BASE, **first)
    tail = dataclasses.replace(head, **other)

    assert can_copy([head, head, tail]) is expected


def test_can_copy_needs_at_least_one_clip_and_one_copyable_clip_is_enough() -> None:
    assert can_copy([]) is False
    assert can_copy([BASE]) is True


# --- the re-encode's canvas and the concat list (pure) -------------------------------------


@pytest.mark.parametrize(
    ("first", "canvas"),
    [
        ({}, Canvas(1280, 720, Fraction(24))),
        ({"width": 721, "height": 405}, Canvas(720, 404, Fraction(24))),  # even sides
        ({"width": 3840, "height": 2160}, Canvas(1920, 1080, Fraction(24))),  # capped
        ({"width": 2160, "height": 3840}, Canvas(1080, 1920, Fraction(24))),
        ({"fps": 30000 / 1001}, Canvas(1280, 720, Fraction(30000, 1001))),
        ({"fps": 0.0}, Canvas(1280, 720, Fraction(30))),  # unknown rate
        ({"fps": 1000.0}, Canvas(1280, 720, Fraction(30))),  # a bogus rate
    ],
)
def test_canvas_is_the_first_clips_size_and_rate(first: dict[str, Any], canvas: Canvas) -> None:
    other = dataclasses.replace(BASE, width=640, height=640, fps=60.0)

    assert choose_canvas([dataclasses.replace(BASE, **first), other]) == canvas


def test_concat_list_quotes_paths_and_rejects_line_breaks(tmp_path: Path) -> None:
    listing = concat_list([tmp_path / "it's.mp4"])

    assert listing.splitlines()[1] == f"file '{tmp_path}/it'\\''s.mp4'"
    with pytest.raises(ValueError, match="line break"):
        concat_list([tmp_path / "two\nlines.mp4"])
