"""What clients read to know a cost before they ask: the price list and the estimate.

`price_list` is the `GET /v1/pricing` body: the deployment's pricing table (`PRICING`) per
allowed model, with the sizes and defaults a body may use, so cost = unit price x size can be
computed by a client. `estimate` is the `POST /v1/creations:estimate` (and `/v1/reels:estimate`)
answer: the cost of a request parsed exactly as a submit parses it, against the caller's balance.
Neither writes anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.core.settings import Settings
from shared.creations import requests as rules
from shared.creations.requests import StoredRequest
from shared.intake.parsing import DEFAULT_COUNT, DEFAULT_VIDEO_SECONDS
from shared.money.pricing import UNIT_OF_TYPE, creation_cost, unit_tokens

# A deployment's prices change only with its settings (a new revision): clients may keep the
# list a few minutes. `private`: it is an authenticated answer, not for shared caches.
PRICE_LIST_CACHE_CONTROL = "private, max-age=300"


def price_list(settings: Settings) -> dict[str, Any]:
    """Every allowed model with its type, unit and unit price; the reel price; the default
    models; the sizes a request may ask for (with the size a body that names none gets)."""
    defaults = {"image": settings.default_image_model, "video": settings.default_video_model}
    return {
        "currency": "tokens",
        "models": [
            {
                "model": model,
                "type": kind,
                "unit": UNIT_OF_TYPE[kind],
                "unit_tokens": unit_tokens(model, kind, settings),
                "default": defaults[kind] == model,
            }
            for model, kind in sorted(settings.allowed_models.items())
        ],
        "defaults": defaults,
        "reel": {"tokens": settings.pricing.reel_tokens},
        "limits": {
            "count": {"min": 1, "max": rules.MAX_IMAGES, "default": DEFAULT_COUNT},
            "duration_seconds": {
                "min": rules.MIN_VIDEO_SECONDS,
                "max": rules.MAX_VIDEO_SECONDS,
                "default": DEFAULT_VIDEO_SECONDS,
            },
            "clips": {"min": rules.MIN_REEL_CLIPS, "max": rules.MAX_REEL_CLIPS},
        },
    }


def price_list_etag(body: dict[str, Any]) -> str:
    """A strong ETag of the list (unquoted): the same settings give the same tag on every
    instance."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(canonical).hexdigest()[:32]


@dataclass(frozen=True)
class Estimate:
    """What `request` would debit, the caller's balance now, and whether it covers the cost."""

    cost: int
    balance: int

    @property
    def enough(self) -> bool:
        return self.balance >= self.cost

    def view(self) -> dict[str, Any]:
        return {"cost": self.cost, "balance": self.balance, "enough": self.enough}


def estimate(request: StoredRequest, balance: int, settings: Settings) -> Estimate:
    """The cost a submit of `request` debits (`creation_cost`, the very same function)."""
    return Estimate(cost=creation_cost(request, settings), balance=balance)
