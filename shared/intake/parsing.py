"""The bodies of `POST /v1/creations` and `POST /v1/reels`, checked once, by the contract's rules.

A creation body becomes the typed request stored on the creation (`ImageRequest` or
`VideoRequest`, defaults filled in; a video's `image` is looked up by the caller's
`shared.intake.source_images`, once the body itself is known to be good); a reel body
becomes a `ReelRequest` once its clips are checked (`shared.intake.reels`). Either may ask for
a `webhook` (`shared.webhooks`): its shape is checked here, its address by `checked_webhook`.
Every refusal is `InvalidRequest` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from shared.core.errors import InvalidRequest
from shared.core.settings import Settings
from shared.creations import requests as rules
from shared.creations.model import is_creation_id
from shared.creations.requests import ImageRequest, MediaRequest, SourceImage, VideoRequest
from shared.webhooks import Resolver, UnsafeWebhookUrl, WebhookBody, check_target

DEFAULT_ASPECT_RATIO: dict[str, Any] = {"image": "1:1", "video": "16:9"}
DEFAULT_COUNT = 1
DEFAULT_VIDEO_SECONDS = rules.MAX_VIDEO_SECONDS
DEFAULT_IMAGE_INDEX = 0

# Finds the caller's image draft `image` and its image `image_index` (raising `NotFound` or
# `InvalidRequest` naming the field): `shared.intake.source_images.SourceImages.find`.
FindSourceImage = Callable[[str, int], SourceImage]


def _image_id(value: str) -> str:
    if not is_creation_id(value):
        raise rules.FieldRuleError("image", "is not a creation id")
    return value


ImageId = Annotated[str, AfterValidator(_image_id)]


class _Body(BaseModel):
    # Unknown fields are refused; "8" is not a number and `true` is not a count.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CreationBody(_Body):
    """The `POST /v1/creations` body as the contract defines it."""

    type: Literal["image", "video"]
    prompt: rules.Prompt
    negative_prompt: rules.NegativePrompt | None = None
    aspect_ratio: rules.ImageAspectRatio | None = None
    duration_seconds: rules.VideoSeconds | None = None
    count: rules.ImageCount | None = None
    model: rules.ModelName | None = None
    seed: rules.Seed | None = None
    # A video from one of the caller's image drafts: its id, and which of its images.
    image: ImageId | None = None
    image_index: rules.ImageIndex | None = None
    webhook: WebhookBody | None = None

    @model_validator(mode="after")
    def _options_fit_the_type(self) -> CreationBody:
        if self.type == "image":
            if self.duration_seconds is not None:
                raise rules.FieldRuleError("duration_seconds", "applies to videos only")
            for field in ("image", "image_index"):
                if getattr(self, field) is not None:
                    raise rules.FieldRuleError(field, "applies to videos only")
        else:
            if self.count is not None:
                raise rules.FieldRuleError("count", "applies to images only")
            if self.aspect_ratio is not None and self.aspect_ratio not in rules.VIDEO_ASPECT_RATIOS:
                raise rules.FieldRuleError(
                    "aspect_ratio", f"videos take one of {rules.VIDEO_ASPECT_RATIOS}"
                )
            if self.image_index is not None and self.image is None:
                raise rules.FieldRuleError("image_index", "applies only with image")
        return self


class ReelBody(_Body):
    """The `POST /v1/reels` body. A clip may appear more than once (a repeated shot)."""

    clips: rules.ClipIds
    title: rules.Title | None = None
    webhook: WebhookBody | None = None


B = TypeVar("B", bound=_Body)


def parse_creation_request(
    body: Any, settings: Settings, *, find_source_image: FindSourceImage | None = None
) -> MediaRequest:
    """The request a `POST /v1/creations` body asks for, defaults filled in.

    A body naming an `image` needs `find_source_image`, asked only once every field of the body
    is good (so a body that is wrong anyway is a 400 whatever its image).
    """
    parsed = _parsed(CreationBody, body)
    model = parsed.model or (
        settings.default_image_model if parsed.type == "image" else settings.default_video_model
    )
    if settings.allowed_models.get(model) != parsed.type:
        allowed = sorted(m for m, kind in settings.allowed_models.items() if kind == parsed.type)
        raise InvalidRequest(
            f"model: {model!r} is not allowed for {parsed.type}; use one of {allowed}"
        )
    common: dict[str, Any] = {
        "prompt": parsed.prompt,
        "model": model,
        "aspect_ratio": parsed.aspect_ratio or DEFAULT_ASPECT_RATIO[parsed.type],
        "negative_prompt": parsed.negative_prompt or None,
        "seed": parsed.seed,
    }
    if parsed.type == "image":
        return ImageRequest(**common, count=parsed.count or DEFAULT_COUNT)
    source_image = None
    if parsed.image is not None:
        if find_source_image is None:
            raise InvalidRequest("image: videos from an image are not taken here")
        source_image = find_source_image(parsed.image, parsed.image_index or DEFAULT_IMAGE_INDEX)
    return VideoRequest(
        **common,
        duration_seconds=parsed.duration_seconds or DEFAULT_VIDEO_SECONDS,
        source_image=source_image,
    )


def parse_reel_body(body: Any) -> ReelBody:
    return _parsed(ReelBody, body)


def parse_webhook(body: Any) -> WebhookBody | None:
    """The `webhook` a `POST /v1/creations` or `POST /v1/reels` body asks for, if any (its
    shape only: the whole body has been checked by its own parser first)."""
    webhook = body.get("webhook") if isinstance(body, dict) else None
    if webhook is None:
        return None
    return rules.validated(
        _WebhookField, {"webhook": webhook}, InvalidRequest, "body: must be a JSON object"
    ).webhook


def checked_webhook(
    webhook: WebhookBody | None, *, resolver: Resolver, allow_loopback: bool
) -> WebhookBody | None:
    """`webhook` if its URL may be sent to (`shared.webhooks.targets`), else `InvalidRequest`
    naming `webhook.url`. Decided on the resolved addresses; nothing is sent."""
    if webhook is None:
        return None
    try:
        check_target(webhook.url, resolver=resolver, allow_loopback=allow_loopback)
    except UnsafeWebhookUrl as refusal:
        raise InvalidRequest(f"webhook.url: {refusal}") from None
    return webhook


class _WebhookField(_Body):
    webhook: WebhookBody


def _parsed(model: type[B], body: Any) -> B:
    return rules.validated(model, body, InvalidRequest, "body: must be a JSON object")
