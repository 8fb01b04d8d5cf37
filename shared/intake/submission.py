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

from shared.core.errors import Conflict, QueueUnavailable, StoreBusy
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.model import Creation
from shared.creations.requests import StoredRequest
from shared.creations.store import new_creation_id, stage_create
from shared.intake import idempotency
from shared.intake.idempotency import KeyUse
from shared.money.ledger import Ledger, balance_of
from shared.money.refunds import NOT_QUEUED, Refunds
from shared.store import paths
from shared.store.documents import Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic
from shared.work.jobs import JobPublisher, topic_for

logger = get_logger(__name__)


@dataclass(frozen=True)
class Accepted:
    creation: Creation
    balance: int
    replayed: bool


class QueueUnavailableRefunded(QueueUnavailable):
    """Enqueueing failed after the debit; says whether the tokens are already back."""

    def __init__(self, message: str, *, refunded: bool, creation_id: str) -> None:
        super().__init__(message)
        self.refunded = refunded
        self.creation_id = creation_id


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
        cost: int,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Accepted:
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
            stage_create(
                batch, creation_id=creation_id, user_id=user_id, request=request, cost=cost
            )
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

        accepted = run_optimistic(
            attempt, max_attempts=self.settings.store_max_attempts, what="submit"
        )
        fields = log_fields(user_id=user_id, creation_id=accepted.creation.id)
        if accepted.replayed:
            logger.info("idempotent replay", extra=fields)
            return accepted
        logger.info("creation accepted", extra=log_fields(cost=cost, type=request.TYPE, **fields))
        return self._enqueue(accepted, key_path)

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
            try:
                outcome = self.refunds.refund(creation.id, move=NOT_QUEUED)
            except Exception:
                logger.exception(
                    "refund after a failed enqueue did not complete; the sweeper will finish it",
                    extra=log_fields(**fields),
                )
                raise QueueUnavailableRefunded(
                    exc.message, refunded=False, creation_id=creation.id
                ) from exc
            if outcome.result == "moved_on" and outcome.creation is not None:
                # The publish timed out here but reached Pub/Sub after all: a worker has the
                # creation already. It is under way, so the caller gets a normal acceptance.
                now = Creation.of(outcome.creation)
                logger.warning(
                    f"the job was enqueued after all ({now.status}); not failing it",
                    extra=log_fields(**fields),
                )
                return Accepted(now, accepted.balance, replayed=False)
            refunded = outcome.result in ("refunded", "already_refunded")
            if refunded and key_path is not None:
                idempotency.release(self.store, key_path, creation.id)
            raise QueueUnavailableRefunded(
                exc.message, refunded=refunded, creation_id=creation.id
            ) from exc
        logger.info("job enqueued", extra=log_fields(**fields, message_id=message_id))
        return accepted


def _accepted_as_stored(creation: Snapshot, debit: Snapshot) -> Accepted:
    """The acceptance of a debit that is already there (its answer was lost)."""
    if not creation.exists:
        raise Conflict("the creation this request made has been deleted")
    return Accepted(Creation.of(creation), int(debit.get("balance_after")), replayed=False)
