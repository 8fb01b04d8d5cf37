"""One policy for calling Google's APIs: which failures are worth another try, and how calls retry.

Firestore (`shared.store.firestore`), Pub/Sub (`shared.work.jobs`) and Cloud Storage
(`shared.media.storage`, reel downloads, Veo's output) all use it: a failure in
`TRANSIENT_ERRORS` means "the service did not answer this time" (the caller answers `503 busy`
or lets Pub/Sub redeliver), anything else is a real answer to act on.
"""

from __future__ import annotations

from typing import Final

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type

# The service was unreachable, overloaded or too slow; the same call may succeed later.
TRANSIENT_ERRORS: Final = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.TooManyRequests,  # also gRPC's RESOURCE_EXHAUSTED
    gexc.GatewayTimeout,
    gexc.RetryError,  # a client-side retry ran out of time
    TimeoutError,
    ConnectionError,
    requests.RequestException,  # google-cloud-storage's HTTP transport
)

# Retried inside one call: errors Google documents as safe to retry for any request.
_RETRIED_IN_CALL: Final = (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.DeadlineExceeded)


def bounded_retry(timeout_seconds: float) -> Retry:
    """The client-side retry of one call: quick backoff, all of it within `timeout_seconds`."""
    return Retry(
        predicate=if_exception_type(*_RETRIED_IN_CALL),
        initial=0.05,
        maximum=1.0,
        timeout=timeout_seconds,
    )
