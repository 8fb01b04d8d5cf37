"""Accepting a creation: debit, document and idempotency record in one atomic write, then enqueue.

The order matters. The debit, the `pending` creation and the `Idempotency-Key` record are
committed together (all or nothing), guarded so concurrent submits of one user cannot overspend.
Publishing happens after the commit; if it fails, the creation is failed and refunded before
the caller hears `503 queue_unavailable`. If the process dies between commit and publish, the
creation stays `pending` and the sweeper re-enqueues it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot

from shared.core.errors import Conflict, InvalidTransition, QueueUnavailable
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.model import Creation
from shared.creations.store import CreationStore, new_creation_id
from shared.money.ledger import Ledger, StatusMove, balance_of
from shared.store import paths
from shared.store.optimistic import STORE_UNAVAILABLE, read_together, run_optimistic, store_retry
from shared.work.jobs import Job, JobPublisher, topic_for

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


def request_fingerprint(operation: str, body: Any) -> str:
    """Same operation + same JSON content => same fingerprint, whatever the key order."""
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class SubmissionService:
    def __init__(
        self,
        db: firestore.Client,
        settings: Settings,
        *,
        ledger: Ledger,
        creations: CreationStore,
        publisher: JobPublisher,
    ) -> None:
        self._db = db
        self._settings = settings
        self._ledger = ledger
        self._creations = creations
        self._publisher = publisher
        self._timeout = settings.store_timeout_seconds
        self._retry = store_retry(settings.store_timeout_seconds)

    def submit(
        self,
        *,
        user_id: str,
        kind: str,
        request: dict[str, Any],
        cost: int,
        idempotency_key: str | None,
        fingerprint: str,
    ) -> Accepted:
        creation_id = new_creation_id()
        user_ref = self._ledger.user_ref(user_id)
        key_ref = (
            self._db.collection(paths.IDEMPOTENCY_KEYS).document(
                paths.idempotency_doc_id(user_id, idempotency_key)
            )
            if idempotency_key
            else None
        )

        debit_ref = user_ref.collection(paths.LEDGER).document(paths.debit_entry_id(creation_id))

        def attempt() -> Accepted | int:
            refs = [user_ref, debit_ref] if key_ref is None else [user_ref, debit_ref, key_ref]
            user, debit, *key = read_together(
                self._db, refs, retry=self._retry, timeout=self._timeout
            )
            if debit.exists:
                # An earlier round's commit was applied although its answer was lost (the
                # client's retry then lost the race against it): this call's debit is done.
                return int((debit.to_dict() or {})["balance_after"])
            batch = self._db.batch()
            if key:
                replay = self._replay_or_stage_key(batch, key[0], user_id, fingerprint, creation_id)
                if replay is not None:
                    return Accepted(replay, balance_of(user), replayed=True)
            balance_after = self._ledger.stage_debit(
                batch, user, cost=cost, creation_id=creation_id
            )
            self._creations.stage_create(
                batch,
                creation_id=creation_id,
                user_id=user_id,
                kind=kind,
                request=request,
                cost=cost,
            )
            try:
                batch.commit(retry=self._retry, timeout=self._timeout)
            except STORE_UNAVAILABLE:
                # The commit's answer was lost, not necessarily the commit: look before
                # telling the caller nothing was debited.
                if not self._debit_exists(debit_ref):
                    raise
            return balance_after

        outcome = run_optimistic(
            attempt, max_attempts=self._settings.ledger_max_attempts, what="submit"
        )
        if isinstance(outcome, Accepted):
            logger.info(
                "idempotent replay",
                extra=log_fields(user_id=user_id, creation_id=outcome.creation.id),
            )
            return outcome
        logger.info(
            "creation accepted",
            extra=log_fields(user_id=user_id, creation_id=creation_id, cost=cost, type=kind),
        )
        self._enqueue(creation_id, user_id, kind, key_ref)
        # Committed above, and only final creations can be deleted: it is there.
        return Accepted(self._creations.get_or_raise(creation_id), outcome, replayed=False)

    def _replay_or_stage_key(
        self,
        batch: firestore.WriteBatch,
        record: DocumentSnapshot[Any],
        user_id: str,
        fingerprint: str,
        creation_id: str,
    ) -> Creation | None:
        now = dt.datetime.now(dt.UTC)
        fields = {
            "user_id": user_id,
            "fingerprint": fingerprint,
            "creation_id": creation_id,
            "created_at": firestore.SERVER_TIMESTAMP,
            # A Firestore TTL policy on this field deletes old records (see docs).
            "expires_at": now + dt.timedelta(hours=self._settings.idempotency_ttl_hours),
        }
        if not record.exists:
            batch.create(record.reference, fields)
            return None
        data = record.to_dict() or {}
        expires_at = data.get("expires_at")
        if isinstance(expires_at, dt.datetime) and expires_at <= now:
            # Expired but not yet removed by the TTL policy: the key is free again.
            option = self._db.write_option(last_update_time=record.update_time)
            batch.update(record.reference, fields, option=option)
            return None
        if data.get("fingerprint") != fingerprint:
            raise Conflict("this Idempotency-Key was already used with a different request")
        creation = self._creations.get(str(data["creation_id"]))
        if creation is None:
            raise Conflict("the creation made with this Idempotency-Key has been deleted")
        return creation

    def _release_key(self, key_ref: firestore.DocumentReference, creation_id: str) -> None:
        """Free an Idempotency-Key whose creation never got going, so a retry can succeed.

        Best effort: if this delete is lost, a retry with the key sees the failed, refunded
        creation, which is still the truth.
        """
        try:
            snapshot = key_ref.get(retry=self._retry, timeout=self._timeout)
            if snapshot.exists and (snapshot.to_dict() or {}).get("creation_id") == creation_id:
                key_ref.delete(
                    option=self._db.write_option(last_update_time=snapshot.update_time),
                    retry=self._retry,
                    timeout=self._timeout,
                )
        except Exception as exc:
            logger.warning(
                f"could not release the Idempotency-Key: {type(exc).__name__}",
                extra=log_fields(creation_id=creation_id),
            )

    def _debit_exists(self, debit_ref: firestore.DocumentReference) -> bool:
        return bool(debit_ref.get(retry=self._retry, timeout=self._timeout).exists)

    def _enqueue(
        self,
        creation_id: str,
        user_id: str,
        kind: str,
        key_ref: firestore.DocumentReference | None,
    ) -> None:
        job = Job(creation_id=creation_id, user_id=user_id, type=kind)
        try:
            message_id = self._publisher.publish(job, topic=topic_for(kind, self._settings))
        except QueueUnavailable as exc:
            logger.error(
                "enqueue failed; failing and refunding the creation",
                extra=log_fields(user_id=user_id, creation_id=creation_id, error=exc.message),
            )
            move = StatusMove(
                to="failed",
                allowed_from=frozenset({"pending"}),
                error={"code": "queue_unavailable", "message": "The job could not be queued."},
            )
            try:
                outcome = self._ledger.refund(creation_id, move=move)
            except InvalidTransition as moved_on:
                # The publish timed out here but reached Pub/Sub after all: a worker has the
                # creation already. It is under way, so the caller gets a normal acceptance.
                logger.warning(
                    f"the job was enqueued after all ({moved_on.current}); not failing it",
                    extra=log_fields(user_id=user_id, creation_id=creation_id),
                )
                return
            except Exception:
                logger.exception(
                    "refund after a failed enqueue did not complete; the sweeper will finish it",
                    extra=log_fields(user_id=user_id, creation_id=creation_id),
                )
                raise QueueUnavailableRefunded(
                    exc.message, refunded=False, creation_id=creation_id
                ) from exc
            refunded = outcome.result in ("refunded", "already_refunded")
            if refunded and key_ref is not None:
                self._release_key(key_ref, creation_id)
            raise QueueUnavailableRefunded(
                exc.message, refunded=refunded, creation_id=creation_id
            ) from exc
        logger.info(
            "job enqueued",
            extra=log_fields(user_id=user_id, creation_id=creation_id, message_id=message_id),
        )
