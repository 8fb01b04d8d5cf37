"""The baseline's Firestore writes, in the suite's document layout, each one atomic commit.

    accept    users/{uid}.tokens -= cost, users/{uid}/ledger/debit:{id}, creations/{id} pending
    claim     pending (or processing with an expired lease) -> processing, lease, attempts + 1
    complete  processing -> draft with the media and progress 100
    fail      -> failed, refunded: users/{uid}.tokens += cost, users/{uid}/ledger/refund:{id}

Every update carries an `update_time` precondition from the read it was decided on, and new
documents are `create`s, so two writers never both win: the loser reads again and decides again
(the suite's way too, rather than Firestore transactions, which lock pessimistically and crawl
in the emulator).
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from benchmarks.baseline.config import BaselineSettings

T = TypeVar("T")
# Another writer got there first (a precondition failed, or a `create` found its document).
LOST_RACE = (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.Conflict, gexc.Aborted)
FINAL = frozenset({"draft", "failed", "canceled"})


class TokensShort(Exception):
    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(f"this costs {cost} tokens and the balance is {balance}")
        self.balance = balance
        self.cost = cost


class Contended(Exception):
    """The documents stayed contended for every round: the caller may retry shortly."""


@dataclass(frozen=True)
class Accepted:
    creation_id: str
    cost: int
    balance: int


@dataclass(frozen=True)
class Claim:
    creation_id: str
    user_id: str
    request: dict[str, Any]
    owner: str
    claimed_at: dt.datetime  # the claim's update time: the precondition of the finishing write


def optimistic(attempt: Callable[[], T], rounds: int) -> T:
    """Run `attempt` (read, decide, guarded commit) until it wins a round."""
    for round_number in range(rounds):
        try:
            return attempt()
        except LOST_RACE:
            # Full jitter, growing slowly: a burst of one user's submits spreads out.
            time.sleep(random.uniform(0, min(0.25, 0.01 * (round_number + 1))))  # noqa: S311
    raise Contended("the documents stayed contended; retry shortly")


class Creations:
    def __init__(self, db: firestore.Client, settings: BaselineSettings) -> None:
        self._db = db
        self._settings = settings

    def _unchanged(self, snapshot: Any) -> Any:
        return self._db.write_option(last_update_time=snapshot.update_time)

    def accept(self, user_id: str, request: dict[str, Any]) -> Accepted:
        """Debit the cost and create the pending creation, all or nothing."""
        cost = self._settings.image_cost_tokens
        creation_id = uuid.uuid4().hex
        user_ref = self._db.document(f"users/{user_id}")

        def attempt() -> Accepted:
            user = user_ref.get()
            balance = int((user.to_dict() or {}).get("tokens", 0)) if user.exists else 0
            if balance < cost:
                raise TokensShort(balance, cost)
            after = balance - cost
            batch = self._db.batch()
            batch.update(
                user_ref,
                {"tokens": after, "updated_at": firestore.SERVER_TIMESTAMP},
                option=self._unchanged(user),
            )
            batch.create(
                user_ref.collection("ledger").document(f"debit:{creation_id}"),
                _entry("debit", -cost, creation_id, after),
            )
            batch.create(
                self._db.document(f"creations/{creation_id}"),
                {
                    "user_id": user_id,
                    "type": "image",
                    "request": request,
                    "cost": cost,
                    "status": "pending",
                    "progress": 0,
                    "media": [],
                    "error": None,
                    "refunded": False,
                    "attempts": 0,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "created_at": firestore.SERVER_TIMESTAMP,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                    "completed_at": None,
                },
            )
            batch.commit()
            return Accepted(creation_id, cost, after)

        return optimistic(attempt, self._settings.store_max_attempts)

    def claim(self, creation_id: str) -> Claim | None:
        """Take the creation for one attempt; None when there is nothing to do (it is gone,
        final, or another worker's lease on it is live)."""
        ref = self._db.document(f"creations/{creation_id}")
        owner = uuid.uuid4().hex

        def attempt() -> Claim | None:
            creation = ref.get()
            data = creation.to_dict() or {}
            status = data.get("status")
            if not creation.exists or status in FINAL:
                return None
            now = dt.datetime.now(dt.UTC)
            lease = data.get("lease_expires_at")
            if status == "processing" and data.get("lease_owner") == owner:
                # An earlier round's claim landed although its answer was lost.
                return Claim(
                    creation_id, data["user_id"], data["request"], owner, creation.update_time
                )
            if status == "processing" and isinstance(lease, dt.datetime) and lease > now:
                return None
            result = ref.update(
                {
                    "status": "processing",
                    "lease_owner": owner,
                    "lease_expires_at": now + dt.timedelta(seconds=self._settings.lease_seconds),
                    "attempts": int(data.get("attempts", 0)) + 1,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                },
                option=self._unchanged(creation),
            )
            return Claim(creation_id, data["user_id"], data["request"], owner, result.update_time)

        return optimistic(attempt, self._settings.store_max_attempts)

    def complete(self, claim: Claim, media: list[dict[str, Any]]) -> bool:
        """processing -> draft, unless the creation changed since the claim (False then)."""
        ref = self._db.document(f"creations/{claim.creation_id}")
        try:
            ref.update(
                {
                    "status": "draft",
                    "media": media,
                    "progress": 100,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                    "completed_at": firestore.SERVER_TIMESTAMP,
                },
                option=self._db.write_option(last_update_time=claim.claimed_at),
            )
        except LOST_RACE:
            # Lost to another writer, or our own write landed and only its answer was lost.
            now = ref.get().to_dict() or {}
            return now.get("status") == "draft" and now.get("media") == media
        return True

    def fail(self, creation_id: str, code: str, message: str, *, owner: str | None) -> bool:
        """Fail an unfinished creation and refund its cost in the same commit; False if it was
        final already or (with `owner`) another worker holds it now."""
        ref = self._db.document(f"creations/{creation_id}")

        def attempt() -> bool:
            creation = ref.get()
            data = creation.to_dict() or {}
            if not creation.exists or data.get("status") in FINAL:
                return False
            if owner is not None and data.get("lease_owner") != owner:
                return False
            user_ref = self._db.document(f"users/{data['user_id']}")
            user = user_ref.get()
            cost = int(data["cost"])
            after = int((user.to_dict() or {}).get("tokens", 0)) + cost
            batch = self._db.batch()
            batch.update(
                ref,
                {
                    "status": "failed",
                    "error": {"code": code, "message": message},
                    "refunded": True,
                    "lease_owner": None,
                    "lease_expires_at": None,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                    "completed_at": firestore.SERVER_TIMESTAMP,
                },
                option=self._unchanged(creation),
            )
            batch.update(
                user_ref,
                {"tokens": after, "updated_at": firestore.SERVER_TIMESTAMP},
                option=self._unchanged(user),
            )
            batch.create(
                user_ref.collection("ledger").document(f"refund:{creation_id}"),
                _entry("refund", cost, creation_id, after),
            )
            batch.commit()
            return True

        return optimistic(attempt, self._settings.store_max_attempts)


def _entry(kind: str, amount: int, creation_id: str, balance_after: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "amount": amount,
        "creation_id": creation_id,
        "balance_after": balance_after,
        "created_at": firestore.SERVER_TIMESTAMP,
    }
