"""Submitting on the in-memory store: one atomic write, the answer built from it, idempotency
keys, a lost commit answer, a dead queue. (The HTTP path runs on the emulator in
tests/integration.)"""

from __future__ import annotations

import datetime as dt

import pytest

from shared.core.errors import Conflict, InsufficientTokens, QueueUnavailable, StoreBusy
from shared.creations.claims import ClaimStore
from shared.creations.model import Creation, Job
from shared.creations.requests import ReelRequest
from shared.intake.idempotency import EXPIRES_AT
from shared.intake.submission import (
    Accepted,
    QueueUnavailableRefunded,
    SubmissionService,
    Unconfirmed,
)
from shared.money.ledger import Ledger
from shared.money.refunds import Refunds
from shared.store import paths
from shared.store.documents import Batch
from shared.wiring import submissions
from shared.work.jobs import JobPublisher
from tests.support.fakes import SETTINGS, RecordingAnnouncer, RecordingPublisher
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import IMAGE, move, update


def service(
    store: MemoryDocuments, publisher: JobPublisher, announcer: RecordingAnnouncer | None = None
) -> SubmissionService:
    return submissions(store, SETTINGS, publisher, announcer or RecordingAnnouncer())


def submit(svc: SubmissionService, key: str | None = None, fingerprint: str = "f") -> Accepted:
    return svc.submit(user_id="u", request=IMAGE, idempotency_key=key, fingerprint=fingerprint)


def test_an_accepted_creation_is_one_write_answered_from_what_was_written(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)
    publisher = RecordingPublisher()
    commits, reads = store.commits, store.reads
    accepted = submit(service(store, publisher))
    assert store.commits == commits + 1
    assert store.reads == reads + 1  # the balance: nothing was sent before this round
    assert not accepted.replayed
    assert accepted.balance == 7
    assert accepted.creation.status == "pending"
    assert accepted.creation.created_at is not None
    (stored,) = store.read(paths.creation(accepted.creation.id))
    assert accepted.creation == Creation.of(stored)
    assert publisher.sent == [(accepted.creation.job, SETTINGS.generate_topic)]


def test_a_reel_goes_to_the_stitch_topic(store: MemoryDocuments, ledger: Ledger) -> None:
    ledger.grant("u", 10)
    publisher = RecordingPublisher()
    reel = ReelRequest(clips=["a", "b"], sources=["gs://m/a", "gs://m/b"], duration_seconds=8.0)
    accepted = service(store, publisher).submit(
        user_id="u", request=reel, idempotency_key=None, fingerprint="r"
    )
    assert accepted.creation.type == "reel"
    assert publisher.sent[0][1] == SETTINGS.stitch_topic


def test_a_short_balance_writes_nothing(store: MemoryDocuments, ledger: Ledger) -> None:
    ledger.grant("u", 2)
    before = store.paths()
    with pytest.raises(InsufficientTokens):
        submit(service(store, RecordingPublisher()))
    assert store.paths() == before


def test_the_same_key_and_request_answers_the_same_creation_and_debits_once(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)
    publisher = RecordingPublisher()
    first = submit(service(store, publisher), key="k")
    again = submit(service(store, publisher), key="k")
    assert again.replayed
    assert again.creation.id == first.creation.id
    assert again.balance == 7
    assert len(publisher.sent) == 1
    with pytest.raises(Conflict, match="different request"):
        submit(service(store, publisher), key="k", fingerprint="other")
    assert ledger.balance("u") == 7


def test_an_expired_key_is_free_again(store: MemoryDocuments, ledger: Ledger) -> None:
    ledger.grant("u", 10)
    first = submit(service(store, RecordingPublisher()), key="k")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    update(store, paths.idempotency_key("u", "k"), {EXPIRES_AT: past})
    fresh = submit(service(store, RecordingPublisher()), key="k")
    assert not fresh.replayed
    assert fresh.creation.id != first.creation.id
    assert ledger.balance("u") == 4


@pytest.mark.parametrize("resent", [False, True], ids=["unanswered", "resent"])
def test_a_lost_commit_answer_is_an_acceptance_enqueued_once(
    store: MemoryDocuments, ledger: Ledger, resent: bool
) -> None:
    ledger.grant("u", 10)
    publisher = RecordingPublisher()
    store.lose_next_commit_answer(resent=resent)
    accepted = submit(service(store, publisher))
    assert accepted.balance == 7
    assert ledger.balance("u") == 7
    assert publisher.jobs == [accepted.creation.job]
    assert [e["kind"] for e in ledger.entries("u")].count("debit") == 1


def test_a_store_that_does_not_answer_before_the_commit_is_busy_and_debits_nothing(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)
    store.unavailable()
    with pytest.raises(StoreBusy):
        submit(service(store, RecordingPublisher()))
    assert ledger.balance("u") == 10


