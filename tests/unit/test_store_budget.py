"""What one image creation costs in Firestore operations, counted at the port on the in-memory
store: submit (through the HTTP handler) and the worker on the happy path stay within the
budget the benchmark's targets set (at most 6 documents written, 4 read, in 3 commits; one
read more with an Idempotency-Key), and
the writes that skip a read fall back to reading, and deciding again, whenever someone else
wrote since (a takeover, the sweeper's bookkeeping) or a commit's answer was lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import flask
import pytest

from shared.core.errors import Conflict, StoreBusy
from shared.creations.claims import Claim, ClaimStore, Skip
from shared.creations.reading import CreationReader
from shared.intake.actions import CreationActions
from shared.intake.api.app import SubmitApi
from shared.intake.auth import FirebaseTokenVerifier
from shared.media.providers.base import GenerationContext
from shared.money.ledger import Ledger
from shared.money.refunds import RefundHandler, Refunds
from shared.store import paths
from shared.wiring import submissions
from shared.work import worker as worker_module
from shared.work.progress_writes import ThrottledProgress
from shared.work.worker import GenerationWorker
from tests.support.counting_store import CountingDocuments, Tally
from tests.support.fakes import (
    SETTINGS,
    Clock,
    OneUser,
    RecordingAnnouncer,
    RecordingMediaStore,
    RecordingPublisher,
    ScriptedProvider,
    UnsignedMediaLinks,
)
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import update

# Per image creation, on the happy path. Reads: 4 without an Idempotency-Key (the benchmark's
# target), one more with one (the key's replay check).
BUDGET = Tally(reads=4, writes=6, commits=3)
USER = "u"


class Seconds:
    """The monotonic clock the worker's progress throttle runs on, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def seconds(monkeypatch: pytest.MonkeyPatch) -> Seconds:
    clock = Seconds()

    def throttled(write: Callable[[int], object]) -> ThrottledProgress:
        return ThrottledProgress(write, clock=clock)

    monkeypatch.setattr(worker_module, "ThrottledProgress", throttled)
    return clock


@pytest.fixture
def counted(store: MemoryDocuments) -> CountingDocuments:
    Ledger(store, SETTINGS).grant(USER, 30)  # set up on the inner store: not counted
    return CountingDocuments(store)


def api(documents: CountingDocuments, publisher: RecordingPublisher) -> SubmitApi:
    service = submissions(documents, SETTINGS, publisher, RecordingAnnouncer())
    return SubmitApi(
        settings=SETTINGS,
        verifier=cast(FirebaseTokenVerifier, OneUser()),
        ledger=service.ledger,
        creations=CreationReader(documents),
        submissions=service,
        actions=CreationActions(
            documents,
            SETTINGS,
            refunds=service.refunds,
            media=RecordingMediaStore(),
            announcer=RecordingAnnouncer(),
        ),
        media_links=UnsignedMediaLinks(),
        resolver=lambda host, port: ["203.0.113.1"],  # never asked: no body has a webhook
    )


def post_creation(handler: SubmitApi, key: str | None) -> dict[str, Any]:
    headers = {"Authorization": "Bearer token"} | ({"Idempotency-Key": key} if key else {})
    body = {"type": "image", "prompt": "a lighthouse"}
    with flask.Flask(__name__).test_request_context(
        "/v1/creations", method="POST", json=body, headers=headers
    ):
        response = handler(flask.request)
    assert response.status_code == 202, response.get_data(as_text=True)
    return cast(dict[str, Any], response.get_json())


def progress_then_image(
    meanwhile: Callable[[GenerationContext], None] | None = None,
) -> ScriptedProvider:
    """A provider that reports progress as a real one does, runs `meanwhile`, makes one PNG."""

    def during(context: GenerationContext) -> None:
        for percent in (10, 50, 99):
            context.report_progress(percent)
        if meanwhile is not None:
            meanwhile(context)

    return ScriptedProvider(during=during)


