"""The sweeper on the in-memory store: what it re-enqueues, fails and refunds, and what it leaves
alone. (One tick of the real function runs on the emulator in tests/integration.)"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from google.api_core.exceptions import InvalidArgument, PermissionDenied

from shared.core.events import PubSubMessage
from shared.core.settings import Settings
from shared.creations.claims import Claim, ClaimStore
from shared.intake.actions import CreationActions
from shared.money.ledger import Ledger
from shared.money.refunds import Refunds
from shared.store import paths
from shared.store.documents import Batch
from shared.work.dead_letters import DeadLetterHandler
from shared.work.sweeper import Sweeper
from tests.support.fakes import Clock, RecordingAnnouncer, RecordingMediaStore, RecordingPublisher
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import move, new_creation, update

SETTINGS = Settings(
    store_max_attempts=5,
    sweep_max_requeues=2,
    lease_seconds=60,
    sweep_pending_after_seconds=120,
    sweep_refund_after_seconds=60,
)


@pytest.fixture
def settings() -> Settings:
    return SETTINGS


@pytest.fixture
def store(clock: Clock) -> MemoryDocuments:
    # Overrides the tier's store: the sweeper compares server times with the clock's now.
    return MemoryDocuments(clock)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


def sweeper_on(
    store: MemoryDocuments,
    clock: Clock,
    refunds: Refunds,
    publisher: RecordingPublisher,
    settings: Settings = SETTINGS,
    finish_delete: Callable[[str], bool] | None = None,
    announcer: RecordingAnnouncer | None = None,
    media: RecordingMediaStore | None = None,
) -> Sweeper:
    return Sweeper(
        store,
        settings,
        claims=ClaimStore(store, settings, clock=clock),
        refunds=refunds,
        publisher=publisher,
        announcer=announcer or RecordingAnnouncer(),
        clock=clock,
        finish_delete=finish_delete,
        media=media,
    )


@pytest.fixture
def sweeper(
    store: MemoryDocuments, clock: Clock, refunds: Refunds, publisher: RecordingPublisher
) -> Sweeper:
    return sweeper_on(store, clock, refunds, publisher)


def test_a_pending_creation_is_left_alone_until_it_is_stuck(
    store: MemoryDocuments, clock: Clock, publisher: RecordingPublisher, sweeper: Sweeper
) -> None:
    creation_id = new_creation(store, "u")
    assert sweeper.sweep().requeued == []
    clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
    assert sweeper.sweep().requeued == [creation_id]
    assert [job.creation_id for job in publisher.jobs] == [creation_id]
    assert store.creation(creation_id)["requeues"] == 1


def test_a_creation_requeued_too_often_is_failed(
    store: MemoryDocuments, clock: Clock, publisher: RecordingPublisher, sweeper: Sweeper
) -> None:
    creation_id = new_creation(store, "u")
    for _ in range(SETTINGS.sweep_max_requeues):
        clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
        assert sweeper.sweep().requeued == [creation_id]
    clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
    report = sweeper.sweep()
    assert (report.requeued, report.failed) == ([], [creation_id])
    failed = store.creation(creation_id)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "not_processed"


def test_a_failure_the_sweeper_makes_is_announced(
    store: MemoryDocuments, clock: Clock, refunds: Refunds, publisher: RecordingPublisher
) -> None:
    announcer = RecordingAnnouncer()
    sweeper = sweeper_on(store, clock, refunds, publisher, announcer=announcer)
    creation_id = new_creation(store, "u")
    for _ in range(SETTINGS.sweep_max_requeues + 1):
        clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
        sweeper.sweep()
    assert announcer.told == [(creation_id, "failed")]


def test_processing_with_a_dead_worker_is_requeued_but_a_live_one_is_not(
    store: MemoryDocuments, clock: Clock, publisher: RecordingPublisher, sweeper: Sweeper
) -> None:
    creation_id = new_creation(store, "u")
    claim = ClaimStore(store, SETTINGS, clock=clock).claim(creation_id)
    assert isinstance(claim, Claim)
    clock.advance(SETTINGS.lease_seconds - 1)
    assert sweeper.sweep().requeued == []
    clock.advance(2)  # the lease ran out: the worker died
    assert sweeper.sweep().requeued == [creation_id]
    clock.advance(1)
    assert sweeper.sweep().requeued == []  # just re-enqueued: that job gets time to arrive


def test_a_missed_refund_is_made_by_the_sweeper(
    store: MemoryDocuments, clock: Clock, ledger: Ledger, sweeper: Sweeper
) -> None:
    ledger.grant("u", 5)
    creation_id = new_creation(store, "u", cost=2)
    move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    assert sweeper.sweep().refunded == []  # its status event gets its chance first
    clock.advance(SETTINGS.sweep_refund_after_seconds + 1)
    assert sweeper.sweep().refunded == [creation_id]
    assert store.creation(creation_id)["refunded"] is True
    assert ledger.balance("u") == 7
    assert sweeper.sweep().refunded == []


def test_a_creation_the_sweeper_refunds_is_emptied_and_announced(
    store: MemoryDocuments, clock: Clock, refunds: Refunds, ledger: Ledger
) -> None:
    """Its announcement was lost; once refunded no sweep selects it again, so the sweep that
    refunds it also removes what crashed attempts left under it."""
    media, announcer = RecordingMediaStore(), RecordingAnnouncer()
    sweeper = sweeper_on(
        store, clock, refunds, RecordingPublisher(), announcer=announcer, media=media
    )
    ledger.grant("u", 5)
    creation_id = new_creation(store, "u", cost=2)
    move(store, creation_id, "processing")
    media.objects[f"media/u/{creation_id}/1-abc/0.png"] = b"a crashed attempt's upload"
    move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    clock.advance(SETTINGS.sweep_refund_after_seconds + 1)
    assert sweeper.sweep().refunded == [creation_id]
    assert media.under("u", creation_id) == []
    assert announcer.told == [(creation_id, "failed")]


def test_one_creations_trouble_does_not_stop_the_sweep(
    store: MemoryDocuments, clock: Clock, publisher: RecordingPublisher, sweeper: Sweeper
) -> None:
    first, second = new_creation(store, "u"), new_creation(store, "u")
    clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
    (doomed,) = store.read(paths.creation(first))

    def delete_the_first_meanwhile(_batch: Batch) -> None:
        gone = Batch()
        gone.delete(doomed)
        store.commit(gone)

    store.before_commit(delete_the_first_meanwhile)
    report = sweeper.sweep()
    assert second in report.requeued
    assert {job.creation_id for job in publisher.jobs} == {first, second}


def test_a_dead_queue_requeues_nothing_and_says_so(
    store: MemoryDocuments, clock: Clock, publisher: RecordingPublisher, sweeper: Sweeper
) -> None:
    creation_id = new_creation(store, "u")
    clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
    publisher.fail = True
    assert sweeper.sweep().requeued == []
    assert "requeues" not in store.creation(creation_id)


def test_an_odd_document_is_skipped_and_the_rest_are_swept(
    store: MemoryDocuments, clock: Clock, publisher: RecordingPublisher, sweeper: Sweeper
) -> None:
    batch = Batch()
    # No owner, no type: not a creation any code of ours writes (so it sets status itself).
    odd = {"status": "pending", "updated_at": clock.now}
    batch.create(paths.creation("odd"), odd, moves_status=True)
    store.commit(batch)
    creation_id = new_creation(store, "u")
    clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
    assert sweeper.sweep().requeued == [creation_id]


def test_a_creation_a_dead_letter_spared_is_taken_on_once_its_worker_dies(
    store: MemoryDocuments, clock: Clock, publisher: RecordingPublisher, sweeper: Sweeper
) -> None:
    # dead_letter leaves a creation under a live lease to its worker; if that worker dies, the
    # creation must not stay `processing` (unrefunded) for ever: the sweeper takes it on.
    creation_id = new_creation(store, "u")
    claim = ClaimStore(store, SETTINGS, clock=clock).claim(creation_id)
    assert isinstance(claim, Claim)
    dead_letters = DeadLetterHandler(ClaimStore(store, SETTINGS, clock=clock), RecordingAnnouncer())
    job = {"creation_id": creation_id, "user_id": "u", "type": "image"}
    message = PubSubMessage("m", json.dumps(job).encode(), {})
    assert not dead_letters.on_dead_letter(message, event_id="e")
    failed: list[str] = []
    for _ in range(SETTINGS.sweep_max_requeues + 1):  # the worker died; no job ever arrives
        clock.advance(max(SETTINGS.lease_seconds, SETTINGS.sweep_pending_after_seconds) + 1)
        failed += sweeper.sweep().failed
    assert failed == [creation_id]
    assert store.creation(creation_id)["error"]["code"] == "not_processed"


def paged_sweeper(
    store: MemoryDocuments, clock: Clock, refunds: Refunds, publisher: RecordingPublisher
) -> Sweeper:
    """The sweeper with pages of two, so a handful of candidates takes several pages."""
    settings = SETTINGS.model_copy(update={"sweep_batch_size": 2})
    return sweeper_on(store, clock, refunds, publisher, settings)


def test_a_sweep_works_through_every_page_of_candidates(
    store: MemoryDocuments,
    clock: Clock,
    ledger: Ledger,
    refunds: Refunds,
    publisher: RecordingPublisher,
) -> None:
    ledger.grant("u", 50)
    pending = {new_creation(store, "u") for _ in range(5)}  # same updated_at: ties across pages
    expired = set()
    for _ in range(3):
        creation_id = new_creation(store, "u")
        assert isinstance(ClaimStore(store, SETTINGS, clock=clock).claim(creation_id), Claim)
        expired.add(creation_id)
    unrefunded = set()
    for _ in range(5):
        creation_id = new_creation(store, "u")
        move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
        unrefunded.add(creation_id)
    clock.advance(max(SETTINGS.sweep_pending_after_seconds, SETTINGS.lease_seconds) + 1)
    report = paged_sweeper(store, clock, refunds, publisher).sweep()
    assert sorted(report.requeued) == sorted(pending | expired)
    assert sorted(report.refunded) == sorted(unrefunded)
    assert len(publisher.jobs) == len(pending | expired)  # each once, none twice


def odd(store: MemoryDocuments, clock: Clock, creation_id: str, fields: dict[str, object]) -> None:
    batch = Batch()
    # Not a creation any code of ours writes (so it sets status itself).
    batch.create(
        paths.creation(creation_id),
        {"status": "pending", "updated_at": clock.now, **fields},
        moves_status=True,
    )
    store.commit(batch)


def test_odd_documents_at_the_head_of_every_page_do_not_stall_the_sweep(
    store: MemoryDocuments,
    clock: Clock,
    refunds: Refunds,
    publisher: RecordingPublisher,
) -> None:
    # Oldest first: these come first in every sweep, more of them than a page holds.
    odd(store, clock, "aa-no-owner", {})
    odd(store, clock, "ab-odd-requeues", {"user_id": "u", "type": "image", "requeues": "two"})
    odd(store, clock, "ac-odd-owner", {"user_id": "a/b", "type": "image"})
    odd(store, clock, "ad-odd-type", {"user_id": "u", "type": 7})
    odd(store, clock, "ae-odd-requeued-at", {"user_id": "u", "type": "image", "requeues": None})
    clock.advance(1)
    creation_id = new_creation(store, "u")
    clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
    sweeper = paged_sweeper(store, clock, refunds, publisher)
    for _ in range(2):  # and the next sweep gets there too
        assert sweeper.sweep().requeued == [creation_id]
        clock.advance(SETTINGS.sweep_pending_after_seconds + 1)


@pytest.mark.parametrize(
    "error",
    [
        KeyError("status"),
        InvalidArgument("a value Firestore refuses"),
        PermissionDenied("a document the rules keep from us"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unexpected_error_on_one_creation_skips_only_it(
    store: MemoryDocuments,
    clock: Clock,
    ledger: Ledger,
    refunds: Refunds,
    publisher: RecordingPublisher,
    error: Exception,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger.grant("u", 10)
    first, second = (new_creation(store, "u") for _ in range(2))
    for creation_id in (first, second):
        move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    clock.advance(SETTINGS.sweep_refund_after_seconds + 1)

    def fail_once(_batch: Batch) -> None:
        raise error

    store.before_commit(fail_once)  # the first refund's write
    report = paged_sweeper(store, clock, refunds, publisher).sweep()
    assert len(report.refunded) == 1
    skipped = [r for r in caplog.records if "sweeper skipped" in r.getMessage()]
    assert len(skipped) == 1  # one line for the one bad creation


def test_a_delete_that_stopped_midway_is_finished_by_the_sweeper_if_nothing_else_did(
    store: MemoryDocuments, clock: Clock, ledger: Ledger, refunds: Refunds
) -> None:
    """The DELETE marked it and stopped; the trigger that should have finished it gave up."""
    ledger.grant("u", 10)
    media = RecordingMediaStore()
    actions = CreationActions(
        store, SETTINGS, refunds=refunds, media=media, announcer=RecordingAnnouncer()
    )
    sweeper = sweeper_on(
        store, clock, refunds, RecordingPublisher(), finish_delete=actions.finish_delete
    )
    marked = new_creation(store, "u")
    move(store, marked, "processing")
    move(store, marked, "draft", {"progress": 100, "media": [{"uri": "gs://m/x"}]})
    media.objects[f"media/u/{marked}/1-abc/0.png"] = b"png"
    update(store, paths.creation(marked), {"deleting": True})
    hand_marked = new_creation(store, "u")  # pending: no DELETE marks that; left alone
    update(store, paths.creation(hand_marked), {"deleting": True})
    assert sweeper.sweep().deleted == []  # the trigger gets its chance first
    clock.advance(SETTINGS.sweep_refund_after_seconds + 1)
    assert sweeper.sweep().deleted == [marked]
    assert store.data(paths.creation(marked)) is None
    assert media.under("u", marked) == []
    assert store.creation(hand_marked)["status"] == "pending"
    assert sweeper.sweep().deleted == []
