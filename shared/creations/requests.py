"""What a creation was asked to make: one typed, normalised request per creation type.

`submit` builds one of these from the HTTP body (`shared.intake.parsing`), stores it on the
creation as its `request` map (`document_of`), and the worker reads it back with
`stored_request` and hands it to the provider. The rules here are the contract's, so a stored
request that breaks them (an old version's, a hand edit) fails the creation with
`invalid_request` instead of reaching a paid model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from shared.core.errors import PermanentError
from shared.creations.model import CREATION_ID, CreationIdField, CreationType

ImageAspectRatio = Literal["16:9", "9:16", "1:1", "4:3", "3:4"]
VideoAspectRatio = Literal["16:9", "9:16", "1:1"]
IMAGE_ASPECT_RATIOS: Final[tuple[str, ...]] = get_args(ImageAspectRatio)
VIDEO_ASPECT_RATIOS: Final[tuple[str, ...]] = get_args(VideoAspectRatio)

MAX_PROMPT_CHARS: Final = 2000
SEED_LIMIT: Final = 2**32  # Veo and Imagen take an unsigned 32-bit seed
MAX_IMAGES: Final = 4
MIN_VIDEO_SECONDS, MAX_VIDEO_SECONDS = 4, 8
MIN_REEL_CLIPS, MAX_REEL_CLIPS = 2, 20
MAX_TITLE_CHARS: Final = 200


def _creation_ids(value: list[str]) -> list[str]:
    for index, clip in enumerate(value):
        if not CREATION_ID.fullmatch(clip):
            raise FieldRuleError(f"clips[{index}]", "is not a creation id")
    return value


# A reel's clips, in order: 2-20 creation ids (one may appear more than once: a repeated shot).
ClipIds = Annotated[
    list[str],
    Field(min_length=MIN_REEL_CLIPS, max_length=MAX_REEL_CLIPS),
    AfterValidator(_creation_ids),
]


def trimmed_prompt(value: str) -> str:
    trimmed = value.strip()
    if not trimmed:
        raise ValueError("must not be empty")
    if len(trimmed) > MAX_PROMPT_CHARS:
        raise ValueError(f"must be at most {MAX_PROMPT_CHARS} characters")
    return trimmed


def trimmed_title(value: str) -> str:
    trimmed = value.strip()
    if not trimmed or len(trimmed) > MAX_TITLE_CHARS:
        raise ValueError(f"must be 1-{MAX_TITLE_CHARS} characters after trimming")
    return trimmed


# The rules of the fields a body and a stored request share (`shared.intake.parsing`).
Prompt = Annotated[str, AfterValidator(trimmed_prompt)]  # trimmed, then 1-2000 characters
Title = Annotated[str, AfterValidator(trimmed_title)]  # trimmed, then 1-200 characters
NegativePrompt = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]
ModelName = Annotated[str, Field(min_length=1, max_length=200)]
Seed = Annotated[int, Field(ge=0, le=SEED_LIMIT - 1)]
ImageCount = Annotated[int, Field(ge=1, le=MAX_IMAGES)]
VideoSeconds = Annotated[int, Field(ge=MIN_VIDEO_SECONDS, le=MAX_VIDEO_SECONDS)]


class StoredRequestInvalid(PermanentError, code="invalid_request"):
    """The creation's stored request breaks the rules; the message names the field."""


class _Stored(BaseModel):
    # Strict: a stored "8" is not a duration and `true` is not a count.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    TYPE: ClassVar[CreationType]


class _Prompted(_Stored):
    prompt: Prompt
    model: ModelName
    negative_prompt: NegativePrompt | None = None
    seed: Seed | None = None


class ImageRequest(_Prompted):
    TYPE: ClassVar[CreationType] = "image"

    aspect_ratio: ImageAspectRatio
    count: ImageCount


# Which of a draft's images (from 0); a draft has at most MAX_IMAGES.
ImageIndex = Annotated[int, Field(ge=0, lt=MAX_IMAGES)]
GsUri = Annotated[str, Field(pattern=r"^gs://[^/]+/.+$", max_length=2048)]
ImageMimeType = Annotated[str, Field(pattern=r"^image/[a-z0-9.+-]+$", max_length=100)]


