"""The in-memory store keeps the port's promises (the same checks run on Firestore), and its
fault switches do what the fast tests rely on."""

from __future__ import annotations

import pytest

from shared.core.errors import StoreBusy
from shared.store.documents import Batch, LostRace, Snapshot
from tests.support.memory_store import MemoryDocuments
from tests.support.store_contract import CHECKS, Check


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_memory_store_keeps_the_contract(check: Check) -> None:
    check(MemoryDocuments(), "things")


def test_a_batch_takes_one_write_per_document() -> None:
    batch = Batch()
    batch.create("c/a", {})
    with pytest.raises(ValueError, match="one write per document"):
        batch.create("c/a", {})
    with pytest.raises(ValueError, match="only a document that was read"):
        batch.update(Snapshot("c/b", None), {"n": 1})


def test_an_injected_outage_fails_calls_then_passes() -> None:
    store = MemoryDocuments()
    store.unavailable(2)
    for _ in range(2):
        with pytest.raises(StoreBusy):
            store.read("c/a")
    assert not store.read("c/a")[0].exists


def test_a_lost_answer_still_applies_the_commit() -> None:
    store = MemoryDocuments()
    store.lose_next_commit_answer()
    batch = Batch()
    batch.create("c/a", {"n": 1})
    with pytest.raises(StoreBusy):
        store.commit(batch)
    assert store.data("c/a") == {"n": 1}


def test_a_write_slipped_in_before_a_commit_wins_the_race() -> None:
    store = MemoryDocuments()
    batch = Batch()
    batch.create("c/a", {"n": 1})
    first = store.commit(batch)["c/a"]

    def rival(_batch: Batch) -> None:
        other = Batch()
        other.update(first, {"n": 2})
        store.commit(other)

    store.before_commit(rival)
    mine = Batch()
    mine.update(first, {"n": 3})
    with pytest.raises(LostRace):
        store.commit(mine)
    assert store.data("c/a") == {"n": 2}
