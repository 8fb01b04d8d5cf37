"""Claims on creations: who is working on one, until when, and the writes only they may make.

A worker *claims* a creation before working on it (`pending → processing`, or a re-claim of a
`processing` one whose lease has expired). The claim records an owner token, the attempt
number and a lease expiry. Every later write of that worker (progress, checkpoint, draft,
failure) is guarded: it applies only while the creation is still `processing` under the same
owner, so a worker that lost its lease (slow, or presumed dead and replaced) can never
overwrite the result of the one that replaced it, nor move a finished creation.

No read after a commit whose result is known. Each commit answers the creation as it wrote it
(update time included), and a claim keeps that latest snapshot (`Claim.latest`). The claim's
next write is staged against it directly, guarded by its update time: if nobody else wrote
since, that is exactly the read's decision without the read; if somebody did, the commit
fails (`LostRace`) and the next round reads and decides again. A commit that did not answer
(its writes may or may not have landed) leaves nothing known, so the next write reads first.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

from shared.core.errors import NotFound
from shared.core.settings import Settings
from shared.creations import lifecycle
from shared.creations.model import Job, Partial
from shared.creations.progress import working_percent
from shared.store import paths
from shared.store.documents import SERVER_TIME, Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic

# not_this_job: the job names another owner or type than the creation has.
SkipReason = Literal["missing", "final", "leased", "exhausted", "not_this_job"]


class Latest:
    """The creation as its claim last wrote (or read) it; None when not known.

    Only ever a decision's starting point: a write staged on it is guarded by its update time,
    so a stale one costs a lost race and a read, never a wrong write.
    """

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        self._snapshot = snapshot

    def peek(self) -> Snapshot | None:
        return self._snapshot

    def take(self) -> Snapshot | None:
        """The snapshot, forgotten until the next `keep`."""
        snapshot, self._snapshot = self._snapshot, None
        return snapshot

    def keep(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot


@dataclass(frozen=True)
class Claim:
    """One worker's hold on one creation, for one attempt."""

    job: Job
    owner: str
    attempt: int
    request: dict[str, Any]  # as stored; `shared.creations.requests.stored_request` checks it
    checkpoint: dict[str, Any] = field(default_factory=dict)
    trace: str | None = None  # the creation's trace id (`shared.core.tracing`)
    created_at: dt.datetime | None = None  # when it was submitted (its time to draft is logged)
    cost: int = 0  # the tokens debited for it (a partial draft gets a share back)
    # The claim is frozen; what it knows of its creation changes with each of its own commits.
    # Not an init field: a Claim made by hand (or `dataclasses.replace`d) knows nothing yet.
    latest: Latest = field(default_factory=Latest, init=False, compare=False, repr=False)


@dataclass(frozen=True)
class Skip:
    """Why there is nothing to do (the event is acked)."""

    reason: SkipReason
    status: str | None = None


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def lease_is_live(creation: Snapshot, now: dt.datetime) -> bool:
    lease = creation.get("lease_expires_at")
    return isinstance(lease, dt.datetime) and lease > now


