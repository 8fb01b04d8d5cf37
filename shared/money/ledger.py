"""The token ledger: grants, debits and refunds, each applied at most once.

`users/{uid}.tokens` is the balance; `users/{uid}/ledger/{entry}` holds one entry per change,
with a deterministic id (`debit:{creation}`, `refund:{creation}`, `grant:{id}`) created in the
same atomic batch as the balance change. A second attempt at the same change finds its entry
already there and changes nothing, so the balance always equals the sum of the ledger and
never goes below zero (`shared.store.optimistic` says why batches with preconditions, not
transactions).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot

from shared.core.errors import InsufficientTokens, InvalidRequest, InvalidTransition
from shared.core.settings import Settings
from shared.store import paths
from shared.store.optimistic import read_together, run_optimistic, store_retry

RefundResult = Literal["refunded", "already_refunded", "not_refundable", "missing"]


@dataclass(frozen=True)
class StatusMove:
    """A move to a final status applied together with the refund (cancel, queue down)."""

    to: Literal["failed", "canceled"]
    allowed_from: frozenset[str]
    error: dict[str, str] | None = None


@dataclass(frozen=True)
class RefundOutcome:
    result: RefundResult
    creation: dict[str, Any] | None
    balance: int | None = None


class Ledger:
    """Balance changes for users, against the `users` collection of one Firestore database."""

    def __init__(self, db: firestore.Client, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._timeout = settings.store_timeout_seconds
        self._retry = store_retry(settings.store_timeout_seconds)

    # --- reads ------------------------------------------------------------------------------

    def user_ref(self, user_id: str) -> firestore.DocumentReference:
        return self._db.collection(paths.USERS).document(user_id)

    def balance(self, user_id: str) -> int:
        snapshot = self.user_ref(user_id).get(retry=self._retry, timeout=self._timeout)
        return balance_of(snapshot)

    def entries(self, user_id: str) -> list[dict[str, Any]]:
        ledger = self.user_ref(user_id).collection(paths.LEDGER)
        return [
            {"id": doc.id, **(doc.to_dict() or {})}
            for doc in ledger.stream(retry=self._retry, timeout=self._timeout)
        ]

    # --- staged writes, for callers that commit more in the same batch -----------------------

    def stage_debit(
        self,
        batch: firestore.WriteBatch,
        user: DocumentSnapshot[Any],
        *,
        cost: int,
        creation_id: str,
    ) -> int:
        """Add a debit of `cost` to `batch`, guarded by the user's update time.

        Returns the balance after. Raises `InsufficientTokens` (nothing staged) if short.
        """
        balance = balance_of(user)
        if cost <= 0:
            raise ValueError("a debit must be positive")
        if balance < cost:
            raise InsufficientTokens(
                f"this costs {cost} tokens and the balance is {balance}", balance=balance, cost=cost
            )
        after = balance - cost
        # `user.exists` holds here: a missing user has balance 0 and cannot pay a positive cost.
        batch.update(
            user.reference,
            {"tokens": after, "updated_at": firestore.SERVER_TIMESTAMP},
            option=self._db.write_option(last_update_time=user.update_time),
        )
        self._stage_entry(
            batch,
            user.reference,
            paths.debit_entry_id(creation_id),
            "debit",
            -cost,
            creation_id,
            after,
        )
        return after

    # --- whole operations ---------------------------------------------------------------------

    def grant(self, user_id: str, amount: int, *, grant_id: str | None = None) -> int:
        """Add `amount` tokens (once per `grant_id`). Returns the balance after."""
        if amount <= 0:
            raise InvalidRequest("tokens: must be a positive integer")
        entry_id = paths.grant_entry_id(grant_id or uuid.uuid4().hex)
        user_ref = self.user_ref(user_id)
        entry_ref = user_ref.collection(paths.LEDGER).document(entry_id)

        def attempt() -> int:
            user, entry = self._get_all(user_ref, entry_ref)
            if entry.exists:
                return balance_of(user)
            batch = self._db.batch()
            after = balance_of(user) + amount
            self._stage_balance(batch, user, after)
            self._stage_entry(batch, user_ref, entry_id, "grant", amount, None, after)
            batch.commit(retry=self._retry, timeout=self._timeout)
            return after

        return run_optimistic(
            attempt, max_attempts=self._settings.ledger_max_attempts, what="grant"
        )

    def refund(self, creation_id: str, *, move: StatusMove | None = None) -> RefundOutcome:
        """Give a `failed`/`canceled` creation's cost back, exactly once.

        With `move`, the creation is first moved to `move.to` in the same atomic batch; a
        creation in a status outside `move.allowed_from` raises `InvalidTransition`.
        A `draft` (or still running) creation is never refunded.
        """
        creation_ref = self._db.collection(paths.CREATIONS).document(creation_id)

        def attempt() -> RefundOutcome:
            creation = creation_ref.get(retry=self._retry, timeout=self._timeout)
            if not creation.exists:
                return RefundOutcome("missing", None)
            data = creation.to_dict() or {}
            if not {"status", "user_id", "cost"} <= data.keys():
                return RefundOutcome("not_refundable", {"id": creation_id, **data})
            status = data["status"]
            updates: dict[str, Any] = {}
            if move is not None and status != move.to:
                if status not in move.allowed_from:
                    raise InvalidTransition(
                        f"the creation is {status}; it cannot become {move.to}",
                        current=status,
                        wanted=move.to,
                    )
                updates = {
                    "status": move.to,
                    "error": move.error,
                    "completed_at": firestore.SERVER_TIMESTAMP,
                }
                status = move.to
            if status not in ("failed", "canceled"):
                return RefundOutcome("not_refundable", {"id": creation_id, **data})
            user_ref = self.user_ref(data["user_id"])
            entry_ref = user_ref.collection(paths.LEDGER).document(
                paths.refund_entry_id(creation_id)
            )
            user, entry = self._get_all(user_ref, entry_ref)
            if data.get("refunded") or entry.exists:
                if not updates and data.get("refunded"):
                    return RefundOutcome("already_refunded", {"id": creation_id, **data})
                # The refund entry exists but the flag or the move is missing: finish them.
                updates["refunded"] = True
                updates["updated_at"] = firestore.SERVER_TIMESTAMP
                creation_ref.update(
                    updates,
                    option=self._db.write_option(last_update_time=creation.update_time),
                    retry=self._retry,
                    timeout=self._timeout,
                )
                return RefundOutcome("already_refunded", {"id": creation_id, **data, **updates})
            cost = int(data["cost"])
            after = balance_of(user) + cost
            batch = self._db.batch()
            self._stage_balance(batch, user, after)
            self._stage_entry(batch, user_ref, entry_ref.id, "refund", cost, creation_id, after)
            updates.update({"refunded": True, "updated_at": firestore.SERVER_TIMESTAMP})
            batch.update(
                creation_ref,
                updates,
                option=self._db.write_option(last_update_time=creation.update_time),
            )
            batch.commit(retry=self._retry, timeout=self._timeout)
            return RefundOutcome("refunded", {"id": creation_id, **data, **updates}, after)

        return run_optimistic(
            attempt, max_attempts=self._settings.ledger_max_attempts, what="refund"
        )

    # --- helpers --------------------------------------------------------------------------------

    def _get_all(self, *refs: firestore.DocumentReference) -> list[DocumentSnapshot[Any]]:
        return read_together(self._db, refs, retry=self._retry, timeout=self._timeout)

    def _stage_balance(
        self, batch: firestore.WriteBatch, user: DocumentSnapshot[Any], after: int
    ) -> None:
        fields = {"tokens": after, "updated_at": firestore.SERVER_TIMESTAMP}
        if user.exists:
            option = self._db.write_option(last_update_time=user.update_time)
            batch.update(user.reference, fields, option=option)
        else:
            batch.create(user.reference, fields)  # fails if another writer created it first

    @staticmethod
    def _stage_entry(
        batch: firestore.WriteBatch,
        user_ref: firestore.DocumentReference,
        entry_id: str,
        kind: str,
        amount: int,
        creation_id: str | None,
        balance_after: int,
    ) -> None:
        batch.create(
            user_ref.collection(paths.LEDGER).document(entry_id),
            {
                "kind": kind,
                "amount": amount,
                "creation_id": creation_id,
                "balance_after": balance_after,
                "created_at": firestore.SERVER_TIMESTAMP,
            },
        )


def balance_of(user: DocumentSnapshot[Any]) -> int:
    if not user.exists:
        return 0
    return int((user.to_dict() or {}).get("tokens", 0))
