"""Claims on creations: who is working on one, until when, and the writes only they may make.

A worker *claims* a creation before working on it (`pending → processing`, or a re-claim of a
`processing` one whose lease has expired). The claim records an owner token, the attempt
number and a lease expiry. Every later write of that worker (progress, checkpoint, draft,
failure) is guarded: it applies only while the creation is still `processing` under the same
owner, so a worker that lost its lease (slow, or presumed dead and replaced) can never
overwrite the result of the one that replaced it, nor move a finished creation.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from google.cloud import firestore

from shared.core.errors import NotFound
from shared.core.settings import Settings
from shared.creations.model import FINAL_STATUSES
from shared.store import paths
from shared.store.optimistic import run_optimistic, store_retry

SkipReason = Literal["missing", "final", "leased", "exhausted", "lost_lease"]


@dataclass(frozen=True)
class Claim:
    creation_id: str
    owner: str
    attempt: int
    user_id: str
    type: str
    request: dict[str, Any]
    checkpoint: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Skip:
    reason: SkipReason
    status: str | None = None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ClaimStore:
    def __init__(
        self,
        db: firestore.Client,
        settings: Settings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._timeout = settings.store_timeout_seconds
        self._retry = store_retry(settings.store_timeout_seconds)

    def _ref(self, creation_id: str) -> firestore.DocumentReference:
        return self._db.collection(paths.CREATIONS).document(creation_id)

    def claim(self, creation_id: str) -> Claim | Skip:
        """Take the creation for one attempt, or say why not (then the event is acked)."""
        ref = self._ref(creation_id)
        owner = uuid.uuid4().hex

        def attempt() -> Claim | Skip:
            snapshot = ref.get(retry=self._retry, timeout=self._timeout)
            if not snapshot.exists:
                return Skip("missing")
            data = snapshot.to_dict() or {}
            status = data["status"]
            now = self._clock()
            if status in FINAL_STATUSES:
                return Skip("final", status)
            if status == "processing" and data.get("lease_owner") == owner:
                # An earlier round's claim was applied although its answer was lost.
                return _claim_from(creation_id, owner, data)
            lease = data.get("lease_expires_at")
            if status == "processing" and isinstance(lease, dt.datetime) and lease > now:
                return Skip("leased", status)
            attempts = int(data.get("attempts", 0)) + 1
            guard = self._db.write_option(last_update_time=snapshot.update_time)
            if attempts > self._settings.max_generation_attempts:
                ref.update(
                    _failure_fields(
                        "too_many_attempts",
                        f"Generation was tried {attempts - 1} times without finishing.",
                    ),
                    option=guard,
                    retry=self._retry,
                    timeout=self._timeout,
                )
                return Skip("exhausted", "failed")
            ref.update(
                {
                    "status": "processing",
                    "attempts": attempts,
                    "lease_owner": owner,
                    "lease_expires_at": now + dt.timedelta(seconds=self._settings.lease_seconds),
                    "started_at": data.get("started_at") or firestore.SERVER_TIMESTAMP,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                },
                option=guard,
                retry=self._retry,
                timeout=self._timeout,
            )
            return _claim_from(creation_id, owner, {**data, "attempts": attempts})

        return run_optimistic(
            attempt, max_attempts=self._settings.ledger_max_attempts, what="claim"
        )

    def update_owned(
        self,
        claim: Claim,
        fields: dict[str, Any],
        *,
        needed: Callable[[dict[str, Any]], bool] = lambda _data: True,
    ) -> bool:
        """Apply `fields` while the claim is still ours; False if it no longer is.

        `needed(current document)` may say the write is unnecessary: then nothing is written
        (and the answer is still True: the claim is ours).
        """
        ref = self._ref(claim.creation_id)

        def attempt() -> bool:
            snapshot = ref.get(retry=self._retry, timeout=self._timeout)
            data = snapshot.to_dict() if snapshot.exists else None
            if (
                data is None
                or data.get("status") != "processing"
                or data.get("lease_owner") != claim.owner
            ):
                return False
            if not needed(data):
                return True
            ref.update(
                {**fields, "updated_at": firestore.SERVER_TIMESTAMP},
                option=self._db.write_option(last_update_time=snapshot.update_time),
                retry=self._retry,
                timeout=self._timeout,
            )
            return True

        return run_optimistic(
            attempt, max_attempts=self._settings.ledger_max_attempts, what="update"
        )

    def report_progress(self, claim: Claim, percent: int) -> bool:
        """Raise `progress` to `percent` (never lower it: an earlier attempt may have gone
        further than this one has yet)."""
        percent = max(0, min(99, percent))
        return self.update_owned(
            claim,
            {"progress": percent},
            needed=lambda data: percent > int(data.get("progress") or 0),
        )

    def save_checkpoint(self, claim: Claim, values: dict[str, Any]) -> bool:
        return self.update_owned(
            claim, {f"checkpoint.{key}": value for key, value in values.items()}
        )

    def complete(self, claim: Claim, media: list[dict[str, Any]]) -> bool:
        """`processing → draft` with the media; False if the claim was lost meanwhile."""
        return self.update_owned(
            claim,
            {
                "status": "draft",
                "media": media,
                "progress": 100,
                "error": None,
                "completed_at": firestore.SERVER_TIMESTAMP,
                "lease_owner": None,
                "lease_expires_at": None,
            },
        )

    def fail(self, claim: Claim, code: str, message: str) -> bool:
        """`processing → failed` (the refund follows from the status change)."""
        return self.update_owned(claim, _failure_fields(code, message))

    def release(self, claim: Claim) -> bool:
        """Give the lease back after a transient error, so a redelivery may claim at once."""
        return self.update_owned(claim, {"lease_expires_at": self._clock()})

    def fail_unfinished(
        self, creation_id: str, code: str, message: str, *, spare_live_lease: bool = False
    ) -> bool:
        """Fail a `pending`/`processing` creation whoever holds it (dead letters, sweeper).

        Returns False if it was already final (nothing to do), or, with `spare_live_lease`,
        if a worker holds a live lease on it (it may yet finish).
        """
        ref = self._ref(creation_id)

        def attempt() -> bool:
            snapshot = ref.get(retry=self._retry, timeout=self._timeout)
            if not snapshot.exists:
                raise NotFound(f"creation {creation_id} does not exist")
            data = snapshot.to_dict() or {}
            if data.get("status") in FINAL_STATUSES:
                return False
            lease = data.get("lease_expires_at")
            if spare_live_lease and isinstance(lease, dt.datetime) and lease > self._clock():
                return False
            ref.update(
                _failure_fields(code, message),
                option=self._db.write_option(last_update_time=snapshot.update_time),
                retry=self._retry,
                timeout=self._timeout,
            )
            return True

        return run_optimistic(attempt, max_attempts=self._settings.ledger_max_attempts, what="fail")


def _claim_from(creation_id: str, owner: str, data: dict[str, Any]) -> Claim:
    return Claim(
        creation_id=creation_id,
        owner=owner,
        attempt=int(data.get("attempts", 1)),
        user_id=data["user_id"],
        type=data["type"],
        request=dict(data.get("request") or {}),
        checkpoint=dict(data.get("checkpoint") or {}),
    )


def _failure_fields(code: str, message: str) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": {"code": code, "message": message},
        "completed_at": firestore.SERVER_TIMESTAMP,
        "updated_at": firestore.SERVER_TIMESTAMP,
        "lease_owner": None,
        "lease_expires_at": None,
    }