@dataclass(frozen=True)
class ClaimStore:
    store: Documents
    settings: Settings
    _: KW_ONLY
    clock: Callable[[], dt.datetime] = utcnow

    def claim(self, creation_id: str, *, job: Job | None = None) -> Claim | Skip:
        """Take the creation for one attempt, or say why not.

        With `job`, only if the creation is the one `job` was made from (its owner and type):
        a job that disagrees was hand-made or misrouted, and acting on it could fail a
        creation that was never asked to be made this way.
        """
        path = paths.creation(creation_id)
        owner = uuid.uuid4().hex

        def attempt() -> Claim | Skip:
            (creation,) = self.store.read(path)
            if not creation.exists:
                return Skip("missing")
            if job is not None and not _made_from(creation, job):
                return Skip("not_this_job", creation.get("status"))
            status = creation.get("status")
            if status in lifecycle.FINAL_STATUSES:
                return Skip("final", status)
            if status == "processing" and creation.get("lease_owner") == owner:
                # An earlier round's claim was applied although its answer was lost.
                return _claim_of(creation, owner)
            now = self.clock()
            if status == "processing" and lease_is_live(creation, now):
                return Skip("leased", status)
            attempts = int(creation.get("attempts", 0)) + 1
            batch = Batch()
            if attempts > self.settings.max_generation_attempts:
                lifecycle.stage_move(
                    batch,
                    creation,
                    "failed",
                    {"error": _error("too_many_attempts", attempts - 1)},
                )
                self.store.commit(batch)
                return Skip("exhausted", "failed")
            hold = {
                "attempts": attempts,
                "lease_owner": owner,
                "lease_expires_at": now + dt.timedelta(seconds=self.settings.lease_seconds),
                "started_at": creation.get("started_at") or SERVER_TIME,
            }
            if status == "processing":  # a re-claim: the worker before died or gave up
                batch.update(creation, {**hold, "updated_at": SERVER_TIME})
            else:
                lifecycle.stage_move(batch, creation, "processing", hold)
            return _claim_of(self.store.commit(batch)[path], owner)

        return run_optimistic(attempt, self.settings, "claim")

    def report_progress(self, claim: Claim, percent: int) -> bool:
        """Raise `progress` to `percent` (never lower it: an earlier attempt may have gone
        further than this one has yet)."""
        percent = working_percent(percent)

        def raise_progress(batch: Batch, creation: Snapshot) -> None:
            if percent > int(creation.get("progress") or 0):
                batch.update(creation, {"progress": percent, "updated_at": SERVER_TIME})

        return self._while_owned(claim, raise_progress)

    def save_checkpoint(self, claim: Claim, values: dict[str, Any]) -> bool:
        fields = {f"checkpoint.{key}": value for key, value in values.items()}
        return self._while_owned(
            claim,
            lambda batch, creation: batch.update(creation, {**fields, "updated_at": SERVER_TIME}),
        )

    def holds(self, claim: Claim) -> bool:
        """Whether the claim is still ours (no write; a read only once half the lease is gone).

        While the lease is live, nobody else can take a `processing` creation from its
        owner: a re-claim waits for the lease to expire, the dead letter and the sweeper spare
        a live lease, and a cancel or a DELETE refuses a `processing` creation. So with more
        than half the lease left (the half is a margin for clocks that disagree between
        workers) the answer is known without a read. Anything that slipped past this anyway
        is caught by `complete`, which then tells the caller to discard what it uploaded.
        """
        latest = claim.latest.peek()
        if latest is not None and _owned_by(latest, claim) and self._lease_has_half_left(latest):
            return True
        return self._while_owned(claim, lambda _batch, _creation: None)

    def complete(
        self, claim: Claim, media: list[dict[str, Any]], *, partial: Partial | None = None
    ) -> bool:
        """`processing → draft` with the media; False if the claim was lost meanwhile.

        True also when the creation is already a draft with exactly these `media`: an earlier
        round's write landed although its answer was lost. The media are this attempt's own
        objects (their names carry the claim's attempt and owner), so no other worker's draft
        can match, and the caller may trust False to mean its uploads are nobody's.

        With `partial` (fewer items than asked for), the draft records it, and its refund of
        `partial.refund` tokens (the ledger's `refund:{creation}:partial` entry) is staged in
        the same guarded commit: exactly once, because only the claim that makes the draft
        makes it, and a round that finds the draft made finds the refund made with it.
        """
        fields = {"media": media, "progress": 100, "error": None}

        def done(creation: Snapshot) -> bool:
            return bool(creation.get("status") == "draft" and creation.get("media") == media)

        if partial is None:
            return self._while_owned(
                claim,
                lambda batch, creation: lifecycle.stage_move(batch, creation, "draft", fields),
                done=done,
            )
        return self._complete_partial(claim, {**fields, "partial": partial.model_dump()}, done)

    def _complete_partial(
        self, claim: Claim, fields: dict[str, Any], done: Callable[[Snapshot], bool]
    ) -> bool:
        """The move to a partial draft and its refund, in one commit guarded by the creation
        and by its owner's balance (both read in the round: the balance is never staged from a
        snapshot the claim kept)."""
        job = claim.job
        path = paths.creation(job.creation_id)
        user_path = paths.user(job.user_id)
        entry_path = paths.partial_refund_entry(job.user_id, job.creation_id)
        # Here, not at the top: shared.money imports shared.creations (refunds need it).
        from shared.money.ledger import Ledger

        refund = int(fields["partial"]["refund"])
        ledger = Ledger(self.store, self.settings)
        claim.latest.take()

        def attempt() -> bool:
            creation, user, entry = self.store.read(path, user_path, entry_path)
            claim.latest.keep(creation)
            if done(creation):
                return True
            if not _owned_by(creation, claim):
                return False
            batch = Batch()
            if refund > 0 and not entry.exists:
                # (An entry already there cannot come from this creation's draft, which is not
                # made yet: it is never made twice.)
                ledger.stage_partial_refund(batch, user, amount=refund, creation_id=job.creation_id)
            lifecycle.stage_move(batch, creation, "draft", fields)
            self._commit_for(claim, batch, path)
            return True

        return run_optimistic(attempt, self.settings, "update")

    def fail(self, claim: Claim, code: str, message: str) -> bool:
        """`processing → failed` (the refund follows from the status change).

        True also when the creation is already failed with exactly this error: an earlier
        round's write landed although its answer was lost. (If another attempt failed it the
        same way, what the caller does next, settling it and announcing it, is right for it
        too.)
        """
        error = {"code": code, "message": message}
        return self._while_owned(
            claim,
            lambda batch, creation: lifecycle.stage_move(
                batch, creation, "failed", {"error": error}
            ),
            done=lambda creation: (
                creation.get("status") == "failed" and creation.get("error") == error
            ),
        )

    def final_status(self, creation_id: str) -> str | None:
        """The creation's status if it is final, else None (missing, or not final yet)."""
        (creation,) = self.store.read(paths.creation(creation_id))
        status = creation.get("status")
        return status if status in lifecycle.FINAL_STATUSES else None

    def release(self, claim: Claim) -> bool:
        """Give the lease back after a transient error, so a redelivery may claim at once."""
        now = self.clock()
        return self._while_owned(
            claim,
            lambda batch, creation: batch.update(
                creation, {"lease_expires_at": now, "updated_at": SERVER_TIME}
            ),
        )

    def fail_unfinished(
        self,
        creation_id: str,
        code: str,
        message: str,
        *,
        spare_live_lease: bool = False,
        job: Job | None = None,
    ) -> bool:
        """Fail a `pending`/`processing` creation whoever holds it (dead letters, sweeper).

        Returns False if it was already final (nothing to do), or, with `spare_live_lease`,
        if a worker holds a live lease on it (it may yet finish), or, with `job`, if the
        creation is not the one `job` was made from (as `claim` skips it). Raises `NotFound`.
        """
        path = paths.creation(creation_id)

        def attempt() -> bool:
            (creation,) = self.store.read(path)
            if not creation.exists:
                raise NotFound(f"creation {creation_id} does not exist")
            if job is not None and not _made_from(creation, job):
                return False
            if creation.get("status") in lifecycle.FINAL_STATUSES:
                return False
            if spare_live_lease and lease_is_live(creation, self.clock()):
                return False
            batch = Batch()
            lifecycle.stage_move(
                batch, creation, "failed", {"error": {"code": code, "message": message}}
            )
            self.store.commit(batch)
            return True

        return run_optimistic(attempt, self.settings, "fail")

    # --- helpers ----------------------------------------------------------------------------

    def _while_owned(
        self,
        claim: Claim,
        stage: Callable[[Batch, Snapshot], object],
        *,
        done: Callable[[Snapshot], bool] | None = None,
    ) -> bool:
        """Stage and commit a write while the claim is still ours; False once it is not.

        `stage` may add nothing (the write is not needed): then nothing is committed, and the
        answer is still True (the claim is ours). `done` tells a creation this write has
        already made what it is (an earlier round landed although its answer was lost): True.

        The first round decides on the claim's latest snapshot, if it knows one that shows
        the claim held, without reading (see the module docstring); every other round reads.
        A known snapshot is trusted only through a guarded commit: when `stage` writes nothing
        on it, the round reads, so the answer never rests on an old snapshot alone.
        """
        path = paths.creation(claim.job.creation_id)
        known = claim.latest.take()

        def attempt() -> bool:
            nonlocal known
            creation, known = known, None
            if creation is not None and _owned_by(creation, claim):
                batch = Batch()
                stage(batch, creation)
                if batch:
                    self._commit_for(claim, batch, path)  # LostRace: the next round reads
                    return True
            (creation,) = self.store.read(path)
            claim.latest.keep(creation)
            if done is not None and done(creation):
                return True
            if not _owned_by(creation, claim):
                return False
            batch = Batch()
            stage(batch, creation)
            if batch:
                self._commit_for(claim, batch, path)
            return True

        return run_optimistic(attempt, self.settings, "update")

    def _commit_for(self, claim: Claim, batch: Batch, path: str) -> None:
        """Commit one of the claim's writes and keep the creation as it wrote it. Until it
        answers nothing is known: a commit that fails may have landed all the same."""
        claim.latest.take()
        claim.latest.keep(self.store.commit(batch)[path])

    def _lease_has_half_left(self, creation: Snapshot) -> bool:
        lease = creation.get("lease_expires_at")
        half = dt.timedelta(seconds=self.settings.lease_seconds / 2)
        return isinstance(lease, dt.datetime) and self.clock() < lease - half


