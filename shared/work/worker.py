"""The worker of `generate` and `stitch`: claim a creation, run the provider, store the media,
finish it as `draft`; on failure, fail it (permanent) or hand it back for a redelivery.

The finalize step is part of this function rather than a separate function triggered by the
object's arrival: the worker already knows everything the `media` list needs (type, size,
dimensions, duration), the claim guards the move to `draft`, and one fewer hop means one
fewer place where a creation can be left half-done.
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from collections.abc import Collection
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Literal, Protocol, cast, get_args

from shared.core import tracing
from shared.core.errors import PermanentError
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.claims import Claim, ClaimStore, Skip
from shared.creations.lifecycle import FINAL_STATUSES
from shared.creations.model import CreationType, Job, Partial
from shared.creations.requests import ImageRequest, StoredRequest, stored_request
from shared.creations.status_events import (
    AnnouncedStatus,
    StatusAnnouncer,
    StatusEvent,
    announce_or_redeliver,
)
from shared.media.providers.base import EmptyResult, GeneratedMedia, GenerationContext, Provider
from shared.media.storage import attempt_scope
from shared.money.ledger import partial_refund_amount
from shared.work.phases import JobPhases, phase, timing_job
from shared.work.progress_writes import ThrottledProgress

logger = get_logger(__name__)

# `retried`: only a job line says it (the event is redelivered; `handle` raised).
OutcomeKind = Literal["draft", "failed", "skipped", "lost_claim", "retried"]


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    detail: str = ""
    # A draft's time from submit to draft (its job line's `since_created_ms`), when known.
    since_created_ms: float | None = None


class MediaUploader(Protocol):
    def upload(
        self, user_id: str, creation_id: str, items: list[GeneratedMedia], *, scope: str
    ) -> list[dict[str, object]]: ...

    def discard(self, media: list[dict[str, object]]) -> int: ...

    def settle(self, user_id: str, creation_id: str, keep: Collection[str]) -> int: ...


@dataclass(frozen=True)
class GenerationWorker:
    _: KW_ONLY
    claims: ClaimStore
    provider: Provider
    uploader: MediaUploader
    settings: Settings
    # Told of every final status this worker makes or finds (shared.creations.status_events).
    announcer: StatusAnnouncer
    # The creation types this worker's provider makes; a job of another type was published to
    # the wrong topic, and claiming it would fail its creation for good.
    makes: frozenset[CreationType] = frozenset(get_args(CreationType))

    def handle(self, job: Job, *, event_id: str) -> Outcome:
        """Make the media of `job`'s creation. Returns normally when the event should be acked;
        raises (after handing the claim back) when it should be redelivered.

        Logs one line per job (`job done`): its outcome and each phase's duration. Its lines
        carry the message's trace, else the one on the creation it claims."""
        fields = {"creation_id": job.creation_id, "user_id": job.user_id, "event_id": event_id}
        with tracing.bound(tracing.current()), timing_job() as timed:
            try:
                outcome = self._handle(job, fields)
            except BaseException as exc:
                _log_job(job, fields, timed, Outcome("retried", type(exc).__name__))
                raise
            _log_job(job, fields, timed, outcome)
            return outcome

    def _handle(self, job: Job, fields: dict[str, str]) -> Outcome:
        if job.type not in self.makes:  # its job line says so (a warning: it was misrouted)
            return Outcome("skipped", "not_for_this_worker")
        with phase("claim"):
            claimed = self.claims.claim(job.creation_id, job=job)
        if isinstance(claimed, Skip):
            if claimed.reason in ("final", "exhausted") and claimed.status in FINAL_STATUSES:
                # Out of attempts: the claim failed it. Final already: this may be the
                # redelivery of a job whose announcement was lost (the worker died after its
                # commit, or Pub/Sub refused the event): announcing again is harmless.
                self._announce(job, claimed.status, None, fields)
            return Outcome("skipped", claimed.reason)  # its job line says why
        claim = claimed
        tracing.adopt(tracing.current() or tracing.from_id(claim.trace))
        fields["attempt"] = str(claim.attempt)
        self._announce_processing(claim, fields)
        try:
            outcome = self._finish(claim, fields)
        except LostClaim:
            outcome = Outcome("lost_claim")
        except BaseException:
            # Transient (or unknown), while working or while writing the result: hand the lease
            # back so a redelivery can start at once, instead of after the lease runs out.
            try:
                self.claims.release(claim)
            except Exception as release_error:
                logger.warning(
                    f"could not release the claim: {release_error}", extra=log_fields(**fields)
                )
            raise
        if outcome.kind == "lost_claim":
            logger.warning(
                "the claim was taken over; this attempt's result is dropped",
                extra=log_fields(**fields),
            )
        return outcome

    def _finish(self, claim: Claim, fields: dict[str, str]) -> Outcome:
        try:
            media, partial = self._make_and_store(claim)
        except PermanentError as exc:
            if not self.claims.fail(claim, exc.code, exc.message):
                return Outcome("lost_claim")
            self._settle(claim, [], fields)
            logger.warning(
                f"generation failed: {exc.message}",
                extra=log_fields(**fields, error_code=exc.code),
            )
            self._announce(claim.job, "failed", claim.attempt, fields)
            return Outcome("failed", exc.code)
        if not self.claims.complete(claim, media, partial=partial):
            # Nobody will ever publish these objects (a draft names its own attempt's only):
            # remove them now, or they outlive a creation that failed or was deleted.
            self._discard(media, fields)
            return Outcome("lost_claim")
        self._settle(claim, [str(item["uri"]) for item in media], fields)
        if partial is not None:
            logger.info(
                f"partial draft: {partial.made} of {partial.asked} made, "
                f"{partial.refund} tokens refunded: {partial.reason}",
                extra=log_fields(**fields),
            )
        self._announce(claim.job, "draft", claim.attempt, fields)
        return Outcome(
            "draft",
            "partial" if partial is not None else "",
            since_created_ms=_ms_since(claim.created_at),
        )

    def _announce(self, job: Job, status: str, attempt: int | None, fields: dict[str, str]) -> None:
        """Tell the status stream; if it cannot be told, have the job redelivered: the
        redelivery finds the creation final and announces again (see `handle`)."""
        event = StatusEvent.of(job, cast(AnnouncedStatus, status), attempt=attempt)
        announce_or_redeliver(self.announcer, event)

    def _announce_processing(self, claim: Claim, fields: dict[str, str]) -> None:
        """Tell the status stream this attempt has begun, when the creation's webhook asks to
        hear of it. Best effort: a job is never failed or redelivered over a notification (a
        lost one is only a missing `creation.processing`; the final events are never lost)."""
        if "processing" not in claim.job.webhook_events:
            return
        try:
            event = StatusEvent.of(claim.job, "processing", attempt=claim.attempt)
            announced = self.announcer.announce(event)
        except Exception as exc:  # an announcer is not meant to raise; never the job's problem
            logger.warning(
                f"could not announce processing: {type(exc).__name__}: {exc}",
                extra=log_fields(**fields),
            )
            return
        if not announced:
            logger.warning(
                "could not announce processing; the job goes on", extra=log_fields(**fields)
            )

    def _make_and_store(self, claim: Claim) -> tuple[list[dict[str, object]], Partial | None]:
        """The uploaded media, and what is missing from them when the answer was short."""
        job = claim.job
        request = stored_request(job.type, claim.request)  # the one check of what was asked
        progress = ThrottledProgress(lambda percent: self.claims.report_progress(claim, percent))
        with tempfile.TemporaryDirectory(prefix=f"gen-{job.creation_id}-") as workdir:
            context = GenerationContext(
                workdir=Path(workdir),
                deadline=time.monotonic() + self.settings.generation_timeout_seconds,
                attempt=claim.attempt,
                scope=attempt_scope(claim.attempt, claim.owner),
                checkpoint=claim.checkpoint,
                save_checkpoint=lambda values: self._save_checkpoint(claim, values),
                report_progress=progress,
            )
            with phase("provider"):
                items = self.provider.generate(job, request, context)
            if not items:
                raise EmptyResult("The model returned no media.")
            partial = _partial_of(request, len(items), claim.cost, context.shortfall)
            if not self.claims.holds(claim):
                # Taken over (or failed, or deleted) while generating: upload nothing, rather
                # than write objects only to remove them. `holds` reads only once half the
                # lease is gone (before that nobody can have taken it); a claim lost anyway, or
                # during the upload, is caught by `complete`, and its uploads discarded then.
                raise LostClaim(f"creation {job.creation_id} is no longer ours")
            # Under this attempt's own names: published only by the claim-guarded `complete`.
            with phase("upload"):
                media = self.uploader.upload(
                    job.user_id, job.creation_id, items, scope=context.scope
                )
            return media, partial

    def _settle(self, claim: Claim, keep: list[str], fields: dict[str, str]) -> None:
        """Remove what earlier attempts left (they crashed after uploading) as soon as the
        creation is final, so a draft's objects are its media set from this moment on. The
        `refund` function settles again on the status event, and retries; so this is best
        effort, and skipped for a first attempt: no earlier one can have left anything, and what
        a provider stages of its own is the status event's to remove."""
        job = claim.job
        if claim.attempt <= 1:
            return
        try:
            self.uploader.settle(job.user_id, job.creation_id, keep)
        except Exception as exc:
            logger.warning(
                f"could not settle the creation's media (the refund function will): "
                f"{type(exc).__name__}: {exc}",
                extra=log_fields(**fields),
            )

    def _discard(self, media: list[dict[str, object]], fields: dict[str, str]) -> None:
        try:
            self.uploader.discard(media)
        except Exception as exc:
            # Left behind: removed when the creation settles (if it is not final yet: the refund
            # function does it on the final status's event) or is deleted. If it is final
            # already (another attempt's draft) or gone, nothing settles it again: they wait
            # for its delete, or stay. docs/reliability.md lists this window.
            logger.warning(
                f"could not remove this attempt's uploads: {type(exc).__name__}: {exc}",
                extra=log_fields(**fields),
            )

    def _save_checkpoint(self, claim: Claim, values: dict[str, object]) -> None:
        if not self.claims.save_checkpoint(claim, dict(values)):
            # Another worker owns the creation now: stop before spending more.
            raise LostClaim(f"creation {claim.job.creation_id} is no longer ours")


