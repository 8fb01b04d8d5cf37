"""What a provider is given and what it returns; the errors it may raise."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shared.core.errors import PermanentError, RetryableError
from shared.creations.model import Job
from shared.creations.requests import StoredRequest


@dataclass
class GenerationContext:
    """What the running generation may use besides the job.

    `workdir` is a private temporary folder the caller removes afterwards. `deadline` is a
    `time.monotonic()` value: past it the provider should raise `ProviderTimeout`. `attempt` is
    1 on the creation's first claim, then 2, 3, ... `scope` names this claim's objects in the
    bucket (`shared.media.storage.attempt_scope`): whatever a provider has written for it goes
    there, never to a name another attempt uses. `checkpoint` holds what a previous attempt
    saved (e.g. a long-running operation's name); `save_checkpoint` persists new values on the
    creation before the provider waits on them. `report_progress` takes 0-99 (the caller
    writes 100 at draft).

    A provider whose answer is short (fewer images than `count`, e.g. some withheld by the
    model's safety filter) returns what it got and says why in `shortfall` (`say_short`): the
    worker makes a partial draft of it, refunded for the rest. With nothing at all to return it
    raises as before (`SafetyBlocked`, `EmptyResult`).
    """

    workdir: Path
    deadline: float
    attempt: int = 1
    scope: str = "1"
    checkpoint: dict[str, Any] = field(default_factory=dict)
    save_checkpoint: Callable[[dict[str, Any]], None] = lambda _values: None
    report_progress: Callable[[int], None] = lambda _percent: None
    shortfall: str | None = None  # why the answer is short of what was asked, if it is

    def say_short(self, reason: str) -> None:
        """Record why fewer items than asked for are returned (for people: it is shown)."""
        self.shortfall = reason

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
    def generate(
        self, job: Job, request: StoredRequest, context: GenerationContext
    ) -> list[GeneratedMedia]:
        """Make what `request` asks for (for the creation `job` names) in `context.workdir`.

        Raises `ProviderTransient` (retry later) or `ProviderPermanent` (fail the creation);
        `InvalidGenerationRequest` for a request it does not make.
        """
        ...


class ProviderTransient(RetryableError, code="provider_unavailable"):
    """Rate limited, 5xx, timeouts: the same job may succeed on redelivery."""


class ProviderTimeout(ProviderTransient, code="provider_timeout"):
    """The job ran out of time in this attempt."""


class ProviderPermanent(PermanentError, code="provider_error"):
    """The job can never succeed. `code` is one of the stable codes below."""


class InvalidGenerationRequest(ProviderPermanent, code="invalid_request"):
    """The provider does not make what was asked (a model it cannot run, a type it lacks)."""


class SafetyBlocked(ProviderPermanent, code="safety_blocked"):
    """The prompt or the result broke the model's safety rules."""


class EmptyResult(ProviderPermanent, code="empty_result"):
    """The model answered without media."""