def generation_worker(
    documents: CountingDocuments,
    clock: Clock,
    provider: ScriptedProvider,
    media: RecordingMediaStore,
    announcer: RecordingAnnouncer | None = None,
) -> GenerationWorker:
    return GenerationWorker(
        claims=ClaimStore(documents, SETTINGS, clock=clock),
        provider=provider,
        uploader=media,
        settings=SETTINGS,
        announcer=announcer or RecordingAnnouncer(),
    )


@pytest.mark.parametrize(
    ("key", "submit_cost"),
    [
        # the balance, the active count (one query finding none: billed one read); the
        # balance, debit and creation
        (None, Tally(reads=2, writes=3, commits=1)),
        # the key (the API's replay check), then the balance and the key, the active count; the
        # key's record too
        ("order-1", Tally(reads=4, writes=4, commits=1)),
    ],
    ids=["without-key", "with-idempotency-key"],
)
def test_an_image_creation_stays_within_its_store_budget(
    counted: CountingDocuments,
    store: MemoryDocuments,
    clock: Clock,
    seconds: Seconds,
    key: str | None,
    submit_cost: Tally,
) -> None:
    publisher = RecordingPublisher()
    answer = post_creation(api(counted, publisher), key)
    assert counted.tally == submit_cost, counted.calls
    [job] = publisher.jobs
    media = RecordingMediaStore()
    stream = RecordingAnnouncer()
    outcome = generation_worker(counted, clock, progress_then_image(), media, stream).handle(
        job, event_id="e"
    )
    assert outcome.kind == "draft"
    work = counted.tally - submit_cost
    # The claim (a read and a commit), then the draft written on the claim's own snapshot: no
    # look before the upload (the lease is young), no progress (done within the interval).
    assert work == Tally(reads=1, writes=2, commits=2), counted.calls
    # Two publishes in all: the job, and the draft's status event; refund, woken by it, needs
    # neither a read nor a write for a first attempt's image.
    [event] = stream.events
    assert (len(publisher.jobs) + len(stream.events), event.status) == (2, "draft")
    refund = RefundHandler(Refunds(counted, SETTINGS, Ledger(counted, SETTINGS)), media=media)
    assert refund.on_status_event(event, event_id="s1") == "nothing_to_do"
    total = counted.tally
    assert total.reads <= BUDGET.reads + (key is not None)
    assert total.writes <= BUDGET.writes
    assert total.commits == BUDGET.commits
    done = store.creation(answer["id"])
    assert (done["status"], done["progress"], len(done["media"])) == ("draft", 100, 1)
    assert Ledger(store, SETTINGS).balance(USER) == 27


def test_a_slow_job_writes_progress_without_reading(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock, seconds: Seconds
) -> None:
    publisher = RecordingPublisher()
    post_creation(api(counted, publisher), None)
    [job] = publisher.jobs
    seen: list[int] = []

    def slow(context: GenerationContext) -> None:
        seconds.now += 5  # past the progress interval
        context.report_progress(60)
        seen.append(store.creation(job.creation_id)["progress"])

    before = counted.tally
    w = generation_worker(counted, clock, progress_then_image(slow), RecordingMediaStore())
    assert w.handle(job, event_id="e").kind == "draft"
    assert seen == [60]
    assert counted.tally - before == Tally(reads=1, writes=3, commits=3), counted.calls


# --- the no-read writes fall back when the snapshot they stand on is stale -------------------


def claimed(documents: CountingDocuments, clock: Clock) -> tuple[ClaimStore, Claim]:
    publisher = RecordingPublisher()
    post_creation(api(documents, publisher), None)
    [job] = publisher.jobs
    claims = ClaimStore(documents, SETTINGS, clock=clock)
    claim = claims.claim(job.creation_id, job=job)
    assert isinstance(claim, Claim)
    return claims, claim