def _partial_of(
    request: StoredRequest, made: int, cost: int, shortfall: str | None
) -> Partial | None:
    """What a short answer lacks (fewer images than `count`), refunded at the unit price the
    creation was charged; None when nothing is missing. (A video or a reel is one file: none
    at all is `EmptyResult`, never a partial draft.)"""
    if not isinstance(request, ImageRequest) or made >= request.count:
        return None
    missing = request.count - made
    reason = shortfall or (
        f"The model returned {made} of {request.count} images; "
        f"{missing} {'was' if missing == 1 else 'were'} not made."
    )
    return Partial(
        asked=request.count,
        made=made,
        reason=reason,
        refund=partial_refund_amount(cost, request.count, made) if cost > 0 else 0,
    )


def _ms_since(moment: dt.datetime | None) -> float | None:
    if moment is None:
        return None
    return round((dt.datetime.now(dt.UTC) - moment).total_seconds() * 1000, 1)


def _log_job(job: Job, fields: dict[str, str], timed: JobPhases, outcome: Outcome) -> None:
    """The job's one summary line, `job done: <outcome>` (or, alone for a job with nothing to
    do, `job skipped: <reason>`), with `claim_ms`, `provider_ms`, `upload_ms`, `finish_ms` (the
    phases it reached) and `total_ms`; a draft's also with `since_created_ms` (submit to
    draft, what the dashboard's time to draft charts)."""
    skipped = outcome.kind == "skipped"
    misrouted = outcome.detail == "not_for_this_worker"  # published to the wrong topic
    logger.log(
        logging.WARNING if skipped and misrouted else logging.INFO,
        f"job skipped: {outcome.detail}" if skipped else f"job done: {outcome.kind}",
        extra=log_fields(
            **fields,
            type=job.type,
            outcome=outcome.kind,
            detail=outcome.detail or None,
            since_created_ms=outcome.since_created_ms,
            **timed.fields(),
        ),
    )


class LostClaim(Exception):
    """This worker's claim was taken over (its lease ran out and another worker claimed the
    creation): stop, and touch the creation no more."""
