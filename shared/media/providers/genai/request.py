"""The parts of a creation's stored request the Google models take, checked once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from shared.media.providers.base import GenerationJob, InvalidGenerationRequest


@dataclass(frozen=True)
class GenaiRequest:
    model: str
    prompt: str
    aspect_ratio: str | None
    negative_prompt: str | None
    seed: int | None
    count: int  # images only; 1 for a video
    duration_seconds: int  # videos only; 0 for images

    @classmethod
    def from_job(cls, job: GenerationJob) -> GenaiRequest:
        """Read the request `submit` validated and normalised; refuse what cannot be sent.

        The submit API already enforced the contract's rules; this guards against documents
        written some other way (old versions, hand edits) reaching a paid call.
        """
        request = job.request
        model = request.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidGenerationRequest("model: the creation names no model")
        prompt = request.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidGenerationRequest("prompt: must be a non-empty string")
        aspect_ratio = request.get("aspect_ratio")
        if aspect_ratio is not None and not isinstance(aspect_ratio, str):
            raise InvalidGenerationRequest("aspect_ratio: must be a string")
        negative = request.get("negative_prompt")
        if negative is not None and not isinstance(negative, str):
            raise InvalidGenerationRequest("negative_prompt: must be a string")
        seed = request.get("seed")
        if seed is not None and not _is_int(seed):
            raise InvalidGenerationRequest("seed: must be an integer")
        count, duration = 1, 0
        if job.type == "image":
            count = request.get("count", 1)
            if not _is_int(count) or not 1 <= count <= 4:
                raise InvalidGenerationRequest("count: must be an integer from 1 to 4")
        else:
            duration = request.get("duration_seconds", 8)
            if not _is_int(duration) or duration <= 0:
                raise InvalidGenerationRequest("duration_seconds: must be a positive integer")
        return cls(
            model=model,
            prompt=prompt.strip(),
            aspect_ratio=aspect_ratio or None,
            negative_prompt=negative or None,
            seed=seed,
            count=count,
            duration_seconds=duration,
        )


def _is_int(value: object) -> TypeGuard[int]:
    # bool is an int to Python, never a count, seed or duration to us.
    return isinstance(value, int) and not isinstance(value, bool)
