"""Errors split by what the caller must do: fix the request, retry later, or give up.

Every error the suite raises on purpose derives from `SuiteError`. The HTTP layer maps
`ClientError`s to 4xx answers and `RetryableError`s to 503; event handlers re-raise
`RetryableError` (so Pub/Sub redelivers) and record `PermanentError` (so the message is acked).

Each class declares its stable `code` (and a client error its `http_status`) in its class
line: `class NotFound(ClientError, code="not_found", http_status=404)`.
"""

from __future__ import annotations

from typing import Any, ClassVar


class SuiteError(Exception):
    """Base of every deliberate error. `code` is stable snake_case; the message is for people."""

    code: ClassVar[str] = "internal"

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def answer_fields(self) -> dict[str, Any]:
        """What an HTTP answer carries beside `error` for this error (nothing, unless a
        subclass has more to tell the caller)."""
        return {}

    def answer_headers(self) -> dict[str, str]:
        """The HTTP headers this error's answer must carry (none, unless a subclass says)."""
        return {}


# --- the caller sent something wrong (4xx): retrying the same request will not help ---------


class ClientError(SuiteError, code="invalid_request"):
    """The request itself is wrong; answer with `http_status` and change nothing."""

    http_status: ClassVar[int] = 400

    def __init_subclass__(cls, *, http_status: int | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if http_status is not None:
            cls.http_status = http_status


class InvalidJson(ClientError, code="invalid_json"):
    """The body is not JSON."""


class InvalidRequest(ClientError, code="invalid_request"):
    """The body or query breaks a rule; the message names the field."""


class Unauthenticated(ClientError, code="unauthenticated", http_status=401):
    """Missing, malformed, expired, wrongly signed or wrong-audience ID token."""


class InsufficientTokens(ClientError, code="insufficient_tokens", http_status=402):
    """The balance is below the cost; nothing was debited."""

    def __init__(self, message: str, *, balance: int, cost: int) -> None:
        super().__init__(message)
        self.balance = balance
        self.cost = cost


class NotFound(ClientError, code="not_found", http_status=404):
    """No such resource for this caller."""


class MethodNotAllowed(ClientError, code="method_not_allowed", http_status=405):
    """The path exists but not with this method."""

    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed

    def answer_headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class Conflict(ClientError, code="conflict", http_status=409):
    """The resource is in the wrong state for the call, or an idempotency key was reused."""


class TooManyRequests(ClientError, code="too_many_requests", http_status=429):
    """A per-user limit refused the request; nothing was written. `retry_after_seconds` is
    the `Retry-After` its answer carries."""

    def __init__(self, message: str, *, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)

    def answer_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class TooManyActive(TooManyRequests, code="too_many_active"):
    """The user has `MAX_ACTIVE_PER_USER` creations `pending` or `processing` already."""


class RateLimited(TooManyRequests, code="rate_limited"):
    """The user's submits came faster than `SUBMIT_RATE_PER_MINUTE` (after a `SUBMIT_BURST`)."""


class PayloadTooLarge(ClientError, code="payload_too_large", http_status=413):
    """The body is over the size limit."""


class UnsupportedMediaType(ClientError, code="unsupported_media_type", http_status=415):
    """The body is not `application/json`."""


# --- something outside the request failed: the same call may succeed later -----------------


class RetryableError(SuiteError, code="busy"):
    """A transient failure (contention, unavailable dependency). Retry with backoff."""


class StoreBusy(RetryableError, code="busy"):
    """Firestore (or Cloud Storage) did not answer, or stayed contended; retry shortly."""


class QueueUnavailable(RetryableError, code="queue_unavailable"):
    """The job could not be enqueued on Pub/Sub."""


# --- the work can never succeed: record it and stop retrying ---------------------------------


class PermanentError(SuiteError, code="permanent_error"):
    """A failure no retry can fix. Event handlers mark the creation `failed` and ack."""


class InvalidTransition(PermanentError, code="invalid_transition"):
    """A status move the state machine forbids (e.g. backwards, or out of a final state)."""

    def __init__(self, message: str, *, current: str, wanted: str) -> None:
        super().__init__(message)
        self.current = current
        self.wanted = wanted