def test_a_write_by_someone_else_since_the_claims_commit_is_read_and_decided_again(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock, seconds: Seconds
) -> None:
    # Slow past its lease: the sweeper re-enqueued the job (its bookkeeping is a write on the
    # creation) but nobody has claimed it yet. The worker still owns it: its draft write loses
    # against the claim's snapshot, reads, finds the claim still its own, and lands.
    publisher = RecordingPublisher()
    post_creation(api(counted, publisher), None)
    [job] = publisher.jobs

    def requeued_by_the_sweeper(_context: GenerationContext) -> None:
        clock.advance(SETTINGS.lease_seconds + 1)
        update(store, paths.creation(job.creation_id), {"requeues": 1, "requeued_at": clock.now})

    before = counted.tally
    w = generation_worker(
        counted, clock, progress_then_image(requeued_by_the_sweeper), RecordingMediaStore()
    )
    assert w.handle(job, event_id="e").kind == "draft"
    # claim (read + commit); the look before the upload (half the lease is gone: a read); the
    # draft on the read snapshot. The look has refreshed what the claim knows.
    assert counted.tally - before == Tally(reads=2, writes=2, commits=2), counted.calls
    assert store.creation(job.creation_id)["status"] == "draft"


def test_a_draft_written_after_an_unseen_write_loses_then_reads(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock
) -> None:
    claims, claim = claimed(counted, clock)
    path = paths.creation(claim.job.creation_id)
    update(store, path, {"requeues": 1})  # someone else's write, unseen by the claim
    before = counted.tally
    assert claims.complete(claim, [{"uri": "gs://m/x"}])
    # The guarded commit on the known snapshot lost; then a read, and the commit again.
    assert counted.tally - before == Tally(reads=1, writes=2, commits=2), counted.calls
    assert store.creation(claim.job.creation_id)["status"] == "draft"


def test_a_takeover_after_the_lease_expired_is_never_overwritten(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock
) -> None:
    claims, claim = claimed(counted, clock)
    clock.advance(SETTINGS.lease_seconds + 1)
    rival = ClaimStore(store, SETTINGS, clock=clock).claim(claim.job.creation_id)
    assert isinstance(rival, Claim)
    assert not claims.holds(claim)  # half the lease is gone: it looks, and sees the rival
    assert not claims.report_progress(claim, 50)
    assert not claims.save_checkpoint(claim, {"operation": "x"})
    assert not claims.complete(claim, [{"uri": "gs://m/x"}])
    assert not claims.fail(claim, "provider_error", "x")
    assert not claims.release(claim)
    held = store.creation(claim.job.creation_id)
    assert (held["status"], held["lease_owner"], held["progress"]) == (
        "processing",
        rival.owner,
        0,
    )
    assert "checkpoint" not in held


def test_a_takeover_during_the_upload_is_caught_by_the_draft_write(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock
) -> None:
    # Nothing is read before the upload (the lease was young); the draft write, staged on the
    # claim's snapshot, loses against the rival's claim, reads it, and gives up: the uploads go.
    claims, claim = claimed(counted, clock)
    assert claims.holds(claim)
    clock.advance(SETTINGS.lease_seconds + 1)
    rival = ClaimStore(store, SETTINGS, clock=clock).claim(claim.job.creation_id)
    assert isinstance(rival, Claim)
    before = counted.tally
    assert not claims.complete(claim, [{"uri": "gs://m/x"}])
    assert counted.tally - before == Tally(reads=1, writes=1, commits=1), counted.calls
    assert store.creation(claim.job.creation_id)["lease_owner"] == rival.owner


def test_a_cancel_during_generation_is_refused_and_the_draft_needs_no_read(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock, seconds: Seconds
) -> None:
    publisher = RecordingPublisher()
    handler = api(counted, publisher)
    post_creation(handler, None)
    [job] = publisher.jobs
    actions = handler.actions
    cancel_cost: list[Tally] = []

    def cancel(_context: GenerationContext) -> None:
        before = counted.tally
        with pytest.raises(Conflict):
            actions.cancel(USER, job.creation_id)  # only a pending creation can be canceled
        cancel_cost.append(counted.tally - before)

    before = counted.tally
    w = generation_worker(counted, clock, progress_then_image(cancel), RecordingMediaStore())
    assert w.handle(job, event_id="e").kind == "draft"
    [refused] = cancel_cost
    assert (refused.writes, refused.commits) == (0, 0)
    # The refused cancel wrote nothing, so the draft was written on the claim's snapshot.
    assert counted.tally - before - refused == Tally(reads=1, writes=2, commits=2), counted.calls
    assert Ledger(store, SETTINGS).balance(USER) == 27


