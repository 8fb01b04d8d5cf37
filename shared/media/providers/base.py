"""What a provider is given and what it returns; the errors it may raise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.core.errors import PermanentError, RetryableError


@dataclass(frozen=True)
class GenerationJob:
    """One creation to make. `request` is the normalised request stored on the creation."""

    creation_id: str
    user_id: str
    type: str  # "image" | "video"
    request: dict[str, Any]
    attempt: int = 1  # 1 on the first delivery, then 2, 3, ... (from the creation's claim)


@dataclass
class GenerationContext:
    """What the running generation may use besides the job.

    `workdir` is a private temporary folder the caller removes afterwards. `deadline` is a
    `time.monotonic()` value: past it the provider should raise `ProviderTimeout`.
    `checkpoint` holds what a previous attempt saved (e.g. a long-running operation's name);
    `save_checkpoint` persists new values on the creation before the provider waits on them.
    `report_progress` takes 0-99 (the caller writes 100 at draft).
    """

    workdir: Path
    deadline: float
    checkpoint: dict[str, Any] = field(default_factory=dict)
    save_checkpoint: Callable[[dict[str, Any]], None] = lambda _values: None
    report_progress: Callable[[int], None] = lambda _percent: None

    def seconds_left(self) -> float:
        return self.deadline - time.monotonic()


@dataclass(frozen=True)
class GeneratedMedia:
    """One produced file on local disk, with what the creation's `media` item says of it."""

    path: Path
    content_type: str
    width: int
    height: int
    duration_seconds: float | None = None

    @property
    def bytes(self) -> int:
        return self.path.stat().st_size


class Provider(Protocol):
    def generate(self, job: GenerationJob, context: GenerationContext) -> list[GeneratedMedia]:
        """Make the media of `job` in `context.workdir`.

        Raises `ProviderTransient` (retry later) or `ProviderPermanent` (fail the creation).
        """
        ...


class ProviderTransient(RetryableError):
    """Rate limited, 5xx, timeouts: the same job may succeed on redelivery."""

    code = "provider_unavailable"


class ProviderTimeout(ProviderTransient):
    """The job ran out of time in this attempt."""

    code = "provider_timeout"


class ProviderPermanent(PermanentError):
    """The job can never succeed. `code` is one of the stable codes below."""

    code = "provider_error"


class InvalidGenerationRequest(ProviderPermanent):
    code = "invalid_request"


class SafetyBlocked(ProviderPermanent):
    code = "safety_blocked"


class EmptyResult(ProviderPermanent):
    code = "empty_result"
