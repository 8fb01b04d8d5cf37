"""Planning a reel: the caller's clips, each checked, become the `ReelRequest` it is made from."""

from __future__ import annotations

from shared.creations import CreationReader, owned_draft
from shared.creations.requests import ReelRequest
from shared.intake.parsing import ReelBody


def plan_reel(body: ReelBody, user_id: str, creations: CreationReader) -> ReelRequest:
    """Each clip must be the caller's own `video` in `draft` (read together, once).

    Raises `NotFound` (another user's clip, or none) or `InvalidRequest` (not a video draft),
    naming the clip (`clips[1]: ...`).
    """
    found = creations.get_many(body.clips)
    sources: list[str] = []
    total_seconds = 0.0
    for index, clip_id in enumerate(body.clips):
        clip = owned_draft(
            found.get(clip_id),
            clip_id,
            user_id,
            field=f"clips[{index}]",
            kind="video",
            noun="a video",
            use="video drafts can be stitched",
        )
        sources.append(str(clip.media[0]["uri"]))
        total_seconds += float(clip.media[0].get("duration_seconds") or 0)
    return ReelRequest(
        clips=body.clips,
        sources=sources,
        duration_seconds=round(total_seconds, 3),
        title=body.title,
    )
