"""The ledger and refunds on the in-memory store: exact balances, each change at most once, under
lost races and outages. (The same code runs on the emulator in tests/integration.)"""

from __future__ import annotations

import pytest

from shared.core.errors import InsufficientTokens, InvalidRequest, StoreBusy
from shared.creations.status_events import StatusEvent
from shared.money.ledger import Ledger
from shared.money.refunds import NOT_QUEUED, RefundHandler, Refunds
from shared.store import paths
from shared.store.documents import Batch
from tests.support.fakes import SETTINGS
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import debited_creation, move, new_creation, update


def assert_balanced(ledger: Ledger, user: str) -> None:
    entries = ledger.entries(user)
    assert ledger.balance(user) == sum(int(e["amount"]) for e in entries)
    assert ledger.balance(user) >= 0
    assert all(e["balance_after"] >= 0 for e in entries)


def failed_creation(store: MemoryDocuments, ledger: Ledger, user: str, cost: int = 3) -> str:
    """A creation debited `cost`, then failed by its worker."""
    creation_id = debited_creation(store, ledger, user, cost)
    move(store, creation_id, "processing")
    move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    return creation_id


# --- the ledger ---------------------------------------------------------------------------------


def test_a_grant_opens_the_account_and_is_applied_once_per_id(ledger: Ledger) -> None:
    assert ledger.grant("u", 5, grant_id="welcome") == 5
    assert ledger.grant("u", 5, grant_id="welcome") == 5
    assert ledger.grant("u", 2) == 7
    assert [e["kind"] for e in ledger.entries("u")] == ["grant", "grant"]
    assert_balanced(ledger, "u")


@pytest.mark.parametrize("amount", [0, -3])
def test_a_grant_must_be_positive(ledger: Ledger, amount: int) -> None:
    with pytest.raises(InvalidRequest, match="tokens"):
        ledger.grant("u", amount)


def test_a_debit_beyond_the_balance_stages_nothing(store: MemoryDocuments, ledger: Ledger) -> None:
    ledger.grant("u", 2)
    (account,) = store.read(paths.user("u"))
    batch = Batch()
    with pytest.raises(InsufficientTokens) as short:
        ledger.stage_debit(batch, account, cost=3, creation_id="c")
    assert (short.value.balance, short.value.cost) == (2, 3)
    assert not batch


def test_a_grant_that_loses_a_race_reads_again_and_both_count(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 1)
    store.before_commit(lambda _batch: Ledger(store, SETTINGS).grant("u", 10))
    assert ledger.grant("u", 5) == 16
    assert_balanced(ledger, "u")


def test_a_store_that_keeps_losing_races_is_busy_not_wrong(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 1)

    def rival(_batch: Batch) -> None:
        Ledger(store, SETTINGS).grant("u", 1)
        store.before_commit(rival)  # every round loses again

    store.before_commit(rival)
    with pytest.raises(StoreBusy, match="contended"):
        ledger.grant("u", 5)
    assert_balanced(ledger, "u")


def test_an_unavailable_store_is_busy_and_changes_nothing(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 1)
    store.unavailable()
    with pytest.raises(StoreBusy, match="unavailable"):
        ledger.grant("u", 5)
    assert ledger.balance("u") == 1


# --- refunds ------------------------------------------------------------------------------------


def test_a_failure_is_refunded_exactly_once(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 10)
    creation_id = failed_creation(store, ledger, "u")
    outcomes = [refunds.refund(creation_id) for _ in range(3)]
    assert [o.result for o in outcomes] == ["refunded", "already_refunded", "already_refunded"]
    assert outcomes[0].balance == 10
    assert ledger.balance("u") == 10
    assert store.creation(creation_id)["refunded"] is True
    assert_balanced(ledger, "u")


def test_a_refund_whose_flag_was_lost_is_finished_without_paying_twice(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 10)
    creation_id = failed_creation(store, ledger, "u")
    refunds.refund(creation_id)
    update(store, paths.creation(creation_id), {"refunded": False})  # as if never marked
    assert refunds.refund(creation_id).result == "already_refunded"
    assert ledger.balance("u") == 10
    assert store.creation(creation_id)["refunded"] is True


@pytest.mark.parametrize("status", ["pending", "processing", "draft"])
def test_unfinished_or_drafted_creations_are_never_refunded(
    store: MemoryDocuments, refunds: Refunds, status: str
) -> None:
    creation_id = new_creation(store, "u")
    if status != "pending":
        move(store, creation_id, "processing")
    if status == "draft":
        move(store, creation_id, "draft", {"media": [], "progress": 100})
    assert refunds.refund(creation_id).result == "not_refundable"
    assert not any("ledger" in path for path in store.paths())