def test_a_cancel_between_submit_and_claim_leaves_nothing_to_claim(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock
) -> None:
    publisher = RecordingPublisher()
    handler = api(counted, publisher)
    post_creation(handler, None)
    [job] = publisher.jobs
    # The cancel lands between the claim's read and its commit: the claim's commit loses, and
    # the next round reads a canceled creation.
    store.before_commit(lambda _batch: handler.actions.cancel(USER, job.creation_id))
    skipped = ClaimStore(counted, SETTINGS, clock=clock).claim(job.creation_id, job=job)
    assert skipped == Skip("final", "canceled")
    assert store.creation(job.creation_id)["status"] == "canceled"


@pytest.mark.parametrize("resent", [False, True], ids=["unanswered", "resent"])
def test_after_a_lost_progress_answer_the_next_write_reads_first(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock, resent: bool
) -> None:
    claims, claim = claimed(counted, clock)
    store.lose_next_commit_answer(resent=resent)
    if resent:
        # The resend ran into its own write: the next round reads and finds it there.
        assert claims.report_progress(claim, 40)
    else:
        with pytest.raises(StoreBusy):
            claims.report_progress(claim, 40)
    assert store.creation(claim.job.creation_id)["progress"] == 40  # it landed either way
    before = counted.tally
    assert claims.complete(claim, [{"uri": "gs://m/x"}])
    spent = counted.tally - before
    # Unanswered: nothing is known, so the draft reads first. Resent: the read after the lost
    # race is what the claim knows now, and the draft is written on it.
    expected = Tally(reads=0, writes=1, commits=1) if resent else Tally(1, 1, 1)
    assert spent == expected, counted.calls
    assert store.creation(claim.job.creation_id)["status"] == "draft"


def test_a_draft_whose_answer_was_lost_is_not_moved_again_by_the_release(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock, seconds: Seconds
) -> None:
    # The draft lands, its answer is lost; the worker hands the lease back (it cannot tell),
    # and that release must read rather than trust the snapshot before the draft.
    publisher = RecordingPublisher()
    post_creation(api(counted, publisher), None)
    [job] = publisher.jobs
    media = RecordingMediaStore()
    lose = progress_then_image(lambda _context: store.lose_next_commit_answer())
    with pytest.raises(StoreBusy):
        generation_worker(counted, clock, lose, media).handle(job, event_id="e")
    done = store.creation(job.creation_id)
    assert (done["status"], done["progress"]) == ("draft", 100)
    assert media.under(USER, job.creation_id) == [
        item["uri"].removeprefix("gs://media/") for item in done["media"]
    ]
    assert counted.calls[-1] == f"read {paths.creation(job.creation_id)}"  # the release looked


def test_a_claim_whose_answer_was_lost_goes_on_from_what_it_read(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock
) -> None:
    publisher = RecordingPublisher()
    post_creation(api(counted, publisher), None)
    [job] = publisher.jobs
    store.lose_next_commit_answer(resent=True)
    claims = ClaimStore(counted, SETTINGS, clock=clock)
    claim = claims.claim(job.creation_id, job=job)
    assert isinstance(claim, Claim)
    before = counted.tally
    assert claims.complete(claim, [{"uri": "gs://m/x"}])
    assert counted.tally - before == Tally(reads=0, writes=1, commits=1), counted.calls


def test_a_claim_made_by_hand_knows_nothing_and_reads(
    counted: CountingDocuments, store: MemoryDocuments, clock: Clock
) -> None:
    claims, claim = claimed(counted, clock)
    stranger = Claim(claim.job, "someone-else", 1, claim.request)
    before = counted.tally
    assert not claims.holds(stranger)
    assert not claims.complete(stranger, [])
    assert counted.tally - before == Tally(reads=2), counted.calls
