"""`Idempotency-Key`: the same POST, repeated by the same user, answers the same creation.

A key is one `idempotency_keys/{hash of user and key}` document, created in the same atomic
write as the debit and the creation it made, holding the request's fingerprint. It expires after
`IDEMPOTENCY_TTL_HOURS` (a Firestore TTL policy on `expires_at` deletes it; an expired one is
free again even before that).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

from shared.core.errors import Conflict
from shared.core.log import get_logger, log_fields
from shared.store.documents import SERVER_TIME, Batch, Documents, Snapshot

logger = get_logger(__name__)

EXPIRES_AT: Final = "expires_at"  # the field Terraform's TTL policy deletes keys by


def request_fingerprint(operation: str, body: Any) -> str:
    """Same operation + same JSON content => same fingerprint, whatever the key order."""
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class KeyUse:
    """A key's request, seen from one submit: whose it is and what it must match."""

    user_id: str
    fingerprint: str
    ttl_hours: int

    def stage(self, batch: Batch, record: Snapshot, creation_id: str) -> str | None:
        """Claim the key for `creation_id` in `batch`, or name the creation it already made.

        Raises `Conflict` if the key was used with another request.
        """
        now = dt.datetime.now(dt.UTC)
        fields = {
            "user_id": self.user_id,
            "fingerprint": self.fingerprint,
            "creation_id": creation_id,
            "created_at": SERVER_TIME,
            EXPIRES_AT: now + dt.timedelta(hours=self.ttl_hours),
        }
        made = self.made_by(record, now)
        if made is not None:
            return made
        if record.exists:
            batch.update(record, fields)  # expired, not yet removed: the key is free again
        else:
            batch.create(record.path, fields)
        return None

    def made_by(self, record: Snapshot, now: dt.datetime | None = None) -> str | None:
        """The creation the key made, or None if the key is free (never used, or expired).

        Raises `Conflict` if the key was used with another request.
        """
        if not record.exists:
            return None
        expires_at = record.get(EXPIRES_AT)
        if isinstance(expires_at, dt.datetime) and expires_at <= (now or dt.datetime.now(dt.UTC)):
            return None
        if record.get("fingerprint") != self.fingerprint:
            raise Conflict("this Idempotency-Key was already used with a different request")
        return str(record.get("creation_id"))


def release(store: Documents, record_path: str, creation_id: str) -> None:
    """Free a key whose creation never got going, so a retry with it can succeed.

    Best effort: if this is lost, a retry with the key sees the failed, refunded creation,
    which is still the truth.
    """
    try:
        (record,) = store.read(record_path)
        if record.get("creation_id") == creation_id:
            batch = Batch()
            batch.delete(record)
            store.commit(batch)
    except Exception as exc:
        logger.warning(
            f"could not release the Idempotency-Key: {type(exc).__name__}",
            extra=log_fields(creation_id=creation_id),
        )
