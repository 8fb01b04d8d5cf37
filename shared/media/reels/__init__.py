"""Reel Maker: join a reel's video drafts into one MP4 with ffmpeg (the `stitch` function).

maker         the provider behind `stitch`: fetch the clips, join them, return the reel
stitcher      joining clips: stream copy when they match, one normalising re-encode if not
clips         what each clip is (read from its header) and whether a set may be copied
commands      the two ffmpeg command lines
mp4_rotation  a clip's display rotation, read from its MP4 header
errors        why a stitch failed (all permanent)
"""

from shared.media.reels.clips import ClipInfo, can_copy, probe_clip
from shared.media.reels.errors import StitchError, StitchTimeout, UnreadableClip
from shared.media.reels.maker import ReelMaker
from shared.media.reels.stitcher import StitchResult, stitch

__all__ = [
    "ClipInfo",
    "ReelMaker",
    "StitchError",
    "StitchResult",
    "StitchTimeout",
    "UnreadableClip",
    "can_copy",
    "probe_clip",
    "stitch",
]
