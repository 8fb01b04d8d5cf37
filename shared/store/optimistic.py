"""Optimistic concurrency on Firestore: read, then commit a batch guarded by preconditions.

Why not Firestore transactions? Server-side transactions take pessimistic locks in the
emulator (10 concurrent read-then-write transactions on one document took ~100 s and mostly
aborted) and, in production, hold a lock per document for the transaction's lifetime. A batched
write whose updates carry `last_update_time` preconditions (and whose new documents are
`create`s) is just as atomic, never waits on a lock, and tells us at once when someone else
wrote first: then we re-read and try again. One user's burst of submits settles in a few
short rounds instead of queueing on a lock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot

from shared.core.errors import StoreBusy

T = TypeVar("T")

# Another writer got there first (update precondition failed, or a `create` found the
# document): re-read and decide again.
_LOST_RACE = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Conflict, gexc.Aborted)
# Firestore could not answer: give up now with a retryable error, write nothing more.
STORE_UNAVAILABLE = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.RetryError,
    gexc.GatewayTimeout,
    gexc.TooManyRequests,
    TimeoutError,
    ConnectionError,
)


def store_retry(timeout_seconds: float) -> Retry:
    """Client-side retry of single calls on transient errors, bounded by the store timeout."""
    return Retry(
        predicate=lambda exc: isinstance(
            exc, gexc.ServiceUnavailable | gexc.InternalServerError | gexc.DeadlineExceeded
        ),
        initial=0.05,
        maximum=1.0,
        timeout=timeout_seconds,
    )


def read_together(
    db: firestore.Client,
    refs: Sequence[firestore.DocumentReference],
    *,
    retry: Retry,
    timeout: float,
) -> list[DocumentSnapshot[Any]]:
    """Read `refs` in one round trip; snapshots come back in the order of `refs`.

    (`get_all` answers in whatever order the server likes, and leaves out nothing: a missing
    document is a snapshot whose `exists` is False.)
    """
    by_path = {
        snapshot.reference.path: snapshot
        for snapshot in db.get_all(list(refs), retry=retry, timeout=timeout)
    }
    return [by_path[ref.path] for ref in refs]


def run_optimistic(
    attempt: Callable[[], T],
    *,
    max_attempts: int,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `attempt` (read + guarded commit) until it commits or `max_attempts` is spent.

    `attempt` must re-read everything it decides on, so each round sees the winner's write.
    Raises `StoreBusy` when the store is unavailable or the races never settle.
    """
    for round_number in range(max_attempts):
        try:
            return attempt()
        except _LOST_RACE:
            # Full jitter, growing slowly: a burst of N writers spreads out within ~N rounds.
            sleep(random.uniform(0, min(0.25, 0.01 * (round_number + 1))))  # noqa: S311
        except STORE_UNAVAILABLE as exc:
            raise StoreBusy(f"the store is unavailable ({what}): {type(exc).__name__}") from exc
    raise StoreBusy(f"the store is contended ({what}); retry shortly")
