"""From what google-genai raises (or reports inside an operation) to the suite's provider errors.

What the worker does with each (shared/work/worker.py):
    ProviderTransient (provider_unavailable), ProviderTimeout (provider_timeout)
        the claim is released and the event redelivered; once the deliveries run out the
        creation fails as `delivery_exhausted` (or `too_many_attempts`) and is refunded.
    InvalidGenerationRequest (invalid_request), SafetyBlocked (safety_blocked),
    EmptyResult (empty_result), ProviderPermanent (provider_error)
        the creation fails at once and is refunded.

The SDK retries nothing by default (HttpOptions.retry_options is unset), which we keep:
retrying `generate_videos` would start a second, paid operation, and redelivery already
retries everything else with Pub/Sub's backoff.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import requests
from google.auth import exceptions as auth_errors
from google.genai import errors as genai_errors

from shared.media.providers.base import (
    InvalidGenerationRequest,
    ProviderPermanent,
    ProviderTransient,
    SafetyBlocked,
)

# HTTP statuses worth another attempt: timeouts, conflicts, rate limits, server trouble.
TRANSIENT_HTTP = frozenset({408, 409, 429, 499, 500, 502, 503, 504})
# google.rpc.Code values an operation may end with that another attempt may not meet:
# CANCELLED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE.
TRANSIENT_RPC = frozenset({1, 4, 8, 10, 13, 14})
# INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION: the request itself is the problem.
INVALID_RPC = frozenset({3, 9, 11})

# Words Google's services use when a prompt or output breaks the usage policies; a 400 (or
# an operation error) that says so is a safety block, not a malformed request.
_SAFETY_WORDS = (
    "responsible ai",
    "usage guidelines",
    "safety",
    "sensitive words",
    "prohibited",
    "violate",
)
MAX_DETAIL_CHARS = 300


def brief(text: object) -> str:
    """`text` on one line and at most MAX_DETAIL_CHARS long, for messages people read."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_DETAIL_CHARS else line[: MAX_DETAIL_CHARS - 1] + "…"


def looks_like_safety(message: str | None) -> bool:
    lowered = (message or "").lower()
    return any(word in lowered for word in _SAFETY_WORDS)


def from_api_error(
    exc: genai_errors.APIError, service: str
) -> ProviderTransient | ProviderPermanent:
    """The provider error for an HTTP error answer of `service` (e.g. "Imagen")."""
    code = int(exc.code or 0)
    label = " ".join(str(part) for part in (code or None, exc.status) if part)
    detail = brief(exc.message or exc.status or "no details")
    if code == 429:
        return ProviderTransient(f"{service} is rate limited ({label}); a later attempt retries.")
    if code in TRANSIENT_HTTP:
        return ProviderTransient(f"{service} is unavailable ({label}: {detail}).")
    if code == 400 and looks_like_safety(exc.message):
        return SafetyBlocked(f"{service} refused the prompt under its safety rules: {detail}")
    if code == 400:
        return InvalidGenerationRequest(f"{service} rejected the request: {detail}")
    if code in (401, 403):
        return ProviderPermanent(
            f"{service} refused this deployment's credentials ({label}); nothing was made."
        )
    if code == 404:
        return ProviderPermanent(f"{service} does not know this model or operation ({detail}).")
    return ProviderPermanent(f"{service} failed ({label}: {detail}).")


def from_operation_error(
    error: dict[str, Any], service: str
) -> ProviderTransient | ProviderPermanent:
    """The provider error for a long-running operation that finished with `error`."""
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, int) else 2  # UNKNOWN
    detail = brief(error.get("message") or "no details")
    if code in TRANSIENT_RPC:
        return ProviderTransient(f"{service} failed on its side (code {code}: {detail}).")
    if looks_like_safety(error.get("message")):
        return SafetyBlocked(f"{service} refused the prompt under its safety rules: {detail}")
    if code in INVALID_RPC:
        return InvalidGenerationRequest(f"{service} rejected the request: {detail}")
    return ProviderPermanent(f"{service} failed (code {code}: {detail}).")


@contextmanager
def sdk_errors(service: str) -> Iterator[None]:
    """Turn what one SDK call raises into ProviderTransient / ProviderPermanent."""
    try:
        yield
    except genai_errors.APIError as exc:
        raise from_api_error(exc, service) from exc
    except httpx2.TimeoutException as exc:
        raise ProviderTransient(f"{service} did not answer in time.") from exc
    except (httpx2.TransportError, requests.RequestException, auth_errors.TransportError) as exc:
        raise ProviderTransient(f"{service} could not be reached ({type(exc).__name__}).") from exc
    except genai_errors.UnknownApiResponseError as exc:
        # Typically an HTML error page from a proxy or load balancer: may pass next time.
        raise ProviderTransient(f"{service} sent an answer that is not JSON.") from exc
    except auth_errors.GoogleAuthError as exc:  # RefreshError, DefaultCredentialsError, ...
        raise ProviderPermanent(
            f"This deployment has no usable credentials for {service} ({type(exc).__name__})."
        ) from exc
