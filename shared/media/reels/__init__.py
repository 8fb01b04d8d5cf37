"""Reel Maker's media engine: probe clips and join them into one MP4 (see `stitcher`)."""

from shared.media.reels.clips import ClipInfo, can_copy, probe_clip
from shared.media.reels.errors import StitchError, StitchTimeout, UnreadableClip
from shared.media.reels.stitcher import StitchResult, stitch

__all__ = [
    "ClipInfo",
    "StitchError",
    "StitchResult",
    "StitchTimeout",
    "UnreadableClip",
    "can_copy",
    "probe_clip",
    "stitch",
]
