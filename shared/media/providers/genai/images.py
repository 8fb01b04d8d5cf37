"""Images: Imagen (`generate_images`, Vertex AI only) and Gemini image models (`generate_content`).

Imagen
    One call makes all `count` images (`number_of_images`), PNG, with the aspect ratio,
    negative prompt and seed. Vertex refuses a seed while the invisible SynthID watermark is
    on, so a request with a seed asks for `add_watermark=False` (without one, the default
    watermark stays). `include_rai_reason` makes Imagen say why it withheld an image.

Gemini image models
    `generate_content` with `response_modalities=["IMAGE"]` and the aspect ratio in
    `image_config`, once per image: these models answer one image per call. The model has no
    negative prompt parameter, so it is said in words after the prompt ("Avoid: ..."). With a
    seed, call i uses seed + i: the same seed every time would give `count` copies of one image.

Fewer images than asked for (some withheld by the safety filter, or just not returned) is a
partial result, not a failure: the images that came are returned, and why the rest did not is
said in `context.shortfall`; the worker makes a draft of them and refunds the unit price of each
missing one. No image at all is a failure, refunded in full: `SafetyBlocked` if the service says
it withheld them for safety reasons (or refused the prompt), otherwise `EmptyResult`. An answer
that is not a readable image is `ProviderPermanent`. A redelivery makes every image again
(images are not checkpointed: each call is short, and a failed call made nothing).
"""

from __future__ import annotations

import io

from google import genai
from google.genai import types
from PIL import Image, UnidentifiedImageError

from shared.core.settings import Settings
from shared.creations.progress import MAX_WORKING
from shared.creations.requests import SEED_LIMIT, ImageRequest
from shared.media.probe import MediaProbeError, image_size
from shared.media.providers.base import (
    EmptyResult,
    GeneratedMedia,
    GenerationContext,
    ProviderPermanent,
    ProviderTimeout,
    SafetyBlocked,
)
from shared.media.providers.genai.client import call_options
from shared.media.providers.genai.errors import brief, sdk_errors

# What we store, by the format Pillow finds in the bytes (the declared MIME type may differ).
FORMATS = {
    "PNG": ("image/png", ".png"),
    "JPEG": ("image/jpeg", ".jpg"),
    "WEBP": ("image/webp", ".webp"),
}
# Finish reasons meaning the answer was withheld under Google's content rules.
SAFETY_FINISH = frozenset(
    {
        "SAFETY",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "RECITATION",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
        "MODEL_ARMOR",
    }
)


def make_imagen(
    client: genai.Client, settings: Settings, request: ImageRequest, context: GenerationContext
) -> list[GeneratedMedia]:
    service = "Imagen"
    context.report_progress(10)
    config = types.GenerateImagesConfig(
        number_of_images=request.count,
        aspect_ratio=request.aspect_ratio,
        negative_prompt=request.negative_prompt,
        seed=request.seed,
        add_watermark=False if request.seed is not None else None,
        output_mime_type="image/png",
        include_rai_reason=True,
        http_options=call_options(settings, context.seconds_left()),
    )
    with sdk_errors(service):
        response = client.models.generate_images(
            model=request.model, prompt=request.prompt, config=config
        )
    generated = response.generated_images or []
    images = [g.image for g in generated if g.image is not None and g.image.image_bytes]
    if len(images) < request.count:
        reasons = [brief(g.rai_filtered_reason) for g in generated if g.rai_filtered_reason]
        missing = request.count - len(images)
        if not images:
            if reasons:
                raise SafetyBlocked(
                    f"Imagen withheld all {request.count} images under its safety rules: "
                    f"{'; '.join(reasons)}"
                )
            raise EmptyResult(f"Imagen returned no picture for {request.count} images.")
        if reasons:
            context.say_short(
                f"{_images(missing)} withheld by Imagen's safety filter: {'; '.join(reasons)}"
            )
        else:
            context.say_short(f"Imagen returned {len(images)} of {request.count} images.")
    made = [
        _save(image.image_bytes or b"", index, context, service)
        for index, image in enumerate(images[: request.count])
    ]
    context.report_progress(MAX_WORKING)
    return made


