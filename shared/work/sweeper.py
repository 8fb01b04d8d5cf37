"""The sweeper: finds creations stuck on the way and moves them on (runs on a schedule).

- `pending` for too long (the publish after commit was lost, or its message was dropped):
  re-enqueued; after `SWEEP_MAX_REQUEUES` re-enqueues it is failed (`not_processed`).
- `processing` with an expired lease (the worker died or was killed): re-enqueued; the claim
  then counts the attempt and fails the creation once attempts run out.
- `failed`/`canceled` but not refunded a while after (its status event was lost, or its
  refund kept failing): refunded directly.
- marked `deleting` a while after (a DELETE that stopped midway, and the status event that
  should have finished it was lost or gave up): finished (`finish_delete`).
Everything it does is also safe to do twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import KW_ONLY, dataclass, field

from shared.core import tracing
from shared.core.errors import QueueUnavailable, SuiteError
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.claims import ClaimStore, utcnow
from shared.creations.lifecycle import DELETING, REFUNDABLE_STATUSES
from shared.creations.model import Job
from shared.creations.status_events import StatusAnnouncer, StatusEvent
from shared.media.storage import MediaSettler
from shared.money.refunds import Refunds
from shared.store import paths
from shared.store.documents import (
    DOCUMENT_NAME,
    SERVER_TIME,
    Batch,
    Documents,
    Query,
    Snapshot,
)
from shared.work.jobs import JobPublisher, topic_for

logger = get_logger(__name__)


@dataclass
class SweepReport:
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refunded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Sweeper:
    store: Documents
    settings: Settings
    _: KW_ONLY
    claims: ClaimStore
    refunds: Refunds
    publisher: JobPublisher
    announcer: StatusAnnouncer
    clock: Callable[[], dt.datetime] = utcnow
    # Finishes a DELETE that stopped midway (shared.intake.actions); None: not this sweeper's.
    finish_delete: Callable[[str], bool] | None = None
    # Empties a failed or canceled creation it refunds; None: not this sweeper's.
    media: MediaSettler | None = None

    def sweep(self) -> SweepReport:
        report = SweepReport()
        now = self.clock()
        settle = dt.timedelta(seconds=self.settings.sweep_pending_after_seconds)
        for creation in self._stuck("pending", "updated_at", now - settle):
            self._each(creation, lambda found: self._requeue_or_fail(found, now, report))
        for creation in self._stuck("processing", "lease_expires_at", now):
            self._each(creation, lambda found: self._requeue_expired(found, now, settle, report))
        refund_cutoff = now - dt.timedelta(seconds=self.settings.sweep_refund_after_seconds)
        for status in sorted(REFUNDABLE_STATUSES):
            for creation in self._unrefunded(status, refund_cutoff):
                self._each(creation, lambda found: self._refund(found, report))
        finish = self.finish_delete
        if finish is not None:
            for creation in self._half_deleted(refund_cutoff):
                self._each(creation, lambda found: self._finish_delete(finish, found, report))
        logger.info(
            "sweep done",
            extra=log_fields(
                requeued=len(report.requeued),
                failed=len(report.failed),
                refunded=len(report.refunded),
                deleted=len(report.deleted),
            ),
        )
        return report

    def _stuck(self, status: str, field_name: str, before: dt.datetime) -> Iterator[Snapshot]:
        return self._oldest((("status", status),), field_name, before)

    def _unrefunded(self, status: str, before: dt.datetime) -> Iterator[Snapshot]:
        return self._oldest((("status", status), ("refunded", False)), "updated_at", before)

    def _oldest(
        self, equal: tuple[tuple[str, object], ...], field_name: str, before: dt.datetime
    ) -> Iterator[Snapshot]:
        """Every creation matching `equal` whose `field_name` is before `before`, oldest first,
        a page of `SWEEP_BATCH_SIZE` at a time.

        All pages, not just the first: creations the sweep cannot move on (odd documents,
        ones skipped after an error) stay where they are, oldest first, and would otherwise
        fill the first page of every sweep. The cursor is the last result's value and path,
        so ties on `field_name` are neither repeated nor skipped, and each page starts after
        the last, so the walk ends even while the sweep rewrites what it read.
        """
        return self._every_page(
            Query(
                paths.CREATIONS,
                equal=equal,
                before=(field_name, before),
                order=((field_name, "ASCENDING"), (DOCUMENT_NAME, "ASCENDING")),
            ),
            lambda last: (last.get(field_name), last.path),
        )

    def _half_deleted(self, before: dt.datetime) -> Iterator[Snapshot]:
        """Creations marked `deleting` whose last write is before `before`, a page at a time.
        (By path, not by age: these are few, and an equality alone needs no composite index.)"""
        for creation in self._every_page(
            Query(
                paths.CREATIONS, equal=((DELETING, True),), order=((DOCUMENT_NAME, "ASCENDING"),)
            ),
            lambda last: (last.path,),
        ):
            updated_at = creation.get("updated_at")
            if isinstance(updated_at, dt.datetime) and updated_at < before:
                yield creation

    def _every_page(
        self, query: Query, cursor: Callable[[Snapshot], tuple[object, ...]]
    ) -> Iterator[Snapshot]:
        """Every result of `query`, `SWEEP_BATCH_SIZE` at a time, each page starting after
        `cursor` of the last result of the one before (its ordered values)."""
        start_after: tuple[object, ...] | None = None
        while True:
            page = self.store.query(
                dataclasses.replace(
                    query, start_after=start_after, limit=self.settings.sweep_batch_size
                )
            )
            yield from page
            if len(page) < self.settings.sweep_batch_size:
                return
            start_after = cursor(page[-1])

    @staticmethod
    def _finish_delete(
        finish: Callable[[str], bool], creation: Snapshot, report: SweepReport
    ) -> None:
        if finish(creation.id):
            report.deleted.append(creation.id)
            logger.warning(
                "sweeper finished a delete its status event did not",
                extra=log_fields(creation_id=creation.id),
            )

    @staticmethod
    def _each(creation: Snapshot, act: Callable[[Snapshot], None]) -> None:
        """One creation's trouble (deleted meanwhile, a contended write, an odd document) never
        stops the sweep: it is logged and skipped, and the next run sees it again. What is
        done for a creation is done (and logged, and re-enqueued) under its trace."""
        with tracing.bound(tracing.from_document(creation.data)):
            try:
                act(creation)
            except SuiteError as exc:
                logger.warning(
                    f"sweeper skipped a creation: {type(exc).__name__}: {exc}",
                    extra=log_fields(creation_id=creation.id),
                )
            except Exception:
                logger.exception(
                    "sweeper skipped a creation it could not handle",
                    extra=log_fields(creation_id=creation.id),
                )

    def _refund(self, creation: Snapshot, report: SweepReport) -> None:
        if self.refunds.refund(creation.id).result == "refunded":
            report.refunded.append(creation.id)
            logger.warning(
                "sweeper refunded a creation its status event did not",
                extra=log_fields(creation_id=creation.id),
            )
            # Its announcement was lost (or never made: a process died after the move), so
            # what the stream's consumers do with it is owed too. Settling its media is done
            # here as well: once it is refunded no sweep selects it again, so an announcement
            # lost now would leave what crashed attempts uploaded under it for good.
            job = Job.of(creation)
            self._empty(job)
            status = creation.get("status")
            if status in REFUNDABLE_STATUSES:
                self.announcer.announce(StatusEvent.of(job, status))

    def _empty(self, job: Job) -> None:
        if self.media is None:
            return
        try:
            removed = self.media.settle(job.user_id, job.creation_id, [])
        except Exception as exc:  # the announcement below may still reach refund, which retries
            logger.warning(
                f"sweeper could not settle a refunded creation's media: {type(exc).__name__}",
                extra=log_fields(creation_id=job.creation_id),
            )
            return
        if removed:
            logger.info(
                f"sweeper removed {removed} stray objects",
                extra=log_fields(creation_id=job.creation_id),
            )

    def _requeue_expired(
        self, creation: Snapshot, now: dt.datetime, settle: dt.timedelta, report: SweepReport
    ) -> None:
        requeued_at = creation.get("requeued_at")
        if isinstance(requeued_at, dt.datetime) and requeued_at > now - settle:
            return  # re-enqueued recently; give that message time to arrive
        self._requeue_or_fail(creation, now, report)

    def _requeue_or_fail(self, creation: Snapshot, now: dt.datetime, report: SweepReport) -> None:
        requeues = int(creation.get("requeues", 0))
        if requeues >= self.settings.sweep_max_requeues:
            if self.claims.fail_unfinished(
                creation.id,
                "not_processed",
                "The job could not be processed in time.",
                spare_live_lease=True,
            ):
                report.failed.append(creation.id)
                logger.warning(
                    "sweeper failed a stuck creation",
                    extra=log_fields(
                        creation_id=creation.id,
                        status=creation.get("status"),
                        error_code="not_processed",
                    ),
                )
                # If this is lost, the next sweeps refund it (`_unrefunded`).
                self.announcer.announce(StatusEvent.of(Job.of(creation), "failed"))
            return
        job = Job.of(creation)
        try:
            self.publisher.publish(job, topic=topic_for(job.type, self.settings))
        except QueueUnavailable as exc:
            logger.warning(
                f"sweeper could not re-enqueue: {exc.message}",
                extra=log_fields(creation_id=creation.id),
            )
            return
        batch = Batch()
        batch.update(
            creation, {"requeues": requeues + 1, "requeued_at": now, "updated_at": SERVER_TIME}
        )
        try:
            self.store.commit(batch)
        except Exception as exc:
            # The job is out; a lost bookkeeping write only delays the next re-enqueue.
            logger.info(f"requeue bookkeeping skipped: {type(exc).__name__}")
        report.requeued.append(creation.id)
        logger.warning(
            "sweeper re-enqueued a stuck creation",
            extra=log_fields(creation_id=creation.id, status=creation.get("status")),
        )
