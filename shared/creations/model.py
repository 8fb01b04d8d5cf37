"""The contract's data: the `POST /v1/creations` body, the creation document, ledger entries."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.core.errors import InvalidRequest
from shared.core.settings import Settings

CreationType = Literal["image", "video", "reel"]
Status = Literal["pending", "processing", "draft", "failed", "canceled"]

FINAL_STATUSES: frozenset[str] = frozenset({"draft", "failed", "canceled"})
REFUNDABLE_STATUSES: frozenset[str] = frozenset({"failed", "canceled"})

# The state machine of the contract: status -> the statuses it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"processing", "failed", "canceled"}),
    "processing": frozenset({"draft", "failed"}),
    "draft": frozenset(),
    "failed": frozenset(),
    "canceled": frozenset(),
}

IMAGE_ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
VIDEO_ASPECT_RATIOS = ("16:9", "9:16", "1:1")
MAX_PROMPT_CHARS = 2000
SEED_MAX = 2**32 - 1  # Veo and Imagen take an unsigned 32-bit seed.
CREATION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # the same rule as the API's path converter


def can_move(current: str, wanted: str) -> bool:
    return wanted in TRANSITIONS.get(current, frozenset())


class CreationRequest(BaseModel):
    """The `POST /v1/creations` body as the contract defines it. Unknown fields are rejected."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal["image", "video"]
    prompt: str
    negative_prompt: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4"] | None = None
    duration_seconds: int | None = Field(default=None, ge=4, le=8)
    count: int | None = Field(default=None, ge=1, le=4)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)

    @field_validator("prompt")
    @classmethod
    def _prompt_is_trimmed_and_bounded(cls, value: str) -> str:
        trimmed = value.strip()
        if not trimmed:
            raise ValueError("must not be empty")
        if len(trimmed) > MAX_PROMPT_CHARS:
            raise ValueError(f"must be at most {MAX_PROMPT_CHARS} characters")
        return trimmed

    @model_validator(mode="after")
    def _options_fit_the_type(self) -> CreationRequest:
        if self.type == "image":
            if self.duration_seconds is not None:
                raise _field_error("duration_seconds", "applies to videos only")
        else:
            if self.count is not None:
                raise _field_error("count", "applies to images only")
            if self.aspect_ratio is not None and self.aspect_ratio not in VIDEO_ASPECT_RATIOS:
                raise _field_error("aspect_ratio", f"videos take one of {VIDEO_ASPECT_RATIOS}")
        return self


class _FieldRuleError(ValueError):
    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


def _field_error(field: str, rule: str) -> _FieldRuleError:
    return _FieldRuleError(field, rule)


def parse_creation_request(body: Any, settings: Settings) -> dict[str, Any]:
    """Validate a request body; return the normalised request stored on the creation.

    Raises `InvalidRequest` whose message names the offending field.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("body: must be a JSON object")
    try:
        request = CreationRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None
    model = request.model or (
        settings.default_image_model if request.type == "image" else settings.default_video_model
    )
    if settings.allowed_models.get(model) != request.type:
        allowed = sorted(m for m, kind in settings.allowed_models.items() if kind == request.type)
        raise InvalidRequest(
            f"model: {model!r} is not allowed for {request.type}; use one of {allowed}"
        )
    normalised: dict[str, Any] = {
        "prompt": request.prompt,
        "model": model,
        "aspect_ratio": request.aspect_ratio or ("1:1" if request.type == "image" else "16:9"),
    }
    if request.type == "image":
        normalised["count"] = request.count or 1
    else:
        normalised["duration_seconds"] = request.duration_seconds or 8
    if request.negative_prompt:
        normalised["negative_prompt"] = request.negative_prompt
    if request.seed is not None:
        normalised["seed"] = request.seed
    return normalised


MIN_REEL_CLIPS = 2
MAX_REEL_CLIPS = 20
MAX_TITLE_CHARS = 200


class ReelRequest(BaseModel):
    """The `POST /v1/reels` body. A clip may appear more than once (a repeated shot)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    clips: list[str] = Field(min_length=MIN_REEL_CLIPS, max_length=MAX_REEL_CLIPS)
    title: str | None = None

    @field_validator("clips")
    @classmethod
    def _clip_ids_look_like_ids(cls, value: list[str]) -> list[str]:
        for index, clip in enumerate(value):
            if not CREATION_ID.fullmatch(clip):
                raise _field_error(f"clips[{index}]", "is not a creation id")
        return value

    @field_validator("title")
    @classmethod
    def _title_is_trimmed_and_bounded(cls, value: str | None) -> str | None:
        if value is None:
            return None
        trimmed = value.strip()
        if not trimmed or len(trimmed) > MAX_TITLE_CHARS:
            raise ValueError(f"must be 1-{MAX_TITLE_CHARS} characters after trimming")
        return trimmed


def parse_reel_request(body: Any) -> ReelRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("body: must be a JSON object")
    try:
        return ReelRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None


def creation_cost(kind: str, request: dict[str, Any], settings: Settings) -> int:
    """Tokens a request costs, from the pricing table."""
    pricing = settings.pricing
    model_price = pricing.model_unit_tokens.get(str(request.get("model")))
    if kind == "image":
        return int(request["count"]) * (model_price or pricing.image_tokens_per_image)
    if kind == "video":
        return int(request["duration_seconds"]) * (model_price or pricing.video_tokens_per_second)
    if kind == "reel":
        return pricing.reel_tokens
    raise ValueError(f"unknown creation type {kind!r}")


def _describe(exc: ValidationError) -> str:
    """One readable line naming the first broken field."""
    error = exc.errors()[0]
    context_error = error.get("ctx", {}).get("error")
    if isinstance(context_error, _FieldRuleError):
        return str(context_error)
    field = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown field"
    if error["type"] == "missing":
        return f"{field}: is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"{field}: {message}"


class Creation(BaseModel):
    """A `creations/{id}` document as read back from Firestore."""

    model_config = ConfigDict(extra="ignore")

    id: str
    user_id: str
    type: CreationType
    status: Status
    progress: int = 0
    request: dict[str, Any] = Field(default_factory=dict)
    cost: int
    media: list[dict[str, Any]] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    refunded: bool = False
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None

    def to_api(self) -> dict[str, Any]:
        """The creation as the HTTP API shows it (timestamps as RFC 3339 strings)."""
        return self.model_dump(mode="json")