def make_gemini_images(
    client: genai.Client,
    settings: Settings,
    request: ImageRequest,
    context: GenerationContext,
) -> list[GeneratedMedia]:
    service = f"The image model {request.model}"
    prompt = request.prompt
    if request.negative_prompt:
        prompt = f"{prompt}\n\nAvoid: {request.negative_prompt}"
    made: list[GeneratedMedia] = []
    missing: list[ProviderPermanent] = []  # why each image that did not come did not
    for index in range(request.count):
        if context.seconds_left() <= 0:
            raise ProviderTimeout(f"The deadline passed after {index} of {request.count} images.")
        context.report_progress(5 + 90 * index // request.count)
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=request.aspect_ratio),
            seed=(request.seed + index) % SEED_LIMIT if request.seed is not None else None,
            http_options=call_options(settings, context.seconds_left()),
        )
        with sdk_errors(service):
            response = client.models.generate_content(
                model=request.model, contents=prompt, config=config
            )
        _refuse_blocked_prompt(response, service)  # the same prompt again would be too
        try:
            data = _image_part(response, service)
        except (SafetyBlocked, EmptyResult) as exc:  # this image only: the others may come
            missing.append(exc)
            continue
        made.append(_save(data, len(made), context, service))
    if not made:
        raise missing[0]
    if missing:
        context.say_short(_gemini_shortfall(missing))
    context.report_progress(MAX_WORKING)
    return made


def _images(n: int) -> str:
    return f"{n} image" if n == 1 else f"{n} images"


def _gemini_shortfall(missing: list[ProviderPermanent]) -> str:
    """Why some of a Gemini model's images did not come, for people."""
    withheld = sum(isinstance(exc, SafetyBlocked) for exc in missing)
    empty = len(missing) - withheld
    said = []
    if withheld:
        said.append(f"{_images(withheld)} withheld by the model's safety filter")
    if empty:
        said.append(f"{_images(empty)} not returned by the model")
    return "; ".join(said) + "."


def _refuse_blocked_prompt(response: types.GenerateContentResponse, service: str) -> None:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        detail = feedback.block_reason_message or _name(feedback.block_reason)
        raise SafetyBlocked(f"{service} refused the prompt under its safety rules: {brief(detail)}")


def _image_part(response: types.GenerateContentResponse, service: str) -> bytes:
    candidate = response.candidates[0] if response.candidates else None
    parts = (candidate.content.parts or []) if candidate and candidate.content else []
    for part in parts:
        blob = part.inline_data
        if blob is not None and blob.data and (blob.mime_type or "").startswith("image/"):
            return blob.data
    reason = _name(candidate.finish_reason) if candidate else ""
    if reason in SAFETY_FINISH:
        raise SafetyBlocked(f"{service} withheld the image under its safety rules ({reason}).")
    said = brief(" ".join(part.text for part in parts if part.text))
    raise EmptyResult(
        f"{service} answered without an image" + (f": {said}" if said else f" ({reason}).")
    )


def _name(value: object) -> str:
    """An SDK enum's wire name (the SDK keeps unknown names as plain strings)."""
    return str(getattr(value, "value", value) or "")


def _save(data: bytes, index: int, context: GenerationContext, service: str) -> GeneratedMedia:
    """Write image `index` with the extension of what it really is; measure it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            found = image.format or ""
    except (OSError, UnidentifiedImageError) as exc:
        raise ProviderPermanent(f"{service} returned something that is not an image.") from exc
    if found not in FORMATS:
        raise ProviderPermanent(f"{service} returned an image in an unexpected format ({found}).")
    content_type, extension = FORMATS[found]
    path = context.workdir / f"image-{index}{extension}"
    path.write_bytes(data)
    try:
        width, height = image_size(path)
    except MediaProbeError as exc:
        raise ProviderPermanent(f"{service} returned an image that cannot be read: {exc}") from exc
    return GeneratedMedia(path, content_type, width, height)
