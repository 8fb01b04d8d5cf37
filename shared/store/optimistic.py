"""Optimistic concurrency: read, decide, commit a batch guarded by what was read; on a lost race,
read again and decide again.

Why not Firestore transactions? Server-side transactions take pessimistic locks in the
emulator (10 concurrent read-then-write transactions on one document took ~100 s and mostly
aborted) and, in production, hold a lock per document for the transaction's lifetime. A batched
write whose updates carry `update_time` preconditions (and whose new documents are `create`s)
is just as atomic, never waits on a lock, and tells us at once when someone else wrote first:
then we re-read and try again. One user's burst of submits settles in a few short rounds
instead of queueing on a lock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from shared.core.errors import StoreBusy
from shared.core.settings import Settings
from shared.store.documents import LostRace

T = TypeVar("T")


def run_optimistic(
    attempt: Callable[[], T],
    settings: Settings,
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `attempt` (read + guarded commit) until it commits, `STORE_MAX_ATTEMPTS` rounds at most.

    `attempt` must re-read everything it decides on, so each round sees the winner's write.
    `StoreBusy` from the store passes through; races that never settle become `StoreBusy` too.
    A round whose commit raised `LostRace` may have landed all the same (its answer was lost
    and the client library's resend ran into it): the next round's read shows it.
    """
    for round_number in range(settings.store_max_attempts):
        try:
            return attempt()
        except LostRace:
            # Full jitter, growing slowly: a burst of N writers spreads out within ~N rounds.
            sleep(random.uniform(0, min(0.25, 0.01 * (round_number + 1))))  # noqa: S311
    raise StoreBusy(f"the store is contended ({what}); retry shortly")
