"""Media: where it is stored, and everything that makes or reads it.

    storage     media objects in Cloud Storage (`media/{uid}/{creation}/...`)
    urls        download links for media: V4 signed URLs added to each API answer
    probe       what a media file really is (PyAV; only `generate` and `stitch` ship it)
    ffmpeg      running the ffmpeg binary with progress and a deadline (imageio-ffmpeg)
    providers/  who makes images and videos: offline (default) or Google's models
    reels/      Reel Maker: joining video drafts into one reel

Only `storage` and `urls` are exported here: every function may load this package, and the
other modules need libraries only the media functions ship (import them by module).
"""

from shared.media.storage import (
    GcsMediaStore,
    MediaSettler,
    MediaStore,
    attempt_prefix,
    attempt_scope,
    media_prefix,
    split_gs_uri,
    staging_prefix,
)
from shared.media.urls import MediaLinks, SignedMediaUrls, signing_from

__all__ = [
    "GcsMediaStore",
    "MediaLinks",
    "MediaSettler",
    "MediaStore",
    "SignedMediaUrls",
    "attempt_prefix",
    "attempt_scope",
    "media_prefix",
    "signing_from",
    "split_gs_uri",
    "staging_prefix",
]
