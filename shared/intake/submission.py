"""Accepting a creation: debit, document and idempotency record in one atomic write, then enqueue.

The order matters. The debit, the `pending` creation and the `Idempotency-Key` record are
committed together (all or nothing), guarded so concurrent submits of one user cannot overspend
nor pass the per-user limits (shared.intake.limits), which the same round decides: a replay
answers first and is never limited; then the submit rate, the balance, the active count.
The answer is built from what that commit wrote (nothing is read back). Once a commit has
been sent, the answer never says "nothing was debited" unless a read shows it: a commit whose
answer was lost and whose check cannot be read is `Unconfirmed`, not `busy`.

Publishing happens after the commit. If it fails, the creation is failed and refunded before
the caller hears `503 queue_unavailable` (if only the refund cannot be written, the creation is
still failed, and its status event, or else the sweeper, refunds it); if not even that can be
written, the creation is `pending` and the answer is an acceptance: the sweeper queues it
again. If the process dies
between commit and publish, the creation stays `pending` and the sweeper re-enqueues it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final

from shared.core.errors import (
    Conflict,
    InsufficientTokens,
    QueueUnavailable,
    RetryableError,
    TooManyRequests,
)
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.lifecycle import stage_move, stage_new
from shared.creations.model import Creation, Job, new_creation_id
from shared.creations.reading import being_deleted
from shared.creations.requests import StoredRequest
from shared.creations.status_events import StatusAnnouncer, StatusEvent
from shared.intake import idempotency, limits
from shared.intake.idempotency import KeyUse
from shared.money.ledger import Ledger, balance_of
from shared.money.pricing import creation_cost
from shared.money.refunds import NOT_QUEUED, QUEUE_UNAVAILABLE, Refunds
from shared.store import paths
from shared.store.documents import Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic
from shared.webhooks import WebhookBody, webhook_document
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
    """Enqueueing failed after the debit, and the creation is `failed`; says whether its tokens
    are back already (otherwise its status event, or else the sweeper, gives them back)."""

    def __init__(self, message: str, *, refunded: bool, creation_id: str) -> None:
        super().__init__(message)
        self.refunded = refunded
        self.creation_id = creation_id

    def answer_fields(self) -> dict[str, Any]:
        return {"refunded": self.refunded}


class Unconfirmed(RetryableError, code="unconfirmed"):
    """A write of this submit was sent and Firestore then stopped answering, so what it did
    cannot be told: the creation named may exist, be `pending` (and then go on) or be failed."""

    def __init__(self, creation_id: str, message: str) -> None:
        super().__init__(message)
        self.creation_id = creation_id

    def answer_fields(self) -> dict[str, Any]:
        return {"creation_id": self.creation_id}

    def answer_headers(self) -> dict[str, str]:
        return {"Location": f"/v1/creations/{self.creation_id}"}


DEBIT_UNCONFIRMED: Final = (
    "the debit may have been made: Firestore did not confirm it; look up the creation"
    " (404 means nothing was debited) or retry with the same Idempotency-Key"
)
UNQUEUED_UNCONFIRMED: Final = (
    "the job could not be queued, and Firestore stopped answering before the creation could be"
    " failed and refunded or read back; look up the creation to see what became of it"
)


@dataclass(frozen=True)
class SubmissionService:
    store: Documents
    settings: Settings
    _: KW_ONLY
    ledger: Ledger
    refunds: Refunds
    publisher: JobPublisher
    announcer: StatusAnnouncer
    # The submit rate bucket's clock (shared.intake.limits).
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def submit(
        self,
        *,
        user_id: str,
        request: StoredRequest,
        idempotency_key: str | None,
        fingerprint: str,
        webhook: WebhookBody | None = None,
    ) -> Accepted:
        """Debit what `request` costs and queue its job; `fingerprint` is what a replay of
        `idempotency_key` must repeat. `webhook` (checked already) is stored on the creation
        with an empty delivery record, and its events go on the job."""
        cost = creation_cost(request, self.settings)
        creation_id = new_creation_id()
        creation_path = paths.creation(creation_id)
        debit_path = paths.debit_entry(user_id, creation_id)
        key_path = paths.idempotency_key(user_id, idempotency_key) if idempotency_key else None
        key_use = KeyUse(user_id, fingerprint, self.settings.idempotency_ttl_hours)

        sent = False  # whether a round of this call has sent its commit

        def attempt() -> Accepted:
            nonlocal sent
            key_paths = [key_path] if key_path else []
            if sent:
                # An earlier round's commit was sent and lost its race: it may have been applied
                # although its answer was lost (the client library's resend then ran into it).
                # Only then can the debit and the creation exist: the ids are this call's own.
                user, debit, creation, *key = self.store.read(
                    paths.user(user_id), debit_path, creation_path, *key_paths
                )
                if debit.exists:
                    return _accepted_as_stored(creation, debit)  # it landed: this call is done
            else:
                user, *key = self.store.read(paths.user(user_id), *key_paths)
            sent = False  # this read shows that no earlier round's commit landed
            batch = Batch()
            if key:
                made = key_use.stage(batch, key[0], creation_id)
                if made is not None:
                    return self._replay(made, user_id, user)
            # The limits, in this order, decided on what this round read: none writes anything
            # unless the submit goes through (shared.intake.limits says why a burst cannot
            # slip past them).
            try:
                bucket = limits.take_submit_token(user, self.settings, self.clock())
                balance = self.ledger.stage_debit(
                    batch, user, cost=cost, creation_id=creation_id, user_fields=bucket
                )
                limits.check_active(self.store, user_id, self.settings)
            except (TooManyRequests, InsufficientTokens):
                # A resend of this key may have raced its own first send, which then took the
                # last token or slot: its creation is the answer, never a refusal.
                replayed = self._replay_if_made(key_path, key_use, user_id)
                if replayed is not None:
                    return replayed
                raise
            stage_new(
                batch,
                creation_id=creation_id,
                user_id=user_id,
                request=request,
                cost=cost,
                webhook=webhook_document(webhook) if webhook else None,
            )
            sent = True
            written = self.store.commit(batch)
            return Accepted(Creation.of(written[creation_path]), balance, replayed=False)

        try:
            accepted = run_optimistic(attempt, self.settings, "submit")
        except Exception as failure:
            if not sent:
                raise  # nothing was sent since a read showed no debit: nothing was debited
            # A sent commit may have landed whatever its caller heard: look before answering.
            job = Job(
                creation_id=creation_id,
                user_id=user_id,
                type=request.TYPE,
                webhook_events=tuple(webhook.events) if webhook else (),
            )
            accepted = self._confirm(job, failure)
        fields = {"user_id": user_id, "creation_id": accepted.creation.id}
        if accepted.replayed:
            logger.info("idempotent replay", extra=log_fields(**fields))
            return accepted
        return self._enqueue(accepted, key_path, cost=cost)

    def _replay_if_made(
        self, key_path: str | None, key_use: KeyUse, user_id: str
    ) -> Accepted | None:
        """The replay of `key_path`'s creation if the key has one by now (read again)."""
        if key_path is None:
            return None
        (record,) = self.store.read(key_path)
        made = key_use.made_by(record)
        return None if made is None else self._replay(made, user_id)

    def replay(self, *, user_id: str, idempotency_key: str, fingerprint: str) -> Accepted | None:
        """The answer to a repeat of an earlier submit with this key, or None if the key is
        free. Asked before the request is checked again, so a replay answers what was made
        whatever changed since (a clip deleted, a model withdrawn). Raises `Conflict` if the
        key was used with another request."""
        key_use = KeyUse(user_id, fingerprint, self.settings.idempotency_ttl_hours)
        # The key alone: a free key (the usual case) needs nothing else; a replay reads the
        # balance with its creation.
        (record,) = self.store.read(paths.idempotency_key(user_id, idempotency_key))
        made = key_use.made_by(record)
        return None if made is None else self._replay(made, user_id)

    def _confirm(self, job: Job, failure: Exception) -> Accepted:
        """After a sent commit failed with `failure`: its acceptance if it landed after all;
        `failure` again if a read shows it did not; `Unconfirmed` if no read can tell."""
        fields = log_fields(creation_id=job.creation_id, user_id=job.user_id)
        try:
            debit, creation = self.store.read(
                paths.debit_entry(job.user_id, job.creation_id), paths.creation(job.creation_id)
            )
        except Exception as exc:
            logger.error(
                f"a debit was sent but cannot be confirmed ({failure!r}); queueing its job in"
                " case it landed",
                exc_info=exc,
                extra=fields,
            )
            # If it landed, it goes on now; if not, the worker finds no creation and skips it.
            # If this publish fails too, a creation that landed is `pending`: the sweeper.
            with contextlib.suppress(QueueUnavailable):
                self.publisher.publish(job, topic=topic_for(job.type, self.settings))
            raise Unconfirmed(job.creation_id, DEBIT_UNCONFIRMED) from exc
        if not debit.exists:
            raise failure
        logger.warning(f"the debit landed although its commit failed: {failure!r}", extra=fields)
        return _accepted_as_stored(creation, debit)

    def _fail_unqueued(self, creation_id: str) -> Creation | None:
        """Fail a creation whose job could not be queued, refunding it in the same write if
        that can be written; the creation as it now is (None when no read could tell)."""
        fields = log_fields(creation_id=creation_id)
        try:
            outcome = self.refunds.refund(creation_id, move=NOT_QUEUED)
            if outcome.creation is not None:
                return Creation.of(outcome.creation)
        except Exception:
            # Usually the owner's balance document stayed contended. The move alone touches
            # only the creation, and its status event (or the sweeper) then refunds it. (If the
            # refund's answer was what got lost, the move finds the creation failed and
            # refunded.)
            logger.exception("refund after a failed enqueue did not commit", extra=fields)
        try:
            return self._move_unqueued(creation_id)
        except Exception:
            logger.exception(
                "cannot fail the unqueued creation; it stays pending for the sweeper",
                extra=fields,
            )
        try:
            (creation,) = self.store.read(paths.creation(creation_id))
        except Exception:
            logger.exception("cannot tell what became of the unqueued creation", extra=fields)
            return None
        return Creation.of(creation) if creation.exists else None

    def _move_unqueued(self, creation_id: str) -> Creation | None:
        """`pending → failed` (`queue_unavailable`) without the refund (the status event's part)."""
        path = paths.creation(creation_id)

        def attempt() -> Snapshot:
            (creation,) = self.store.read(path)
            if creation.get("status") not in NOT_QUEUED.allowed_from:
                return creation  # queued after all, or failed already
            batch = Batch()
            stage_move(batch, creation, NOT_QUEUED.to, {"error": NOT_QUEUED.error})
            return self.store.commit(batch)[path]

        moved = run_optimistic(attempt, self.settings, "fail unqueued")
        return Creation.of(moved) if moved.exists else None

    def _replay(self, creation_id: str, user_id: str, user: Snapshot | None = None) -> Accepted:
        """The answer to a repeat: the creation as it is now, with the balance (`user` as just
        read, or read here with the creation)."""
        if user is None:
            user, creation = self.store.read(paths.user(user_id), paths.creation(creation_id))
        else:
            (creation,) = self.store.read(paths.creation(creation_id))
        if not creation.exists or being_deleted(creation):
            raise Conflict("the creation made with this Idempotency-Key has been deleted")
        return Accepted(Creation.of(creation), balance_of(user), replayed=True)

    def _enqueue(self, accepted: Accepted, key_path: str | None, *, cost: int) -> Accepted:
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
            if now is None:
                # A refund or a move was sent and then nothing could be read: it may be failed
                # (refunded or not yet) or still pending. Say exactly that.
                raise Unconfirmed(creation.id, UNQUEUED_UNCONFIRMED) from exc
            if now.status == "pending":
                # Not even the move to `failed` could be written: the creation is pending, so it
                # is accepted (the sweeper queues it again), and the answer says so.
                logger.error(
                    "the creation stays pending; the sweeper will queue it",
                    extra=log_fields(**fields),
                )
                return accepted
            if not _failed_unqueued(now):
                # The publish timed out here but reached Pub/Sub after all: a worker has the
                # creation already. It is under way, so the caller gets a normal acceptance.
                logger.warning(
                    f"the job was enqueued after all ({now.status}); not failing it",
                    extra=log_fields(**fields),
                )
                return Accepted(now, accepted.balance, replayed=False)
            if key_path is not None:
                idempotency.release(self.store, key_path, creation.id)
            # Most likely Pub/Sub is down for this too; then an unrefunded one is the sweeper's.
            self.announcer.announce(StatusEvent.of(creation.job, "failed"))
            raise QueueUnavailableRefunded(
                exc.message, refunded=now.refunded, creation_id=creation.id
            ) from exc
        # One line for the happy path (the others say what went wrong on their own).
        logger.info(
            "creation accepted",
            extra=log_fields(**fields, cost=cost, type=creation.type, message_id=message_id),
        )
        return accepted


def _failed_unqueued(creation: Creation) -> bool:
    error = creation.error or {}
    return creation.status == "failed" and error.get("code") == QUEUE_UNAVAILABLE


def _accepted_as_stored(creation: Snapshot, debit: Snapshot) -> Accepted:
    """The acceptance of a debit that is already there (its answer was lost)."""
    if not creation.exists:
        raise Conflict("the creation this request made has been deleted")
    return Accepted(Creation.of(creation), int(debit.get("balance_after")), replayed=False)