def test_a_missing_or_malformed_creation_is_not_refunded(
    store: MemoryDocuments, refunds: Refunds
) -> None:
    assert refunds.refund("nope").result == "missing"
    batch = Batch()
    # No owner, no cost: a document no code of ours writes, so it says it sets status itself.
    batch.create(paths.creation("odd"), {"status": "failed"}, moves_status=True)
    store.commit(batch)
    assert refunds.refund("odd").result == "not_refundable"


def test_an_unqueued_creation_fails_and_is_refunded_in_one_write(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u", cost=4)
    before = store.commits
    outcome = refunds.refund(creation_id, move=NOT_QUEUED)
    assert store.commits == before + 1
    assert outcome.result == "refunded"
    creation = store.creation(creation_id)
    assert (creation["status"], creation["refunded"]) == ("failed", True)
    assert creation["error"]["code"] == "queue_unavailable"
    assert ledger.balance("u") == 10


def test_a_creation_a_worker_already_has_is_not_failed_by_the_queue_check(
    store: MemoryDocuments, refunds: Refunds
) -> None:
    creation_id = new_creation(store, "u")
    move(store, creation_id, "processing")
    before = store.commits
    outcome = refunds.refund(creation_id, move=NOT_QUEUED)
    assert outcome.result == "moved_on"
    assert outcome.creation is not None and outcome.creation.get("status") == "processing"
    assert store.commits == before


def test_the_refund_handler_acts_only_on_unrefunded_failures(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 10)
    creation_id = failed_creation(store, ledger, "u")
    handler = RefundHandler(refunds)
    event = StatusEvent(creation_id=creation_id, user_id="u", type="image", status="failed")

    assert handler.on_status_event(event, event_id="e3") == "refunded"
    assert handler.on_status_event(event, event_id="e3") == "nothing_to_do"  # redelivered
    assert ledger.balance("u") == 10
    assert_balanced(ledger, "u")


def test_the_refund_handler_goes_by_the_document_not_the_event(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    move(store, creation_id, "processing")
    handler = RefundHandler(refunds)
    before = store.commits
    # Announced failed (early, hand-made, or wrong): the creation is still being worked on.
    event = StatusEvent(creation_id=creation_id, user_id="u", type="image", status="failed")
    assert handler.on_status_event(event, event_id="e1") == "nothing_to_do"
    gone = StatusEvent(creation_id="nothere", user_id="u", type="image", status="failed")
    assert handler.on_status_event(gone, event_id="e2") == "deleted"
    assert store.commits == before
    assert ledger.balance("u") == 7


@pytest.mark.parametrize(
    "fields",
    [
        {"cost": "three"},
        {"cost": True},
        {"cost": -3},
        {"cost": 1.5},
        {"cost": None},
        {"user_id": "a/b"},  # users/a/b is not a user's document (Firestore: ValueError)
        {"user_id": 7},
    ],
    ids=repr,
)
def test_a_creation_with_odd_fields_is_not_refunded_and_does_not_crash(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds, fields: dict[str, object]
) -> None:
    ledger.grant("u", 10)
    creation_id = failed_creation(store, ledger, "u")
    update(store, paths.creation(creation_id), fields)
    before = store.commits
    assert refunds.refund(creation_id).result == "not_refundable"
    assert store.commits == before


@pytest.mark.parametrize(
    "owner",
    [{"user_id": "someone-else"}, {"type": "video"}],
    ids=repr,
)
def test_the_refund_handler_ignores_events_that_disagree_with_their_creation(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds, owner: dict[str, str]
) -> None:
    ledger.grant("u", 10)
    creation_id = failed_creation(store, ledger, "u")
    before = store.commits
    fields = {"creation_id": creation_id, "user_id": "u", "type": "image", "status": "failed"}
    event = StatusEvent.model_validate(fields | owner)
    assert RefundHandler(refunds).on_status_event(event, event_id="e") == "ignored"
    assert store.commits == before


@pytest.mark.parametrize(
    "value",
    [{}, {"status": 5}, {"status": ["failed"]}, {"status": "failed", "refunded": "no"}],
    ids=repr,
)
def test_the_refund_handler_survives_missing_and_odd_fields(
    store: MemoryDocuments, refunds: Refunds, value: dict[str, object]
) -> None:
    batch = Batch()
    batch.create(
        "creations/c1", {"user_id": "u", "type": "image", **value}, moves_status="status" in value
    )
    store.commit(batch)
    before = store.commits
    event = StatusEvent(creation_id="c1", user_id="u", type="image", status="failed")
    assert RefundHandler(refunds).on_status_event(event, event_id="e") in {"ignored", "missing"}
    assert store.commits == before
