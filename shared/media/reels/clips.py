"""What each clip is, read from the file, and whether a set of clips may be joined untouched.

Joining without re-encoding (the concat demuxer with stream copy) is only correct when every
clip could have come out of the same encoder run: an MP4 track has a single sample
description, taken from the first clip, so the others must match it exactly, not just look
alike. `can_copy` is that test; anything it refuses is re-encoded instead.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
from av.video.codeccontext import VideoCodecContext

from shared.media.probe import stream_duration_seconds
from shared.media.reels.errors import UnreadableClip
from shared.media.reels.mp4_rotation import video_rotation

# What a browser plays in an MP4: the copy path must already be this, the re-encode makes it.
COPY_VIDEO_CODEC = "h264"
COPY_PIXEL_FORMAT = "yuv420p"
COPY_AUDIO_CODEC = "aac"
# `average_rate` is measured from timestamps, so the "same" rate may differ in far decimals.
FPS_TOLERANCE = 0.01
# Stop libavformat's stream probe after the header: read 32 bytes of packets at most and
# decode none of them (see `probe_clip`).
HEADER_ONLY = {"probesize": "32", "skip_frame": "all"}
MP4_DEMUXER = "mov,mp4,m4a,3gp,3g2,mj2"  # libavformat's one demuxer for the MP4/MOV family
# profile_idc of H.264 Baseline, Main, Extended and High (the constrained variants share them).
H264_420_8BIT_PROFILES = frozenset({66, 77, 88, 100})


@dataclass(frozen=True)
class ClipInfo:
    """One clip as a viewer sees it.

    `width` and `height` are the displayed size, i.e. after the clip's rotation (a phone's
    portrait video is often stored landscape with a 90-degree display rotation).
    `duration_seconds` is the video stream's. The last two fields only serve `can_copy`:
    `rotation` (degrees, as the file says) and `codec_fingerprint`, a digest of the video and
    audio decoder configuration (H.264 SPS/PPS, AAC AudioSpecificConfig), which must be
    identical for a stream copy to be decodable past the first clip.
    """

    path: Path
    width: int
    height: int
    fps: float
    duration_seconds: float
    video_codec: str
    pixel_format: str | None
    audio_codec: str | None
    audio_sample_rate: int | None
    audio_channels: int | None
    rotation: int = 0
    codec_fingerprint: str | None = None


def probe_clip(path: Path) -> ClipInfo:
    """Read `path`'s first video stream (and first audio stream, if any). Decodes nothing.

    For MP4/MOV (every clip Reel Maker makes or receives) only the header is read: it holds
    every field here, and letting libavformat also decode the first frames to confirm them
    (its default) costs 15-30 ms a clip against about 1 ms, as much as a whole stream copy
    of the clip. Other containers get libavformat's full probe, and count as unrotated.
    Raises `UnreadableClip`.
    """
    try:
        container = av.open(str(path), options=HEADER_ONLY)
        is_mp4 = container.format.name == MP4_DEMUXER
        if not is_mp4:
            container.close()
            container = av.open(str(path))
        with container:
            if not container.streams.video:
                raise UnreadableClip(f"{path.name}: no video stream")
            video = container.streams.video[0]
            audio = container.streams.audio[0] if container.streams.audio else None
            duration = stream_duration_seconds(video.duration, video.time_base, container.duration)
            if duration <= 0 or not video.width or not video.height:
                # Nothing to show, or no length to pace progress or a silent track by.
                raise UnreadableClip(f"{path.name}: the video has no size or no duration")
            rotation = video_rotation(path) if is_mp4 else 0
            width, height = video.width, video.height
            if rotation % 180:
                width, height = height, width
            fingerprint = hashlib.sha256(video.codec_context.extradata or b"")
            if audio is not None:
                fingerprint.update(b"\0audio\0" + (audio.codec_context.extradata or b""))
            return ClipInfo(
                path=path,
                width=width,
                height=height,
                fps=float(video.average_rate) if video.average_rate else 0.0,
                duration_seconds=duration,
                video_codec=video.codec_context.name,
                pixel_format=_pixel_format(video.codec_context),
                audio_codec=audio.codec_context.name if audio is not None else None,
                audio_sample_rate=audio.codec_context.sample_rate if audio is not None else None,
                audio_channels=audio.codec_context.channels if audio is not None else None,
                rotation=rotation,
                codec_fingerprint=fingerprint.hexdigest(),
            )
    except (av.FFmpegError, OSError) as exc:
        # av's errors also derive from OSError; a plain OSError is e.g. a directory.
        raise UnreadableClip(f"{path.name}: {exc}") from exc


def _pixel_format(codec: VideoCodecContext) -> str | None:
    """The decoder's pixel format, or for H.264 the one its profile implies; else None.

    A header-only open leaves the format unknown (it is found by decoding). H.264 names its
    profile in the first bytes of its configuration record (avcC), and Baseline, Main,
    Extended and High streams are 8-bit 4:2:0 by definition. (High also allows monochrome,
    which no camera or model we take clips from writes; full-range 4:2:0, which ffmpeg calls
    yuvj420p, counts as yuv420p: browsers play both.) Unknown means re-encode: always safe.
    """
    if codec.pix_fmt:
        return codec.pix_fmt
    config = codec.extradata or b""
    if codec.name == "h264" and len(config) > 1 and config[0] == 1:  # avcC version 1
        return "yuv420p" if config[1] in H264_420_8BIT_PROFILES else None
    return None


def can_copy(clips: Sequence[ClipInfo]) -> bool:
    """Whether `clips` can be joined by stream copy (see the module docstring).

    True when every clip is H.264 yuv420p of one size, frame rate and rotation with the same
    codec configuration, and either none has audio or all have AAC of one rate and channel
    count. False for an empty list.
    """
    if not clips:
        return False
    first = clips[0]
    if first.video_codec != COPY_VIDEO_CODEC or first.pixel_format != COPY_PIXEL_FORMAT:
        return False
    if first.audio_codec not in (None, COPY_AUDIO_CODEC):
        return False
    return all(_same_streams(first, clip) for clip in clips[1:])


def _same_streams(first: ClipInfo, clip: ClipInfo) -> bool:
    return (
        clip.video_codec == first.video_codec
        and clip.pixel_format == first.pixel_format
        and (clip.width, clip.height, clip.rotation) == (first.width, first.height, first.rotation)
        and math.isclose(clip.fps, first.fps, abs_tol=FPS_TOLERANCE)
        and clip.audio_codec == first.audio_codec
        and clip.audio_sample_rate == first.audio_sample_rate
        and clip.audio_channels == first.audio_channels
        and clip.codec_fingerprint == first.codec_fingerprint
    )
