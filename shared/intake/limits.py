"""Per-user limits on submits: how many creations may be active, and how fast submits may come.

Both are decided inside the submit's optimistic round (shared.intake.submission), on the user
document that round reads and then writes with its debit, so they hold across instances and
under a burst:

- Active creations (`MAX_ACTIVE_PER_USER`): the round counts the user's `pending` and
  `processing` creations with one bounded query made *after* its read of the user document.
  Every submit that committed before that read is in the count (its creation was written in
  the same atomic batch as its debit); every submit that commits after it changed the user
  document, so this round's guarded write loses and the next round counts again. A creation
  that finishes meanwhile does not write the user document, so a stale count can only be too
  high: it may refuse a submit a moment early, never admit one too many.
- Submit rate (`SUBMIT_RATE_PER_MINUTE`, `SUBMIT_BURST`): a token bucket kept on the user
  document (`submit_bucket`), refilled for the time since its last accepted submit and
  written, one token less, in the same guarded write as the debit. Only accepted submits take
  a token: a refused one writes nothing at all. Its clock is the deciding instance's; a clock
  behind the last writer's counts no refill (never a negative one).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Final

from shared.core.errors import RateLimited, TooManyActive
from shared.core.settings import Settings
from shared.creations.lifecycle import FINAL_STATUSES
from shared.store import paths
from shared.store.documents import Documents, Query, Snapshot

BUCKET_FIELD: Final = "submit_bucket"  # on users/{uid}: {"level": float, "at": timestamp}
ACTIVE_STATUSES: Final = ("pending", "processing")
# The greatest final status by name (`failed`): every active one sorts after it, and every
# final one does not (tests/unit/test_submit_limits.py holds the statuses to that).
_LAST_FINAL_BY_NAME: Final = max(FINAL_STATUSES)


def take_submit_token(user: Snapshot, settings: Settings, now: dt.datetime) -> dict[str, Any]:
    """The user-document fields that record one more accepted submit at `now`.

    Raises `RateLimited` (with the seconds until a token is back) when the bucket is empty.
    """
    per_second = settings.submit_rate_per_minute / 60.0
    level = _level_at(user.get(BUCKET_FIELD), settings, now)
    if level < 1.0:
        wait = math.ceil((1.0 - level) / per_second)
        raise RateLimited(
            f"too many submits: at most {settings.submit_burst} at once and"
            f" {settings.submit_rate_per_minute:g} a minute; retry in {wait} s",
            retry_after_seconds=wait,
        )
    # Never stamped earlier than it was: an instance whose clock is behind would otherwise hand
    # the next, correct clock its lag's worth of refill a second time.
    stamped = user.get(BUCKET_FIELD)
    last = stamped.get("at") if isinstance(stamped, dict) else None
    at = max(now, last) if isinstance(last, dt.datetime) else now
    return {BUCKET_FIELD: {"level": level - 1.0, "at": at}}


def _level_at(bucket: Any, settings: Settings, now: dt.datetime) -> float:
    """The bucket's tokens at `now`: full when it was never written."""
    capacity = float(settings.submit_burst)
    if not isinstance(bucket, dict) or not isinstance(bucket.get("at"), dt.datetime):
        return capacity
    elapsed = max(0.0, (now - bucket["at"]).total_seconds())
    level: float = float(bucket.get("level", capacity))
    level += elapsed * settings.submit_rate_per_minute / 60.0
    return float(min(capacity, max(0.0, level)))


def check_active(store: Documents, user_id: str, settings: Settings) -> None:
    """Raise `TooManyActive` if the user has `MAX_ACTIVE_PER_USER` active creations already.

    Must run after the round's read of the user document (the module docstring says why). One
    count, bounded by `MAX_ACTIVE_PER_USER`: billed as one read, however many are active.
    """
    limit = settings.max_active_per_user
    if store.count(active_query(user_id, limit)) >= limit:
        raise TooManyActive(
            f"{limit} creations are pending or processing already (the most one user may"
            " have); submit again when one has finished",
            retry_after_seconds=settings.too_many_active_retry_after_seconds,
        )


def active_query(user_id: str, limit: int) -> Query:
    """The user's `pending` and `processing` creations, `limit` at most, in one query: they
    are exactly the statuses that sort after `failed`, so one range needs no `in` filter and no
    second query."""
    return Query(
        paths.CREATIONS,
        equal=(("user_id", user_id),),
        order=(("status", "ASCENDING"),),
        start_after=(_LAST_FINAL_BY_NAME,),
        limit=limit,
    )
