"""Cancel and delete on the in-memory store: one read, one write, the refund with the move, and
the truth told when a commit's answer was lost."""

from __future__ import annotations

import pytest

from shared.core.errors import Conflict, NotFound, StoreBusy
from shared.creations.model import Creation
from shared.creations.reading import CreationReader
from shared.intake.actions import CreationActions
from shared.money.ledger import Ledger
from shared.money.refunds import CANCEL, FinalMove, RefundHandler, Refunds
from shared.store import paths
from shared.store.documents import Batch
from shared.wiring import submissions
from tests.support.events import status_event
from tests.support.fakes import (
    SETTINGS,
    RecordingAnnouncer,
    RecordingMediaStore,
    RecordingPublisher,
)
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import IMAGE, debited_creation, move, update


@pytest.fixture
def media() -> RecordingMediaStore:
    return RecordingMediaStore()


@pytest.fixture
def actions(
    store: MemoryDocuments, refunds: Refunds, media: RecordingMediaStore
) -> CreationActions:
    return CreationActions(
        store, SETTINGS, refunds=refunds, media=media, announcer=RecordingAnnouncer()
    )


def test_cancel_moves_and_refunds_in_one_write_read_once(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    commits, reads = store.commits, store.reads
    canceled = actions.cancel("u", creation_id)
    assert (store.commits, store.reads) == (commits + 1, reads + 3)  # one round trip each
    assert (canceled.status, canceled.refunded) == ("canceled", True)
    assert canceled.completed_at is not None
    (stored,) = store.read(paths.creation(creation_id))
    assert canceled == Creation.of(stored)  # the answer is what was written
    assert ledger.balance("u") == 10


def test_a_second_cancel_or_one_past_pending_is_a_conflict(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    first = debited_creation(store, ledger, "u")
    actions.cancel("u", first)
    with pytest.raises(Conflict, match="already canceled"):
        actions.cancel("u", first)
    running = debited_creation(store, ledger, "u")
    move(store, running, "processing")
    with pytest.raises(Conflict, match="only pending ones"):
        actions.cancel("u", running)
    assert ledger.balance("u") == 7  # the running one stays paid for


def test_another_users_creation_is_not_found(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    for act in (actions.cancel, actions.delete):
        with pytest.raises(NotFound):
            act("mallory", creation_id)
    assert store.creation(creation_id)["status"] == "pending"


def test_a_cancel_whose_answer_was_lost_is_still_a_cancel(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    store.lose_next_commit_answer(resent=True)
    canceled = actions.cancel("u", creation_id)
    assert (canceled.status, canceled.refunded) == ("canceled", True)
    assert ledger.balance("u") == 10
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 1


def test_of_two_concurrent_cancels_the_second_is_a_conflict(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    """The other cancel commits between this one's read and its commit: this one lost the
    race (it must not pass the other's write off as its own lost answer)."""
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    won: list[Creation] = []
    store.before_commit(lambda batch: won.append(actions.cancel("u", creation_id)))
    with pytest.raises(Conflict, match="already canceled"):
        actions.cancel("u", creation_id)
    assert [c.status for c in won] == ["canceled"]
    assert ledger.balance("u") == 10
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 1


def test_a_cancel_whose_commit_answered_busy_but_landed_is_still_a_cancel(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    store.lose_next_commit_answer()  # StoreBusy, which the optimistic loop passes through
    canceled = actions.cancel("u", creation_id)
    assert (canceled.status, canceled.refunded) == ("canceled", True)
    assert ledger.balance("u") == 10


def test_fields_written_with_a_move_cannot_replace_what_the_move_writes(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    creation, user, entry = store.read(
        paths.creation(creation_id), paths.user("u"), paths.refund_entry("u", creation_id)
    )
    cases: list[tuple[dict[str, object], FinalMove | None]] = [
        ({"refunded": False}, CANCEL),  # would overwrite what the move writes
        ({"note": 1}, None),  # fields with no move to go with
    ]
    for fields, final_move in cases:
        with pytest.raises(ValueError, match="move_fields"):
            refunds.refund_read(creation, user, entry, move=final_move, move_fields=fields)
    assert store.creation(creation_id)["status"] == "pending"


def test_delete_takes_the_media_then_the_document(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions, media: RecordingMediaStore
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    move(store, creation_id, "processing")
    media.objects[f"media/u/{creation_id}/0.png"] = b"png"
    media.objects["media/u/other/0.png"] = b"keep"
    move(store, creation_id, "draft", {"progress": 100})
    actions.delete("u", creation_id)
    assert store.data(paths.creation(creation_id)) is None
    assert list(media.objects) == ["media/u/other/0.png"]
    assert ledger.balance("u") == 7  # a draft's tokens stay spent
    with pytest.raises(NotFound):
        actions.delete("u", creation_id)


def test_a_delete_that_stops_midway_leaves_a_mark_its_event_finishes(
    store: MemoryDocuments,
    ledger: Ledger,
    refunds: Refunds,
    actions: CreationActions,
    media: RecordingMediaStore,
) -> None:
    """The media went but the document's delete did not (a 503): the draft is marked
    `deleting`, and the `refund` trigger, which that mark's update fires, finishes it."""
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    move(store, creation_id, "processing")
    media.objects[f"media/u/{creation_id}/0.png"] = b"png"
    move(store, creation_id, "draft", {"progress": 100, "media": [{"uri": "gs://m/x"}]})
    marked: list[bool] = []

    def fail_the_document_delete(batch: Batch) -> None:
        marked.append(bool(store.creation(creation_id).get("deleting")))
        store.unavailable()

    # The first commit (the mark) lands; the second (the document's delete) does not.
    store.before_commit(lambda batch: store.before_commit(fail_the_document_delete))
    with pytest.raises(StoreBusy):
        actions.delete("u", creation_id)
    left = store.creation(creation_id)
    assert (left["status"], left["deleting"], marked) == ("draft", True, [True])
    assert media.under("u", creation_id) == []  # the media went first
    handler = RefundHandler(refunds, media=media, finish_delete=actions.finish_delete)
    handler.on_status_event(status_event(creation_id, left), event_id="e")
    assert store.data(paths.creation(creation_id)) is None
    assert not actions.finish_delete(creation_id)  # nothing left to finish
    assert ledger.balance("u") == 7


def test_delete_refunds_an_unrefunded_failure_first(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    actions.delete("u", creation_id)
    assert store.data(paths.creation(creation_id)) is None
    assert ledger.balance("u") == 10


def test_an_unfinished_creation_cannot_be_deleted(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    with pytest.raises(Conflict, match="once finished"):
        actions.delete("u", creation_id)
    assert store.data(paths.creation(creation_id)) is not None


def test_a_delete_whose_answer_was_lost_is_still_a_delete(
    store: MemoryDocuments, ledger: Ledger, actions: CreationActions
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    actions.cancel("u", creation_id)
    store.lose_next_commit_answer(resent=True)
    actions.delete("u", creation_id)  # no NotFound: the document went with this call
    assert store.data(paths.creation(creation_id)) is None


def test_a_creation_whose_delete_began_is_gone_for_the_api(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    """Once marked `deleting` it is not found, not listed, not a clip, not a replay."""
    ledger.grant("u", 10)
    svc = submissions(store, SETTINGS, RecordingPublisher(), RecordingAnnouncer())
    accepted = svc.submit(user_id="u", request=IMAGE, idempotency_key="k", fingerprint="f")
    kept = debited_creation(store, ledger, "u")
    creation_id = accepted.creation.id
    move(store, creation_id, "processing")
    move(store, creation_id, "draft", {"progress": 100, "media": [{"uri": "gs://m/x"}]})
    update(store, paths.creation(creation_id), {"deleting": True})
    reader = CreationReader(store)
    with pytest.raises(NotFound):
        reader.get_owned("u", creation_id)
    items, _ = reader.list_for_user("u", status=None, limit=10, cursor=None)
    assert [item.id for item in items] == [kept]
    assert reader.get_many([creation_id, kept]).keys() == {kept}
    with pytest.raises(Conflict, match="deleted"):
        svc.replay(user_id="u", idempotency_key="k", fingerprint="f")


def test_a_refund_still_reaches_an_owner_the_sign_in_rule_now_refuses(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    """Signed in before the uid rule was tightened (a tab is not printable): owed all the same."""
    ledger.grant("old\tuser", 10)
    creation_id = debited_creation(store, ledger, "old\tuser")
    move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    assert refunds.refund(creation_id).result == "refunded"
    assert ledger.balance("old\tuser") == 10


def test_cancel_and_delete_announce_on_the_status_stream(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds, media: RecordingMediaStore
) -> None:
    announcer = RecordingAnnouncer()
    actions = CreationActions(store, SETTINGS, refunds=refunds, media=media, announcer=announcer)
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    actions.cancel("u", creation_id)
    actions.delete("u", creation_id)
    assert announcer.told == [(creation_id, "canceled"), (creation_id, "deleting")]


def test_a_lost_announcement_costs_a_cancel_nothing(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds, media: RecordingMediaStore
) -> None:
    down = RecordingAnnouncer(fail=True)
    actions = CreationActions(store, SETTINGS, refunds=refunds, media=media, announcer=down)
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    assert actions.cancel("u", creation_id).status == "canceled"
    assert ledger.balance("u") == 10  # refunded in the move's own write
