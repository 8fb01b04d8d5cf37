"""Errors split by what the caller must do: fix the request, retry later, or give up.

Every error the suite raises on purpose derives from `SuiteError`. The HTTP layer maps
`ClientError`s to 4xx answers and `RetryableError`s to 503; event handlers re-raise
`RetryableError` (so Pub/Sub redelivers) and record `PermanentError` (so the message is acked).
"""

from __future__ import annotations


class SuiteError(Exception):
    """Base of every deliberate error. `code` is stable snake_case; the message is for people."""

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


# --- the caller sent something wrong (4xx): retrying the same request will not help ---------


class ClientError(SuiteError):
    """The request itself is wrong; answer with `http_status` and change nothing."""

    http_status = 400
    code = "invalid_request"


class InvalidJson(ClientError):
    """The body is not JSON."""

    code = "invalid_json"


class InvalidRequest(ClientError):
    """The body or query breaks a rule; the message names the field."""

    code = "invalid_request"


class Unauthenticated(ClientError):
    """Missing, malformed, expired, wrongly signed or wrong-audience ID token."""

    http_status = 401
    code = "unauthenticated"


class InsufficientTokens(ClientError):
    """The balance is below the cost; nothing was debited."""

    http_status = 402
    code = "insufficient_tokens"

    def __init__(self, message: str, *, balance: int, cost: int) -> None:
        super().__init__(message)
        self.balance = balance
        self.cost = cost


class NotFound(ClientError):
    """No such resource for this caller."""

    http_status = 404
    code = "not_found"


class MethodNotAllowed(ClientError):
    """The path exists but not with this method."""

    http_status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, *, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


class Conflict(ClientError):
    """The resource is in the wrong state for the call, or an idempotency key was reused."""

    http_status = 409
    code = "conflict"


class PayloadTooLarge(ClientError):
    """The body is over the size limit."""

    http_status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ClientError):
    """The body is not `application/json`."""

    http_status = 415
    code = "unsupported_media_type"


# --- something outside the request failed: the same call may succeed later -----------------


class RetryableError(SuiteError):
    """A transient failure (contention, unavailable dependency). Retry with backoff."""

    code = "busy"


class StoreBusy(RetryableError):
    """Firestore is contended or unavailable; nothing was written."""

    code = "busy"


class QueueUnavailable(RetryableError):
    """The job could not be enqueued on Pub/Sub."""

    code = "queue_unavailable"


# --- the work can never succeed: record it and stop retrying ---------------------------------


class PermanentError(SuiteError):
    """A failure no retry can fix. Event handlers mark the creation `failed` and ack."""

    code = "permanent_error"


class InvalidTransition(PermanentError):
    """A status move the state machine forbids (e.g. backwards, or out of a final state)."""

    code = "invalid_transition"

    def __init__(self, message: str, *, current: str, wanted: str) -> None:
        super().__init__(message)
        self.current = current
        self.wanted = wanted
