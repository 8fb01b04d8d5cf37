"""What a creation costs, in tokens, from the deployment's pricing table (`PRICING`).

`creation_cost` is what a submit debits; `unit_tokens` is the one unit price it uses, which
the price list clients read (`shared.intake.prices`) shows too.
"""

from __future__ import annotations

from typing import Literal

from shared.core.settings import Settings
from shared.creations.requests import ImageRequest, StoredRequest, VideoRequest

# What a model's unit price is per: each image, or each second of video.
UNIT_OF_TYPE: dict[str, Literal["image", "second"]] = {"image": "image", "video": "second"}


def unit_tokens(model: str, kind: str, settings: Settings) -> int:
    """The unit price of `model` (a `kind` model): its own, else its type's default."""
    pricing = settings.pricing
    default = pricing.image_tokens_per_image if kind == "image" else pricing.video_tokens_per_second
    return pricing.model_unit_tokens.get(model, default)


def creation_cost(request: StoredRequest, settings: Settings) -> int:
    """Images: per image; videos: per second; a model may have its own unit price. Reels: flat."""
    if isinstance(request, ImageRequest):
        return request.count * unit_tokens(request.model, "image", settings)
    if isinstance(request, VideoRequest):
        return request.duration_seconds * unit_tokens(request.model, "video", settings)
    return settings.pricing.reel_tokens
