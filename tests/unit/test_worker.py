"""The worker's error policy and its claims, on the in-memory store: permanent errors fail and
ack, transient ones hand the lease back and redeliver, and a worker that lost its claim never
touches the creation. (The event functions run on the emulator in tests/integration.)"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shared.core.errors import StoreBusy
from shared.core.settings import Settings
from shared.creations.claims import Claim, ClaimStore, Skip
from shared.creations.model import Job
from shared.creations.status_events import StatusEvent, StatusNotAnnounced
from shared.media.providers.base import (
    EmptyResult,
    GenerationContext,
    ProviderTimeout,
    ProviderTransient,
    SafetyBlocked,
)
from shared.store import paths
from shared.store.documents import Batch
from shared.work.worker import GenerationWorker
from tests.support.fakes import Clock, RecordingAnnouncer, RecordingMediaStore, ScriptedProvider
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import VIDEO, move, new_creation, update

SETTINGS = Settings(store_max_attempts=5, max_generation_attempts=3, lease_seconds=60)


def worker(
    store: MemoryDocuments,
    clock: Clock,
    provider: ScriptedProvider,
    media: RecordingMediaStore | None = None,
    announcer: RecordingAnnouncer | None = None,
) -> GenerationWorker:
    return GenerationWorker(
        claims=ClaimStore(store, SETTINGS, clock=clock),
        provider=provider,
        uploader=media or RecordingMediaStore(),
        settings=SETTINGS,
        announcer=announcer or RecordingAnnouncer(),
    )


def handle(w: GenerationWorker, store: MemoryDocuments, creation_id: str) -> str:
    (found,) = store.read(paths.creation(creation_id))
    return w.handle(Job.of(found), event_id="e").kind


def test_a_job_ends_in_draft_with_its_media(store: MemoryDocuments, clock: Clock) -> None:
    creation_id = new_creation(store, "u")
    media = RecordingMediaStore()
    owners: list[str] = []
    provider = ScriptedProvider(
        makes=2, during=lambda _context: owners.append(store.creation(creation_id)["lease_owner"])
    )
    assert handle(worker(store, clock, provider, media), store, creation_id) == "draft"
    done = store.creation(creation_id)
    assert (done["status"], done["progress"], done["attempts"]) == ("draft", 100, 1)
    # Named by the attempt and its owner: no other attempt can overwrite these objects.
    scope = f"1-{owners[0][:12]}"
    assert [m["uri"] for m in done["media"]] == [
        f"gs://media/media/u/{creation_id}/{scope}/0.png",
        f"gs://media/media/u/{creation_id}/{scope}/1.png",
    ]
    assert done["lease_owner"] is None
    assert media.under("u", creation_id) == [
        m["uri"].removeprefix("gs://media/") for m in done["media"]
    ]
    [(job, request, attempt)] = provider.calls
    assert (job.creation_id, request.TYPE, attempt) == (creation_id, "image", 1)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SafetyBlocked("no"), "safety_blocked"),
        (EmptyResult("nothing"), "empty_result"),
    ],
)
def test_a_permanent_error_fails_the_creation_and_acks(
    store: MemoryDocuments, clock: Clock, error: Exception, code: str
) -> None:
    creation_id = new_creation(store, "u")
    provider = ScriptedProvider(fail_with=[error])
    assert handle(worker(store, clock, provider), store, creation_id) == "failed"
    failed = store.creation(creation_id)
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": code, "message": str(error)}
    assert failed["refunded"] is False  # the refund trigger follows the status change


def test_a_stored_request_that_breaks_the_rules_fails_without_reaching_the_provider(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    update(store, paths.creation(creation_id), {"request.count": 9})
    provider = ScriptedProvider()
    assert handle(worker(store, clock, provider), store, creation_id) == "failed"
    assert store.creation(creation_id)["error"] == {
        "code": "invalid_request",
        "message": "count: Input should be less than or equal to 4",
    }
    assert provider.calls == []


@pytest.mark.parametrize(
    "error", [ProviderTransient("429"), ProviderTimeout("slow"), RuntimeError("a bug")]
)
def test_a_transient_or_unknown_error_hands_the_lease_back_and_redelivers(
    store: MemoryDocuments, clock: Clock, error: Exception
) -> None:
    creation_id = new_creation(store, "u")
    provider = ScriptedProvider(fail_with=[error])
    w = worker(store, clock, provider)
    with pytest.raises(type(error)):
        handle(w, store, creation_id)
    held = store.creation(creation_id)
    assert held["status"] == "processing"
    assert held["lease_expires_at"] == clock.now  # released: a redelivery may claim at once
    assert handle(w, store, creation_id) == "draft"
    assert [attempt for _job, _request, attempt in provider.calls] == [1, 2]


def test_attempts_run_out_and_the_creation_fails(store: MemoryDocuments, clock: Clock) -> None:
    creation_id = new_creation(store, "u")
    provider = ScriptedProvider(fail_with=[ProviderTransient("down")] * 3)
    w = worker(store, clock, provider)
    for _ in range(SETTINGS.max_generation_attempts):
        with pytest.raises(ProviderTransient):
            handle(w, store, creation_id)
    assert handle(w, store, creation_id) == "skipped"
    failed = store.creation(creation_id)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "too_many_attempts"


def test_final_and_leased_creations_are_skipped(store: MemoryDocuments, clock: Clock) -> None:
    provider = ScriptedProvider()
    final = new_creation(store, "u")
    move(store, final, "canceled")
    assert handle(worker(store, clock, provider), store, final) == "skipped"
    leased = new_creation(store, "u")
    claim = ClaimStore(store, SETTINGS, clock=clock).claim(leased)
    assert isinstance(claim, Claim)
    assert handle(worker(store, clock, provider), store, leased) == "skipped"
    assert provider.calls == []
    clock.advance(SETTINGS.lease_seconds + 1)  # the holder died: its lease ran out
    assert handle(worker(store, clock, provider), store, leased) == "draft"
    assert store.creation(leased)["attempts"] == 2


def test_a_worker_that_lost_its_claim_drops_its_result(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u", request=VIDEO)

    def replaced_meanwhile(context: GenerationContext) -> None:
        clock.advance(SETTINGS.lease_seconds + 1)  # too slow: presumed dead and replaced
        rival = ClaimStore(store, SETTINGS, clock=clock).claim(creation_id)
        assert isinstance(rival, Claim)

    provider = ScriptedProvider(during=replaced_meanwhile)
    media = RecordingMediaStore()
    assert handle(worker(store, clock, provider, media), store, creation_id) == "lost_claim"
    held = store.creation(creation_id)
    assert (held["status"], held["attempts"], held["media"]) == ("processing", 2, [])
    assert media.under("u", creation_id) == []
    assert media.uploaded == []  # it checked the claim before uploading anything


def test_a_claim_lost_during_the_upload_takes_the_upload_with_it(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    rival_clock = Clock(clock.now)
    rival_clock.advance(SETTINGS.lease_seconds + 1)
    media = RecordingMediaStore()
    uploads = media.upload

    def replaced_while_uploading(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        made = uploads(*args, **kwargs)
        assert isinstance(ClaimStore(store, SETTINGS, clock=rival_clock).claim(creation_id), Claim)
        return made

    media.upload = replaced_while_uploading  # type: ignore[method-assign]
    provider = ScriptedProvider(makes=2)
    assert handle(worker(store, clock, provider, media), store, creation_id) == "lost_claim"
    assert len(media.uploaded) == 2
    assert media.objects == {}  # what it uploaded went with its claim


def test_a_worker_whose_creation_was_failed_and_deleted_meanwhile_leaves_no_objects(
    store: MemoryDocuments, clock: Clock
) -> None:
    # Presumed dead, failed by the sweeper and deleted by its user while still generating: an
    # upload after that would be an orphan that nothing ever removes.
    creation_id = new_creation(store, "u")

    def failed_and_deleted(_context: GenerationContext) -> None:
        fail_and_delete(store, creation_id, clock)

    media = RecordingMediaStore()
    provider = ScriptedProvider(during=failed_and_deleted, makes=2)
    assert handle(worker(store, clock, provider, media), store, creation_id) == "lost_claim"
    assert media.uploaded == []


def test_a_takeover_the_workers_clock_does_not_see_yet_is_caught_by_complete(
    store: MemoryDocuments, clock: Clock
) -> None:
    # The sweeper's clock runs far ahead of this worker's: by the worker's clock more than half
    # the lease is left, so it uploads without a look; the draft write finds the creation gone
    # and the uploads are removed.
    creation_id = new_creation(store, "u")
    ahead = Clock(clock.now)

    def failed_and_deleted(_context: GenerationContext) -> None:
        fail_and_delete(store, creation_id, ahead)

    media = RecordingMediaStore()
    provider = ScriptedProvider(during=failed_and_deleted, makes=2)
    assert handle(worker(store, clock, provider, media), store, creation_id) == "lost_claim"
    assert len(media.uploaded) == 2
    assert media.objects == {}


def fail_and_delete(store: MemoryDocuments, creation_id: str, clock: Clock) -> None:
    """What the sweeper and the owner do to a worker presumed dead: once its lease has run out
    (by `clock`), the creation is failed, and then deleted."""
    clock.advance(SETTINGS.lease_seconds + 1)
    claims = ClaimStore(store, SETTINGS, clock=clock)
    assert claims.fail_unfinished(creation_id, "not_processed", "x", spare_live_lease=True)
    (found,) = store.read(paths.creation(creation_id))
    batch = Batch()
    batch.delete(found)
    store.commit(batch)


def test_an_attempt_never_overwrites_an_earlier_attempts_objects(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    media = RecordingMediaStore()
    # The first attempt uploads, then its draft write finds the store down: its objects stay
    # (the write may yet have landed), and the lease is handed back.
    first = ScriptedProvider(
        during=lambda _context: store.before_commit(lambda _batch: store.unavailable(1))
    )
    with pytest.raises(StoreBusy):
        handle(worker(store, clock, first, media), store, creation_id)
    (left,) = media.under("u", creation_id)
    assert handle(worker(store, clock, ScriptedProvider(), media), store, creation_id) == "draft"
    [item] = store.creation(creation_id)["media"]
    assert item["uri"] != f"gs://media/{left}"
    assert media.uploaded.count(left) == 1  # written by its own attempt only, never overwritten
    # The draft's worker settles at once: exactly the draft's media set is left.
    assert media.under("u", creation_id) == [item["uri"].removeprefix("gs://media/")]


def test_a_creation_that_fails_after_a_crashed_upload_keeps_no_objects(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    media = RecordingMediaStore()
    first = ScriptedProvider(
        during=lambda _context: store.before_commit(lambda _batch: store.unavailable(1))
    )
    with pytest.raises(StoreBusy):
        handle(worker(store, clock, first, media), store, creation_id)
    assert media.under("u", creation_id) != []
    second = ScriptedProvider(fail_with=[SafetyBlocked("no")])
    assert handle(worker(store, clock, second, media), store, creation_id) == "failed"
    assert media.objects == {}


def test_a_draft_whose_commit_answer_was_lost_keeps_its_media(
    store: MemoryDocuments, clock: Clock
) -> None:
    # The draft write lands but its answer is lost; the next round reads a draft: that draft is
    # this worker's own (its media are this attempt's objects), not a lost claim.
    creation_id = new_creation(store, "u")
    media = RecordingMediaStore()
    provider = ScriptedProvider(during=lambda _context: store.lose_next_commit_answer(resent=True))
    assert handle(worker(store, clock, provider, media), store, creation_id) == "draft"
    [item] = store.creation(creation_id)["media"]
    assert media.under("u", creation_id) == [item["uri"].removeprefix("gs://media/")]


def test_a_failure_whose_commit_answer_was_lost_is_still_this_workers(
    store: MemoryDocuments, clock: Clock
) -> None:
    # The fail write lands; the client library's resend runs into it (a lost race); the next
    # round reads it failed with this worker's own error: failed (announced), not lost_claim.
    creation_id, unanswered = new_creation(store, "u"), new_creation(store, "u")
    announcer = RecordingAnnouncer()

    def blocked(resent: bool) -> ScriptedProvider:
        def during(_context: GenerationContext) -> None:
            store.lose_next_commit_answer(resent=resent)
            raise SafetyBlocked("no")

        return ScriptedProvider(during=during)

    w = worker(store, clock, blocked(resent=True), announcer=announcer)
    assert handle(w, store, creation_id) == "failed"
    # Unanswered: redelivered (StoreBusy); the redelivery finds it failed and announces it.
    with pytest.raises(StoreBusy):
        handle(worker(store, clock, blocked(resent=False), announcer=announcer), store, unanswered)
    assert handle(
        worker(store, clock, ScriptedProvider(), announcer=announcer), store, unanswered
    ) == ("skipped")
    assert announcer.told == [(creation_id, "failed"), (unanswered, "failed")]


def test_progress_only_rises_and_is_written_by_the_owner_only(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    claims = ClaimStore(store, SETTINGS, clock=clock)
    claim = claims.claim(creation_id)
    assert isinstance(claim, Claim)
    assert claims.report_progress(claim, 40)
    commits = store.commits
    assert claims.report_progress(claim, 30)  # lower: nothing to write, still ours
    assert claims.report_progress(claim, 150)  # working progress stops at 99
    assert store.commits == commits + 1
    assert store.creation(creation_id)["progress"] == 99
    stranger = Claim(claim.job, "someone-else", 1, claim.request)
    assert not claims.report_progress(stranger, 99)
    assert not claims.complete(stranger, [])


def test_a_claim_whose_answer_was_lost_is_still_ours(store: MemoryDocuments, clock: Clock) -> None:
    creation_id = new_creation(store, "u")
    store.lose_next_commit_answer(resent=True)
    claim = ClaimStore(store, SETTINGS, clock=clock).claim(creation_id)
    assert isinstance(claim, Claim)
    assert claim.attempt == 1
    assert store.creation(creation_id)["lease_owner"] == claim.owner


def test_a_claim_the_store_never_answered_waits_for_its_lease(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    store.lose_next_commit_answer()
    claims = ClaimStore(store, SETTINGS, clock=clock)
    with pytest.raises(StoreBusy):
        claims.claim(creation_id)  # the event is redelivered...
    assert claims.claim(creation_id) == Skip("leased", "processing")  # ...and waits
    clock.advance(SETTINGS.lease_seconds + 1)
    assert isinstance(claims.claim(creation_id), Claim)


def test_a_draft_write_that_fails_releases_the_lease_for_a_prompt_redelivery(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    # While the provider works, arrange for the next commit (the draft's) to find the store
    # down; the release after it finds the store back.
    provider = ScriptedProvider(
        during=lambda _context: store.before_commit(lambda _batch: store.unavailable(1))
    )
    with pytest.raises(StoreBusy):
        handle(worker(store, clock, provider), store, creation_id)
    held = store.creation(creation_id)
    assert held["status"] == "processing"
    assert held["lease_expires_at"] == clock.now  # handed back, not held for LEASE_SECONDS
    assert handle(worker(store, clock, ScriptedProvider()), store, creation_id) == "draft"


def test_a_worker_told_its_claim_is_gone_stops_and_leaves_the_creation(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u", request=VIDEO)
    rival_clock = Clock(clock.now)

    def save_after_losing(context: GenerationContext) -> None:
        rival_clock.advance(SETTINGS.lease_seconds + 1)
        assert isinstance(ClaimStore(store, SETTINGS, clock=rival_clock).claim(creation_id), Claim)
        context.save_checkpoint({"veo_operation": "operations/1"})  # raises: no longer ours

    provider = ScriptedProvider(during=save_after_losing)
    assert handle(worker(store, clock, provider), store, creation_id) == "lost_claim"
    held = store.creation(creation_id)
    assert (held["status"], held["attempts"]) == ("processing", 2)
    assert "checkpoint" not in held


@pytest.mark.parametrize(
    "wrong",
    [{"user_id": "mallory"}, {"type": "video"}, {"type": "reel"}],
    ids=["another-owner", "another-type", "a-reel"],
)
def test_a_job_that_does_not_match_its_creation_is_skipped_untouched(
    store: MemoryDocuments, clock: Clock, wrong: dict[str, str]
) -> None:
    # A job names its creation, owner and type; one that disagrees with the stored creation
    # was not made from it (a hand-made or misrouted message), and must not fail it.
    creation_id = new_creation(store, "u")
    before = store.commits
    provider = ScriptedProvider()
    job = Job(creation_id=creation_id, user_id="u", type="image").model_copy(update=wrong)
    outcome = worker(store, clock, provider).handle(job, event_id="e")
    assert (outcome.kind, outcome.detail) == ("skipped", "not_this_job")
    assert store.commits == before
    assert provider.calls == []


def test_a_job_of_a_type_the_worker_does_not_make_is_skipped_untouched(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")  # an image: not a reel
    before = store.commits
    provider = ScriptedProvider()
    reels_only = GenerationWorker(
        claims=ClaimStore(store, SETTINGS, clock=clock),
        provider=provider,
        uploader=RecordingMediaStore(),
        settings=SETTINGS,
        announcer=RecordingAnnouncer(),
        makes=frozenset({"reel"}),
    )
    outcome = reels_only.handle(
        Job(creation_id=creation_id, user_id="u", type="image"), event_id="e"
    )
    assert (outcome.kind, outcome.detail) == ("skipped", "not_for_this_worker")
    assert store.commits == before


# --- the status stream ------------------------------------------------------------------------


def test_a_worker_announces_the_final_status_it_makes(store: MemoryDocuments, clock: Clock) -> None:
    drafted, failed = new_creation(store, "u"), new_creation(store, "u")
    announcer = RecordingAnnouncer()
    assert handle(
        worker(store, clock, ScriptedProvider(), announcer=announcer), store, drafted
    ) == ("draft")
    fails = ScriptedProvider(fail_with=[SafetyBlocked("no")])
    assert handle(worker(store, clock, fails, announcer=announcer), store, failed) == "failed"
    assert announcer.told == [(drafted, "draft"), (failed, "failed")]
    assert [event.user_id for event in announcer.events] == ["u", "u"]


def test_an_unannounced_draft_is_announced_by_the_redelivery(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    down = RecordingAnnouncer(fail=True)
    with pytest.raises(StatusNotAnnounced):  # redelivered: Pub/Sub refused the event
        handle(worker(store, clock, ScriptedProvider(), announcer=down), store, creation_id)
    assert store.creation(creation_id)["status"] == "draft"  # the result stands
    up = RecordingAnnouncer()
    assert handle(worker(store, clock, ScriptedProvider(), announcer=up), store, creation_id) == (
        "skipped"
    )
    assert up.told == [(creation_id, "draft")]


def test_a_claim_out_of_attempts_announces_the_failure(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u")
    update(store, paths.creation(creation_id), {"attempts": SETTINGS.max_generation_attempts})
    announcer = RecordingAnnouncer()
    outcome = worker(store, clock, ScriptedProvider(), announcer=announcer)
    assert handle(outcome, store, creation_id) == "skipped"
    assert store.creation(creation_id)["status"] == "failed"
    assert announcer.told == [(creation_id, "failed")]


def test_a_leased_or_foreign_job_announces_nothing(store: MemoryDocuments, clock: Clock) -> None:
    leased = new_creation(store, "u")
    assert isinstance(ClaimStore(store, SETTINGS, clock=clock).claim(leased), Claim)
    announcer = RecordingAnnouncer()
    w = worker(store, clock, ScriptedProvider(), announcer=announcer)
    assert handle(w, store, leased) == "skipped"
    foreign = Job(creation_id=new_creation(store, "u"), user_id="someone-else", type="image")
    assert w.handle(foreign, event_id="e").kind == "skipped"
    assert announcer.told == []


# --- `processing`, for a webhook that asks for it -------------------------------------------


def webhook_asking(*events: str) -> dict[str, Any]:
    return {"url": "https://hooks.example.com/in", "events": list(events), "status": "pending"}


class ProcessingRefused(RecordingAnnouncer):
    """A status stream that refuses `processing` events (or raises on them) and takes the rest."""

    def __init__(self, *, raises: bool = False) -> None:
        super().__init__()
        self.raises = raises
        self.refused = 0

    def announce(self, event: StatusEvent) -> bool:
        if event.status != "processing":
            return super().announce(event)
        self.refused += 1
        if self.raises:
            raise RuntimeError("the stream is down")
        return False


def test_a_claim_announces_processing_when_the_webhook_asks_for_it(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u", webhook=webhook_asking("processing", "completed"))
    announcer = RecordingAnnouncer()
    assert handle(
        worker(store, clock, ScriptedProvider(), announcer=announcer), store, creation_id
    ) == ("draft")
    assert announcer.told == [(creation_id, "processing"), (creation_id, "draft")]
    processing, draft = announcer.events
    assert (processing.attempt, processing.webhook) == (1, True)
    assert processing.attributes()["webhook"] == "1"
    assert draft.webhook is True  # `completed` is asked for too


def test_processing_is_not_announced_unless_asked(store: MemoryDocuments, clock: Clock) -> None:
    finals_only = new_creation(store, "u", webhook=webhook_asking("completed", "failed"))
    no_webhook = new_creation(store, "u")
    announcer = RecordingAnnouncer()
    for creation_id in (finals_only, no_webhook):
        handle(worker(store, clock, ScriptedProvider(), announcer=announcer), store, creation_id)
    assert announcer.told == [(finals_only, "draft"), (no_webhook, "draft")]
    assert [event.webhook for event in announcer.events] == [True, False]


def test_each_attempt_announces_processing_with_its_number(
    store: MemoryDocuments, clock: Clock
) -> None:
    creation_id = new_creation(store, "u", webhook=webhook_asking("processing"))
    announcer = RecordingAnnouncer()
    flaky = ScriptedProvider(fail_with=[ProviderTransient("try again")])
    with pytest.raises(ProviderTransient):
        handle(worker(store, clock, flaky, announcer=announcer), store, creation_id)
    assert handle(worker(store, clock, flaky, announcer=announcer), store, creation_id) == "draft"
    processing = [event for event in announcer.events if event.status == "processing"]
    assert [event.attempt for event in processing] == [1, 2]
    assert announcer.events[-1].status == "draft"
    assert announcer.events[-1].webhook is False  # `completed` was not asked for


@pytest.mark.parametrize("raises", [False, True], ids=["refused", "raised"])
def test_a_lost_processing_announcement_never_stops_the_job(
    store: MemoryDocuments, clock: Clock, raises: bool, caplog: pytest.LogCaptureFixture
) -> None:
    creation_id = new_creation(store, "u", webhook=webhook_asking("processing", "completed"))
    announcer = ProcessingRefused(raises=raises)
    with caplog.at_level(logging.WARNING):
        outcome = handle(
            worker(store, clock, ScriptedProvider(), announcer=announcer), store, creation_id
        )
    # The job went on to its draft, announced it, and was not redelivered over the notification.
    assert outcome == "draft"
    assert store.creation(creation_id)["status"] == "draft"
    assert (announcer.refused, announcer.told) == (1, [(creation_id, "draft")])
    warnings = [r for r in caplog.records if "could not announce processing" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]
