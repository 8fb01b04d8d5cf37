"""Accepting a creation: debit, document and idempotency record in one atomic write, then enqueue.

The order matters. The debit, the `pending` creation and the `Idempotency-Key` record are
committed together (all or nothing), guarded so concurrent submits of one user cannot overspend.
The answer is built from what that commit wrote (nothing is read back). Publishing happens
after the commit; if it fails, the creation is failed and refunded before the caller hears
`503 queue_unavailable`. If the process dies between commit and publish, the creation stays
`pending` and the sweeper re-enqueues it.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

from shared.core.errors import Conflict, QueueUnavailable, StoreBusy
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.lifecycle import stage_new
from shared.creations.model import Creation, new_creation_id
from shared.creations.requests import StoredRequest
from shared.intake import idempotency
from shared.intake.idempotency import KeyUse
from shared.money.ledger import Ledger, balance_of
from shared.money.pricing import creation_cost
from shared.money.refunds import NOT_QUEUED, QUEUE_UNAVAILABLE, Refunds
from shared.store import paths
from shared.store.documents import Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic
from shared.work.jobs import JobPublisher, topic_for

logger = get_logger(__name__)


@dataclass(frozen=True)
class Accepted:
    """What a submit answers: the creation as committed, the balance after the debit, and
    whether this was a repeat of an earlier submit (same `Idempotency-Key`)."""

    creation: Creation
    balance: int
    replayed: bool


class QueueUnavailableRefunded(QueueUnavailable):
    """Enqueueing failed after the debit; says whether the tokens are already back."""

    def __init__(self, message: str, *, refunded: bool, creation_id: str) -> None:
        super().__init__(message)
        self.refunded = refunded
        self.creation_id = creation_id

    def answer_fields(self) -> dict[str, Any]:
        return {"refunded": self.refunded}


@dataclass(frozen=True)
class SubmissionService:
    store: Documents
    settings: Settings
    _: KW_ONLY
    ledger: Ledger
    refunds: Refunds
    publisher: JobPublisher

    def submit(
        self,
        *,
        user_id: str,
        request: StoredRequest,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Accepted:
        """Debit what `request` costs and queue its job; `fingerprint` is what a replay of
        `idempotency_key` must repeat."""
        cost = creation_cost(request, self.settings)
        creation_id = new_creation_id()
        creation_path = paths.creation(creation_id)
        debit_path = paths.debit_entry(user_id, creation_id)
        key_path = paths.idempotency_key(user_id, idempotency_key) if idempotency_key else None
        key_use = KeyUse(user_id, fingerprint, self.settings.idempotency_ttl_hours)

        def attempt() -> Accepted:
            user, debit, creation, *key = self.store.read(
                paths.user(user_id), debit_path, creation_path, *filter(None, [key_path])
            )
            if debit.exists:
                # An earlier round's commit was applied although its answer was lost (the
                # client library's retry then lost the race against it): this call is done.
                return _accepted_as_stored(creation, debit)
            batch = Batch()
            if key:
                made = key_use.stage(batch, key[0], creation_id)
                if made is not None:
                    return self._replay(made, user)
            balance = self.ledger.stage_debit(batch, user, cost=cost, creation_id=creation_id)
            stage_new(batch, creation_id=creation_id, user_id=user_id, request=request, cost=cost)
            try:
                written = self.store.commit(batch)
            except StoreBusy:
                # The commit's answer was lost, not necessarily the commit: look before telling
                # the caller nothing was debited.
                debit, creation = self.store.read(debit_path, creation_path)
                if not debit.exists:
                    raise
                return _accepted_as_stored(creation, debit)
            return Accepted(Creation.of(written[creation_path]), balance, replayed=False)

        accepted = run_optimistic(attempt, self.settings, "submit")
        fields = log_fields(user_id=user_id, creation_id=accepted.creation.id)
        if accepted.replayed:
            logger.info("idempotent replay", extra=fields)
            return accepted
        logger.info("creation accepted", extra=log_fields(cost=cost, type=request.TYPE, **fields))
        return self._enqueue(accepted, key_path)

    def _fail_unqueued(self, creation_id: str) -> Creation | None:
        """Fail and refund a creation whose job could not be queued; the creation as it now is
        (None when that cannot be known: the store stopped answering)."""
        try:
            outcome = self.refunds.refund(creation_id, move=NOT_QUEUED)
            if outcome.creation is not None:
                return Creation.of(outcome.creation)
        except Exception:
            # The refund's answer may be what was lost, not the refund: look before saying.
            logger.exception(
                "refund after a failed enqueue did not answer; reading what landed",
                extra=log_fields(creation_id=creation_id),
            )
        try:
            (creation,) = self.store.read(paths.creation(creation_id))
        except Exception:
            logger.exception(
                "cannot tell whether the creation was refunded; the sweeper will finish it",
                extra=log_fields(creation_id=creation_id),
            )
            return None
        return Creation.of(creation) if creation.exists else None

    def _replay(self, creation_id: str, user: Snapshot) -> Accepted:
        (creation,) = self.store.read(paths.creation(creation_id))
        if not creation.exists:
            raise Conflict("the creation made with this Idempotency-Key has been deleted")
        return Accepted(Creation.of(creation), balance_of(user), replayed=True)

    def _enqueue(self, accepted: Accepted, key_path: str | None) -> Accepted:
        creation = accepted.creation
        fields = {"user_id": creation.user_id, "creation_id": creation.id}
        try:
            message_id = self.publisher.publish(
                creation.job, topic=topic_for(creation.type, self.settings)
            )
        except QueueUnavailable as exc:
            logger.error(
                "enqueue failed; failing and refunding the creation",
                extra=log_fields(**fields, error=exc.message),
            )
            now = self._fail_unqueued(creation.id)
            if now is not None and now.status != "pending" and not _failed_unqueued(now):
                # The publish timed out here but reached Pub/Sub after all: a worker has the
                # creation already. It is under way, so the caller gets a normal acceptance.
                logger.warning(
                    f"the job was enqueued after all ({now.status}); not failing it",
                    extra=log_fields(**fields),
                )
                return Accepted(now, accepted.balance, replayed=False)
            refunded = now is not None and now.refunded
            if refunded and key_path is not None:
                idempotency.release(self.store, key_path, creation.id)
            raise QueueUnavailableRefunded(
                exc.message, refunded=refunded, creation_id=creation.id
            ) from exc
        logger.info("job enqueued", extra=log_fields(**fields, message_id=message_id))
        return accepted


def _failed_unqueued(creation: Creation) -> bool:
    error = creation.error or {}
    return creation.status == "failed" and error.get("code") == QUEUE_UNAVAILABLE


def _accepted_as_stored(creation: Snapshot, debit: Snapshot) -> Accepted:
    """The acceptance of a debit that is already there (its answer was lost)."""
    if not creation.exists:
        raise Conflict("the creation this request made has been deleted")
    return Accepted(Creation.of(creation), int(debit.get("balance_after")), replayed=False)