def test_a_dead_queue_fails_refunds_and_frees_the_key(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)
    announcer = RecordingAnnouncer()
    with pytest.raises(QueueUnavailableRefunded) as caught:
        submit(service(store, RecordingPublisher(fail=True), announcer), key="k")
    assert caught.value.refunded
    assert announcer.told == [(caught.value.creation_id, "failed")]
    creation = store.creation(caught.value.creation_id)
    assert (creation["status"], creation["refunded"]) == ("failed", True)
    assert ledger.balance("u") == 10
    assert store.data(paths.idempotency_key("u", "k")) is None
    retried = submit(service(store, RecordingPublisher()), key="k")
    assert not retried.replayed


def test_a_dead_queue_whose_failure_cannot_be_written_is_an_acceptance(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    """Neither the refund nor the move to `failed` can be written, and a read shows the
    creation `pending`: the truthful answer is an acceptance (the sweeper queues it again)."""
    ledger.grant("u", 10)

    class DeadQueueBusyStore(RecordingPublisher):
        def publish(self, job: Job, *, topic: str) -> str:
            # the refund and the move both fail (StoreBusy is not retried); the read after answers
            store.unavailable(2)
            return super().publish(job, topic=topic)

    accepted = submit(service(store, DeadQueueBusyStore(fail=True)), key="k")
    assert accepted.creation.status == "pending"
    assert store.creation(accepted.creation.id)["status"] == "pending"
    assert ledger.balance("u") == 7
    assert store.data(paths.idempotency_key("u", "k")) is not None  # a retry replays it


def test_a_dead_queue_and_a_dead_store_is_unconfirmed(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)

    class DownWithTheStore(RecordingPublisher):
        def publish(self, job: Job, *, topic: str) -> str:
            store.unavailable(100)  # Firestore goes too: nothing more can be written or read
            return super().publish(job, topic=topic)

    with pytest.raises(Unconfirmed) as caught:
        submit(service(store, DownWithTheStore(fail=True)))
    store.recover()
    assert store.creation(caught.value.creation_id)["status"] == "pending"
    assert ledger.balance("u") == 7


def contend_user_document(store: MemoryDocuments, user_id: str, commits: int) -> None:
    """Before each of the next `commits` commits that write `user_id`'s document, another
    writer changes it first (a burst of that user's submits), so each loses its race."""
    left = {"n": commits}

    def hook(batch: Batch) -> None:
        if left["n"] and any(w.path == paths.user(user_id) for w in batch.writes):
            left["n"] -= 1
            update(store, paths.user(user_id), {"touched": left["n"]})
        if left["n"]:
            store.before_commit(hook)

    store.before_commit(hook)


def test_a_dead_queue_whose_refund_stays_contended_fails_the_creation_and_the_refund_follows(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 10)

    class DeadQueueBusyUser(RecordingPublisher):
        def publish(self, job: Job, *, topic: str) -> str:
            contend_user_document(store, "u", SETTINGS.store_max_attempts)
            return super().publish(job, topic=topic)

    with pytest.raises(QueueUnavailableRefunded) as caught:
        submit(service(store, DeadQueueBusyUser(fail=True)), key="k")
    assert caught.value.refunded is False  # not yet: the refund trigger does it
    creation = store.creation(caught.value.creation_id)
    assert (creation["status"], creation["error"]["code"]) == ("failed", "queue_unavailable")
    assert not creation.get("refunded")
    assert store.data(paths.idempotency_key("u", "k")) is None  # failed: the key is free
    assert refunds.refund(caught.value.creation_id).result == "refunded"  # the trigger's call
    assert ledger.balance("u") == 10


@pytest.mark.parametrize("resent", [False, True], ids=["unanswered", "resent"])
def test_a_debit_whose_answer_was_lost_and_cannot_be_checked_is_unconfirmed_not_busy(
    store: MemoryDocuments, ledger: Ledger, resent: bool
) -> None:
    """`busy` would say nothing was debited, and a retry without a key would pay twice."""
    ledger.grant("u", 10)
    publisher = RecordingPublisher()
    # resent: the next round's read fails too, then the check after it
    store.lose_next_commit_answer(resent=resent, then_unavailable=2 if resent else 1)
    with pytest.raises(Unconfirmed) as caught:
        submit(service(store, publisher))
    assert caught.value.answer_fields() == {"creation_id": caught.value.creation_id}
    assert caught.value.answer_headers() == {
        "Location": f"/v1/creations/{caught.value.creation_id}"
    }
    assert ledger.balance("u") == 7  # it was debited, and it goes on:
    assert store.creation(caught.value.creation_id)["status"] == "pending"
    assert [job.creation_id for job in publisher.jobs] == [caught.value.creation_id]


def test_a_commit_that_did_not_land_is_busy_even_after_a_lost_race(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    """Every round lost its race and the check finds no debit: nothing was debited."""
    ledger.grant("u", 10)
    contend_user_document(store, "u", SETTINGS.store_max_attempts)
    with pytest.raises(StoreBusy):
        submit(service(store, RecordingPublisher()))
    assert ledger.balance("u") == 10


def test_a_replay_is_answered_from_the_key_alone(store: MemoryDocuments, ledger: Ledger) -> None:
    """Looked up before the request is checked again: what was made is the answer, whatever
    changed since (a clip deleted, a model withdrawn)."""
    ledger.grant("u", 10)
    svc = service(store, RecordingPublisher())
    first = submit(svc, key="k", fingerprint="f")
    replayed = svc.replay(user_id="u", idempotency_key="k", fingerprint="f")
    assert replayed is not None and replayed.replayed
    assert (replayed.creation.id, replayed.balance) == (first.creation.id, 7)
    assert svc.replay(user_id="u", idempotency_key="other", fingerprint="f") is None
    with pytest.raises(Conflict, match="different request"):
        svc.replay(user_id="u", idempotency_key="k", fingerprint="g")


def test_a_publish_that_timed_out_but_arrived_is_an_acceptance(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)

    class LatePublisher:
        def publish(self, job: Job, *, topic: str) -> str:
            ClaimStore(store, SETTINGS).claim(job.creation_id)  # a worker got it
            raise QueueUnavailable("publish timed out")

    accepted = submit(service(store, LatePublisher()))
    assert accepted.creation.status == "processing"
    assert ledger.balance("u") == 7
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 0


def test_a_dead_queue_whose_refund_answer_was_lost_still_says_refunded(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)

    class DeadQueueAndLostAnswer(RecordingPublisher):
        def publish(self, job: Job, *, topic: str) -> str:
            store.lose_next_commit_answer()  # the refund lands; its answer does not
            return super().publish(job, topic=topic)

    with pytest.raises(QueueUnavailableRefunded) as caught:
        submit(service(store, DeadQueueAndLostAnswer(fail=True)), key="k")
    assert caught.value.refunded is True
    assert ledger.balance("u") == 10
    assert store.data(paths.idempotency_key("u", "k")) is None  # freed for the retry


def test_a_creation_a_worker_already_failed_is_not_said_to_be_unqueued(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 10)

    class LateThenFailed:
        """The publish timed out here but arrived; a worker took the job and failed it."""

        def publish(self, job: Job, *, topic: str) -> str:
            move(store, job.creation_id, "processing")
            move(
                store,
                job.creation_id,
                "failed",
                {"error": {"code": "safety_blocked", "message": "no"}},
            )
            raise QueueUnavailable("publish timed out")

    accepted = submit(service(store, LateThenFailed()))
    assert accepted.creation.status == "failed"
    assert (accepted.creation.error or {})["code"] == "safety_blocked"
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 0  # the trigger's job


def test_a_dead_queue_then_a_dead_store_after_the_refund_was_sent_is_unconfirmed(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    """The refund landed but its answer was lost, and nothing can be read after: the creation
    is failed and refunded, so neither `202 pending` nor `queue_unavailable` can be said."""
    ledger.grant("u", 10)

    class DeadQueueThenDeadStore(RecordingPublisher):
        def publish(self, job: Job, *, topic: str) -> str:
            store.lose_next_commit_answer(then_unavailable=100)
            return super().publish(job, topic=topic)

    with pytest.raises(Unconfirmed) as caught:
        submit(service(store, DeadQueueThenDeadStore(fail=True)), key="k")
    store.recover()
    creation = store.creation(caught.value.creation_id)
    assert (creation["status"], creation["refunded"]) == ("failed", True)
    assert ledger.balance("u") == 10
    assert store.data(paths.idempotency_key("u", "k")) is not None  # a retry replays it


def test_a_short_balance_after_a_lost_race_is_402_without_a_second_look(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    """The second round's read showed no debit: nothing was sent since, so the 402 stands as
    it is (no confirming read that a failing store could turn into `unconfirmed`)."""
    ledger.grant("u", 3)
    rival = service(store, RecordingPublisher())
    store.before_commit(lambda batch: submit(rival))  # takes the whole balance first
    reads = store.reads
    with pytest.raises(InsufficientTokens):
        submit(service(store, RecordingPublisher()))
    # The rival's round (the balance), this submit's first (the balance), and its second after
    # its sent commit lost the race (the balance, and the debit and creation it may have made).
    assert store.reads - reads == 1 + 1 + 3
    assert ledger.balance("u") == 0
