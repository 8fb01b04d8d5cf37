"""The token ledger: grants, debits and refunds, each applied at most once.

`users/{uid}.tokens` is the balance; `users/{uid}/ledger/{entry}` holds one entry per change,
with a deterministic id (`debit:{creation}`, `refund:{creation}`, `refund:{creation}:partial`
for what a partial draft did not make, `grant:{id}`) created in the
same atomic batch as the balance change. A second attempt at the same change finds its entry
already there and changes nothing, so the balance always equals the sum of the ledger and
never goes below zero (`shared.store.optimistic` says why batches with preconditions, not
transactions).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shared.core.errors import InsufficientTokens, InvalidRequest
from shared.core.settings import Settings
from shared.store import paths
from shared.store.documents import SERVER_TIME, Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic

EntryKind = Literal["debit", "refund", "grant"]


def partial_refund_amount(cost: int, asked: int, made: int) -> int:
    """What a creation that asked for `asked` items and got `made` (0 < made < asked) gets
    back: the unit price it was charged (`cost / asked`) for each item not made. Prices are per
    item, so this is exact; a cost that does not divide (a hand-made document) is rounded
    down, so never more comes back than was paid for what is missing."""
    if not 0 < made < asked:
        raise ValueError(f"not a partial result: {made} of {asked}")
    return cost * (asked - made) // asked


def balance_of(user: Snapshot) -> int:
    return int(user.get("tokens", 0))


@dataclass(frozen=True)
class Ledger:
    """Balance changes for users: whole operations (grant) and ones staged into a caller's batch
    (a debit with its new creation, a refund with its creation's status)."""

    store: Documents
    settings: Settings

    # --- reads ------------------------------------------------------------------------------

    def balance(self, user_id: str) -> int:
        (user,) = self.store.read(paths.user(user_id))
        return balance_of(user)

    def entries(self, user_id: str) -> list[dict[str, Any]]:
        return [
            {"id": s.id, **(s.data or {})}
            for s in self.store.read_collection(paths.ledger(user_id))
        ]

    # --- whole operations ---------------------------------------------------------------------

    def grant(self, user_id: str, amount: int, *, grant_id: str | None = None) -> int:
        """Add `amount` tokens (once per `grant_id`). Returns the balance after."""
        if amount <= 0:
            raise InvalidRequest("tokens: must be a positive integer")
        entry_path = paths.grant_entry(user_id, grant_id or uuid.uuid4().hex)

        def attempt() -> int:
            user, entry = self.store.read(paths.user(user_id), entry_path)
            if entry.exists:
                return balance_of(user)
            batch = Batch()
            after = self._stage(batch, user, entry_path, "grant", amount, None)
            self.store.commit(batch)
            return after

        return run_optimistic(attempt, self.settings, "grant")

    # --- staged into a caller's batch ---------------------------------------------------------

    def stage_debit(
        self,
        batch: Batch,
        user: Snapshot,
        *,
        cost: int,
        creation_id: str,
        user_fields: Mapping[str, Any] | None = None,
    ) -> int:
        """Add a debit of `cost` for `creation_id` to `batch`; the balance after. `user_fields`
        are written on the user document in the same guarded write (a batch holds one write
        per document): the submit rate bucket, say.

        Raises `InsufficientTokens` (nothing staged) if the balance is short.
        """
        balance = balance_of(user)
        if cost <= 0:
            raise ValueError("a debit must be positive")
        if balance < cost:
            raise InsufficientTokens(
                f"this costs {cost} tokens and the balance is {balance}", balance=balance, cost=cost
            )
        entry = paths.debit_entry(user.id, creation_id)
        return self._stage(batch, user, entry, "debit", -cost, creation_id, user_fields)

    def stage_refund(self, batch: Batch, user: Snapshot, *, cost: int, creation_id: str) -> int:
        """Add the refund of `cost` for `creation_id` to `batch`; the balance after. The caller
        marks the creation refunded in the same batch."""
        entry = paths.refund_entry(user.id, creation_id)
        return self._stage(batch, user, entry, "refund", cost, creation_id)

    def stage_partial_refund(
        self, batch: Batch, user: Snapshot, *, amount: int, creation_id: str
    ) -> int:
        """Add the refund of `amount` (the images a partial draft lacks) for `creation_id` to
        `batch`; the balance after. The caller moves the creation to `draft` in the same batch,
        so the entry is made once, by the claim that made the draft."""
        if amount <= 0:
            raise ValueError("a partial refund must be positive")
        entry = paths.partial_refund_entry(user.id, creation_id)
        return self._stage(batch, user, entry, "refund", amount, creation_id)

    def _stage(
        self,
        batch: Batch,
        user: Snapshot,
        entry_path: str,
        kind: EntryKind,
        amount: int,
        creation_id: str | None,
        user_fields: Mapping[str, Any] | None = None,
    ) -> int:
        after = balance_of(user) + amount
        balance = {**(user_fields or {}), "tokens": after, "updated_at": SERVER_TIME}
        if user.exists:
            batch.update(user, balance)
        else:
            batch.create(user.path, balance)  # fails if another writer created it first
        batch.create(
            entry_path,
            {
                "kind": kind,
                "amount": amount,
                "creation_id": creation_id,
                "balance_after": after,
                "created_at": SERVER_TIME,
            },
        )
        return after