class SourceImage(_Stored):
    """The image a video starts from, as it was when the video was asked for: one of the
    caller's image drafts (`creation_id`), which of its images (`index`), its object (`uri`)
    and its MIME type. The provider reads the object when the job runs; if it is gone by then
    (the draft was deleted), the video fails with `source_image_missing`."""

    creation_id: CreationIdField
    index: ImageIndex
    uri: GsUri
    mime_type: ImageMimeType


class VideoRequest(_Prompted):
    TYPE: ClassVar[CreationType] = "video"

    aspect_ratio: VideoAspectRatio
    duration_seconds: VideoSeconds
    # Only for a video made from an image draft (`image` in the body); absent otherwise.
    source_image: SourceImage | None = None


class ReelRequest(_Stored):
    """A reel: its clips (creation ids, in order), their media as they were when it was asked
    for (`sources`), their total length, and an optional title."""

    TYPE: ClassVar[CreationType] = "reel"

    clips: ClipIds
    sources: list[str] = Field(min_length=MIN_REEL_CLIPS, max_length=MAX_REEL_CLIPS)
    duration_seconds: float = Field(ge=0)
    title: Title | None = None


MediaRequest = ImageRequest | VideoRequest
StoredRequest = ImageRequest | VideoRequest | ReelRequest
_BY_TYPE: Final[dict[str, type[StoredRequest]]] = {
    model.TYPE: model for model in (ImageRequest, VideoRequest, ReelRequest)
}


def stored_request(creation_type: str, data: Any) -> StoredRequest:
    """The request stored on a creation of `creation_type`, checked.

    Raises `StoredRequestInvalid` naming the first broken field.
    """
    model = _BY_TYPE.get(creation_type)
    if model is None:
        raise StoredRequestInvalid(f"type: no creation is of type {creation_type!r}")
    return validated(model, data, StoredRequestInvalid, "request: the creation has no request")


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, error: Callable[[str], Exception], not_a_map: str) -> M:
    """`data` (a JSON object) as `model`; else `error(...)` whose message names the field."""
    if not isinstance(data, dict):
        raise error(not_a_map)
    broken = first_non_text(data)
    if broken is not None:
        raise error(f"{broken}: must be text (it holds a lone UTF-16 surrogate)")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(describe(exc)) from None


def first_non_text(data: dict[str, Any]) -> str | None:
    """The first field of `data` (a parsed JSON object) holding a string that is not text, or
    `None`: JSON's `"\\ud800"` escape parses to half a UTF-16 pair, which no UTF-8 store
    (Firestore) can hold. A key that is not text is named `body` (it has no name to give).

    Iterative, not recursive: the body may be nested as deep as the JSON parser allowed, and
    this must not be where a deep body fails.
    """
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            if not _is_text(value):
                return where
        elif isinstance(value, dict):
            if not all(_is_text(key) for key in value):
                return where or "body"
            children = [(f"{where}.{key}" if where else key, item) for key, item in value.items()]
            pending.extend(reversed(children))  # popped in the body's order
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))
    return None


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def document_of(request: StoredRequest) -> dict[str, Any]:
    """The request as the creation's `request` map: options that were not given are absent."""
    return request.model_dump(mode="json", exclude_none=True)


class FieldRuleError(ValueError):
    """A rule about one field, raised inside a validator; `describe` names that field."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field


def describe(exc: ValidationError) -> str:
    """One readable line naming the first broken field (`count: must be ...`)."""
    error = exc.errors()[0]
    context_error = error.get("ctx", {}).get("error")
    if isinstance(context_error, FieldRuleError):
        return str(context_error)
    field = ".".join(str(part) for part in error["loc"]) or "body"
    if error["type"] == "extra_forbidden":
        return f"{field}: unknown field"
    if error["type"] == "missing":
        return f"{field}: is required"
    message = error["msg"].removeprefix("Value error, ")
    return f"{field}: {message}"
