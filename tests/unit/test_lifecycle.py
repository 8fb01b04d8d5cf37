"""The state machine: every move the contract allows is made, every other is refused, from
every status; each move writes the fields that belong with it, guarded by what was read."""

from __future__ import annotations

import itertools

import pytest

from shared.core.errors import InvalidTransition
from shared.creations import lifecycle
from shared.creations.lifecycle import FINAL_STATUSES, STATUSES, TRANSITIONS
from shared.creations.model import Status
from shared.creations.requests import document_of
from shared.store.documents import SERVER_TIME, Batch, LostRace, Snapshot
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import IMAGE, VIDEO, move

# The contract's diagram, written out: pending -> processing -> draft; pending|processing ->
# failed; pending -> canceled.
ALLOWED = {
    ("pending", "processing"),
    ("pending", "failed"),
    ("pending", "canceled"),
    ("processing", "draft"),
    ("processing", "failed"),
}


def creation_in(store: MemoryDocuments, status: Status) -> Snapshot:
    batch = Batch()
    lifecycle.stage_new(batch, creation_id=status, user_id="u", request=IMAGE, cost=1)
    made = store.commit(batch)[f"creations/{status}"]
    if status == "pending":
        return made
    path = made.path
    route: list[Status] = ["processing"] if status != "canceled" else []
    if status not in ("processing", "pending"):
        route.append(status)
    for step in route:
        fields = {"lease_owner": "w", "lease_expires_at": None} if step == "processing" else {}
        move(store, status, step, fields)
    (current,) = store.read(path)
    assert current.get("status") == status
    return current


def test_the_table_is_the_contracts_diagram() -> None:
    table = {(current, wanted) for current, targets in TRANSITIONS.items() for wanted in targets}
    assert table == ALLOWED
    assert set(TRANSITIONS) == set(STATUSES)
    assert {status for status in STATUSES if not TRANSITIONS[status]} == FINAL_STATUSES
    assert {"draft", "failed", "canceled"} == FINAL_STATUSES  # the contract's final statuses


@pytest.mark.parametrize(
    ("current", "wanted"),
    list(itertools.product(STATUSES, STATUSES)),
    ids=lambda value: str(value),
)
def test_every_move_is_made_or_refused_as_the_table_says(
    store: MemoryDocuments, current: Status, wanted: Status
) -> None:
    creation = creation_in(store, current)
    batch = Batch()
    if (current, wanted) not in ALLOWED:
        with pytest.raises(InvalidTransition) as refused:
            lifecycle.stage_move(batch, creation, wanted)
        assert (refused.value.current, refused.value.wanted) == (current, wanted)
        assert not batch
        return
    written = lifecycle.stage_move(batch, creation, wanted, {"error": None})
    after = store.commit(batch)[creation.path]
    assert after.get("status") == wanted
    assert written["updated_at"] is SERVER_TIME
    assert ("completed_at" in written) == (wanted in FINAL_STATUSES)
    leaving_processing = current == "processing"
    assert ("lease_owner" in written) == leaving_processing
    if leaving_processing:
        assert after.get("lease_owner") is None
        assert after.get("lease_expires_at") is None


def test_a_move_decided_on_a_stale_read_does_not_land(store: MemoryDocuments) -> None:
    stale = creation_in(store, "pending")
    batch = Batch()
    lifecycle.stage_move(batch, stale, "processing")
    store.commit(batch)
    late = Batch()
    lifecycle.stage_move(late, stale, "canceled")  # allowed from what it read: pending
    with pytest.raises(LostRace):
        store.commit(late)
    assert store.data(stale.path) is not None
    assert (store.data(stale.path) or {})["status"] == "processing"


def test_status_is_never_passed_in_with_the_fields(store: MemoryDocuments) -> None:
    creation = creation_in(store, "pending")
    with pytest.raises(ValueError, match="state machine"):
        lifecycle.stage_move(Batch(), creation, "processing", {"status": "draft"})


def test_a_batch_refuses_status_from_anyone_but_the_state_machine(store: MemoryDocuments) -> None:
    creation = creation_in(store, "pending")
    with pytest.raises(ValueError, match="state machine"):
        Batch().update(creation, {"status": "draft"})
    with pytest.raises(ValueError, match="state machine"):
        Batch().create("creations/x", {"status": "pending", "user_id": "u"})
    with pytest.raises(ValueError, match="state machine"):
        Batch().update(creation, {"progress": 5}, moves_status=True)  # says so, sets nothing


def test_a_new_creation_starts_pending_with_nothing_done(store: MemoryDocuments) -> None:
    batch = Batch()
    lifecycle.stage_new(batch, creation_id="new", user_id="u", request=VIDEO, cost=8)
    made = store.commit(batch)["creations/new"].data or {}
    assert made["status"] == "pending"
    assert (made["progress"], made["media"], made["error"], made["refunded"]) == (
        0,
        [],
        None,
        False,
    )
    assert made["attempts"] == 0
    assert made["completed_at"] is None
    assert made["created_at"] == made["updated_at"]
    assert (made["user_id"], made["type"], made["cost"]) == ("u", "video", 8)
    assert made["request"] == document_of(VIDEO)
