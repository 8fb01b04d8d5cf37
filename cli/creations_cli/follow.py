"""Following a creation: poll `GET /v1/creations/{id}` until it is final.

A modest interval (a second by default): the API is a Firestore read per call, and a creation
takes seconds to minutes. After `failed` or `canceled` the refund is applied by the `refund`
function within seconds, so the loop waits a little longer for `refunded` to turn true,
and reports whatever it then is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from creations_cli.exits import ApiError

FINAL_STATUSES = frozenset({"draft", "failed", "canceled"})
REFUNDED_STATUSES = frozenset({"failed", "canceled"})
# `busy` (503): the store was contended for a moment; the next poll usually succeeds.
RETRYABLE_HTTP_STATUSES = frozenset({503})

Creation = dict[str, Any]


@dataclass(frozen=True)
class FollowPolicy:
    interval_seconds: float = 1.0
    refund_wait_seconds: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def is_final(creation: Creation) -> bool:
    return creation.get("status") in FINAL_STATUSES


def awaits_refund(creation: Creation) -> bool:
    return creation.get("status") in REFUNDED_STATUSES and not creation.get("refunded")


def follow(
    read: Callable[[], Creation],
    on_update: Callable[[Creation], None],
    policy: FollowPolicy,
    first: Creation | None = None,
) -> Creation:
    """Poll `read` until the creation is final (and, if failed or canceled, refunded or the
    refund wait is over); `on_update` sees every answer. `first` saves the first read when
    the caller already has the creation (the answer of a submit)."""
    creation = first if first is not None else read()
    on_update(creation)
    while not is_final(creation):
        policy.sleep(policy.interval_seconds)
        creation = _read_once_more(read, creation)
        on_update(creation)
    deadline = policy.clock() + policy.refund_wait_seconds
    while awaits_refund(creation) and policy.clock() < deadline:
        policy.sleep(policy.interval_seconds)
        creation = _read_once_more(read, creation)
        on_update(creation)
    return creation


def _read_once_more(read: Callable[[], Creation], previous: Creation) -> Creation:
    try:
        return read()
    except ApiError as error:
        if error.status in RETRYABLE_HTTP_STATUSES:
            return previous
        raise