def _owned_by(creation: Snapshot, claim: Claim) -> bool:
    """Whether `creation` is still being made under `claim`."""
    return bool(
        creation.get("status") == "processing" and creation.get("lease_owner") == claim.owner
    )


def _made_from(creation: Snapshot, job: Job) -> bool:
    """Whether `job` names this creation's owner and type (a job that disagrees was hand-made
    or misrouted)."""
    return (creation.get("user_id"), creation.get("type")) == (job.user_id, job.type)


def _claim_of(creation: Snapshot, owner: str) -> Claim:
    """The claim `creation` (as the claim's commit wrote it, or as read) shows for `owner`."""
    claim = Claim(
        job=Job.of(creation),
        owner=owner,
        attempt=int(creation.get("attempts", 1)),
        request=dict(creation.get("request") or {}),
        checkpoint=dict(creation.get("checkpoint") or {}),
        trace=creation.get("trace"),
        created_at=_datetime_or_none(creation.get("created_at")),
        cost=_int_or_zero(creation.get("cost")),
    )
    claim.latest.keep(creation)
    return claim


def _datetime_or_none(value: object) -> dt.datetime | None:
    return value if isinstance(value, dt.datetime) else None


def _int_or_zero(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _error(code: str, tries: int) -> dict[str, str]:
    return {"code": code, "message": f"Generation was tried {tries} times without finishing."}
