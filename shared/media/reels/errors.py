"""Why a stitch failed. Every failure is permanent: the creation fails and its tokens return.

They are `ProviderPermanent`s, so the generation worker records them and acks instead of
asking Pub/Sub to redeliver:

- `UnreadableClip`: a clip is not a video we can read; it will not become one on retry.
- `StitchTimeout`: the deadline passed while ffmpeg was joining. The deadline is the
  function's hard timeout, and the work (decoding and encoding every clip) is the same on the
  next delivery, so a retry would burn another full attempt and time out again. Failing at
  once refunds the user sooner. (Contrast `ProviderTimeout`, which is transient: a model API
  may answer faster next time; our own encoder will not.)
- `StitchError` itself: ffmpeg failed for another reason; the message ends with its stderr.
"""

from __future__ import annotations

from shared.media.providers.base import ProviderPermanent


class StitchError(ProviderPermanent, code="stitch_failed"):
    """The clips could not be joined into a reel."""


class UnreadableClip(StitchError, code="clip_unreadable"):
    """A clip cannot be opened or probed, or has no video stream."""


class StitchTimeout(StitchError, code="stitch_timeout"):
    """The deadline passed before the reel was written (see the module docstring)."""
