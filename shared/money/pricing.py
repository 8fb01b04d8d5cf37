"""What a creation costs, in tokens, from the deployment's pricing table (`PRICING`)."""

from __future__ import annotations

from shared.core.settings import Settings
from shared.creations.requests import ImageRequest, StoredRequest, VideoRequest


def creation_cost(request: StoredRequest, settings: Settings) -> int:
    """Images: per image; videos: per second; a model may have its own unit price. Reels: flat."""
    pricing = settings.pricing
    if isinstance(request, ImageRequest):
        unit = pricing.model_unit_tokens.get(request.model, pricing.image_tokens_per_image)
        return request.count * unit
    if isinstance(request, VideoRequest):
        unit = pricing.model_unit_tokens.get(request.model, pricing.video_tokens_per_second)
        return request.duration_seconds * unit
    return pricing.reel_tokens
