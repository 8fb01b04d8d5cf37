"""The sweeper: finds creations stuck on the way and moves them on (runs on a schedule).

- `pending` for too long (the publish after commit was lost, or its message was dropped):
  re-enqueued; after `max_generation_attempts` re-enqueues it is failed (`not_processed`).
- `processing` with an expired lease (the worker died or was killed): re-enqueued; the claim
  then counts the attempt and fails the creation once attempts run out.
- `failed`/`canceled` but not refunded a while after (a lost trigger): refunded directly.
Everything it does is also safe to do twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.core.errors import QueueUnavailable, SuiteError
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.claims import ClaimStore, utcnow
from shared.money.ledger import Ledger
from shared.store import paths
from shared.store.optimistic import STORE_UNAVAILABLE, store_retry
from shared.work.jobs import Job, JobPublisher, topic_for

logger = get_logger(__name__)


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refunded: list[str] = field(default_factory=list)


class Sweeper:
    def __init__(
        self,
        db: firestore.Client,
        settings: Settings,
        *,
        claims: ClaimStore,
        ledger: Ledger,
        publisher: JobPublisher,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._db = db
        self._settings = settings
        self._claims = claims
        self._ledger = ledger
        self._publisher = publisher
        self._clock = clock
        self._timeout = settings.store_timeout_seconds
        self._retry = store_retry(settings.store_timeout_seconds)

    def sweep(self) -> SweepReport:
        report = SweepReport()
        now = self._clock()
        settle = dt.timedelta(seconds=self._settings.sweep_pending_after_seconds)
        for snapshot in self._query("pending", "updated_at", now - settle):
            self._each(snapshot, lambda snap: self._requeue_or_fail(snap, now, report))
        for snapshot in self._query("processing", "lease_expires_at", now):
            requeued_at = (snapshot.to_dict() or {}).get("requeued_at")
            if isinstance(requeued_at, dt.datetime) and requeued_at > now - settle:
                continue  # re-enqueued recently; give that message time to arrive
            self._each(snapshot, lambda snap: self._requeue_or_fail(snap, now, report))
        refund_cutoff = now - dt.timedelta(seconds=self._settings.sweep_refund_after_seconds)
        for status in ("failed", "canceled"):
            for snapshot in self._unrefunded(status, refund_cutoff):
                self._each(snapshot, lambda snap: self._refund(snap, report))
        logger.info(
            "sweep done",
            extra=log_fields(
                requeued=len(report.requeued),
                failed=len(report.failed),
                refunded=len(report.refunded),
            ),
        )
        return report

    def _refund(self, snapshot: Any, report: SweepReport) -> None:
        if self._ledger.refund(snapshot.id).result == "refunded":
            report.refunded.append(snapshot.id)
            logger.warning(
                "sweeper refunded a creation the refund trigger missed",
                extra=log_fields(creation_id=snapshot.id),
            )

    @staticmethod
    def _each(snapshot: Any, act: Callable[[Any], None]) -> None:
        """One creation's trouble (deleted meanwhile, a contended write) never stops the
        sweep: the next run sees it again."""
        try:
            act(snapshot)
        except (SuiteError, *STORE_UNAVAILABLE) as exc:
            logger.warning(
                f"sweeper skipped a creation: {type(exc).__name__}: {exc}",
                extra=log_fields(creation_id=snapshot.id),
            )

    def _query(self, status: str, field_name: str, before: dt.datetime) -> list[Any]:
        query = (
            self._db.collection(paths.CREATIONS)
            .where(filter=FieldFilter("status", "==", status))
            .where(filter=FieldFilter(field_name, "<", before))
            .order_by(field_name)
            .limit(self._settings.sweep_batch_size)
        )
        return list(query.stream(retry=self._retry, timeout=self._timeout))

    def _unrefunded(self, status: str, before: dt.datetime) -> list[Any]:
        query = (
            self._db.collection(paths.CREATIONS)
            .where(filter=FieldFilter("status", "==", status))
            .where(filter=FieldFilter("refunded", "==", False))
            .where(filter=FieldFilter("updated_at", "<", before))
            .order_by("updated_at")
            .limit(self._settings.sweep_batch_size)
        )
        return list(query.stream(retry=self._retry, timeout=self._timeout))

    def _requeue_or_fail(self, snapshot: Any, now: dt.datetime, report: SweepReport) -> None:
        data = snapshot.to_dict() or {}
        requeues = int(data.get("requeues", 0))
        if requeues >= self._settings.max_generation_attempts:
            if self._claims.fail_unfinished(
                snapshot.id,
                "not_processed",
                "The job could not be processed in time.",
                spare_live_lease=True,
            ):
                report.failed.append(snapshot.id)
            return
        job = Job(creation_id=snapshot.id, user_id=data["user_id"], type=data["type"])
        try:
            self._publisher.publish(job, topic=topic_for(job.type, self._settings))
        except QueueUnavailable as exc:
            logger.warning(
                f"sweeper could not re-enqueue: {exc.message}",
                extra=log_fields(creation_id=snapshot.id),
            )
            return
        try:
            snapshot.reference.update(
                {
                    "requeues": requeues + 1,
                    "requeued_at": now,
                    "updated_at": firestore.SERVER_TIMESTAMP,
                },
                option=self._db.write_option(last_update_time=snapshot.update_time),
                retry=self._retry,
                timeout=self._timeout,
            )
        except Exception as exc:  # the job is out; a lost bookkeeping write only delays a retry
            logger.info(f"requeue bookkeeping skipped: {type(exc).__name__}")
        report.requeued.append(snapshot.id)
        logger.warning(
            "sweeper re-enqueued a stuck creation",
            extra=log_fields(creation_id=snapshot.id, status=data.get("status")),
        )
