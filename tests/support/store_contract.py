"""The promises of `shared.store.documents.Documents`, as checks any implementation must pass.

tests/unit/test_memory_store.py runs them on the in-memory store and
tests/integration/test_firestore_store.py on Firestore (the emulator), so the fast tests'
store behaves as the real one does. Each check gets a fresh store and a collection of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from shared.store.documents import (
    DOCUMENT_NAME,
    SERVER_TIME,
    Batch,
    Documents,
    LostRace,
    Query,
    Snapshot,
)

Check = Callable[[Documents, str], None]
T0 = dt.datetime(2031, 5, 1, 12, 0, tzinfo=dt.UTC)


def _create(store: Documents, path: str, data: dict[str, object]) -> Snapshot:
    batch = Batch()
    batch.create(path, data)
    return store.commit(batch)[path]


def reads_in_the_order_asked_and_reports_missing_documents(store: Documents, c: str) -> None:
    _create(store, f"{c}/b", {"n": 2})
    _create(store, f"{c}/a", {"n": 1})
    b, missing, a = store.read(f"{c}/b", f"{c}/none", f"{c}/a")
    assert (b.get("n"), a.get("n")) == (2, 1)
    assert not missing.exists
    assert missing.data is None
    assert missing.update_time is None
    assert missing.id == "none"


def a_document_id_firestore_reserves_reads_as_missing(store: Documents, c: str) -> None:
    # `__name__`-style ids cannot exist in Firestore; clients send them (a path, a clip), and
    # reading one must answer "no such document", like any other unknown id.
    _create(store, f"{c}/a", {"n": 1})
    a, reserved, short = store.read(f"{c}/a", f"{c}/__reserved__", f"{c}/__x__")
    assert a.get("n") == 1
    assert not reserved.exists
    assert not short.exists
    assert (reserved.id, short.id) == ("__reserved__", "__x__")


def a_commit_answers_what_a_read_then_finds(store: Documents, c: str) -> None:
    path = f"{c}/doc"
    made = _create(
        store,
        path,
        {"at": SERVER_TIME, "nested": {"at": SERVER_TIME, "n": 1}, "items": [{"x": 1}], "k": "v"},
    )
    (read,) = store.read(path)
    assert made == read
    assert isinstance(read.get("at"), dt.datetime)
    assert read.get("at") == read.get("nested")["at"]
    batch = Batch()
    batch.update(read, {"nested.n": 2, "later": SERVER_TIME, "k": None})
    updated = store.commit(batch)[path]
    (again,) = store.read(path)
    assert updated == again
    assert again.get("nested") == {"at": read.get("at"), "n": 2}  # the sibling field kept
    assert again.get("k") is None
    assert again.get("later") >= read.get("at")
    assert again.update_time is not None and read.update_time is not None
    assert again.update_time > read.update_time


def a_create_fails_if_the_document_exists_and_the_batch_writes_nothing(
    store: Documents, c: str
) -> None:
    _create(store, f"{c}/taken", {"n": 1})
    batch = Batch()
    batch.create(f"{c}/new", {"n": 2})
    batch.create(f"{c}/taken", {"n": 3})
    with pytest.raises(LostRace):
        store.commit(batch)
    new, taken = store.read(f"{c}/new", f"{c}/taken")
    assert not new.exists
    assert taken.get("n") == 1


def an_update_or_delete_from_a_stale_read_fails(store: Documents, c: str) -> None:
    path = f"{c}/doc"
    stale = _create(store, path, {"n": 1})
    fresh_batch = Batch()
    fresh_batch.update(stale, {"n": 2})
    fresh = store.commit(fresh_batch)[path]
    for write in ("update", "delete"):
        batch = Batch()
        if write == "update":
            batch.update(stale, {"n": 3})
        else:
            batch.delete(stale)
        with pytest.raises(LostRace):
            store.commit(batch)
    assert store.read(path)[0].get("n") == 2
    batch = Batch()
    batch.delete(fresh)
    assert not store.commit(batch)[path].exists
    assert not store.read(path)[0].exists
    gone = Batch()
    gone.update(fresh, {"n": 4})  # the document was deleted since this read
    with pytest.raises(LostRace):
        store.commit(gone)
    assert not store.read(path)[0].exists


def an_update_replaces_a_map_it_names_whole(store: Documents, c: str) -> None:
    path = f"{c}/doc"
    made = _create(store, path, {"m": {"a": 1, "b": 2}})
    batch = Batch()
    batch.update(made, {"m": {"c": 3}, "deep.er.path": "x"})
    store.commit(batch)
    (read,) = store.read(path)
    assert read.get("m") == {"c": 3}
    assert read.get("deep") == {"er": {"path": "x"}}


def queries_filter_order_page_and_skip_documents_lacking_a_field(store: Documents, c: str) -> None:
    for index in range(6):
        _create(
            store,
            f"{c}/d{index}",
            {"owner": "u" if index % 2 == 0 else "v", "t": T0 + dt.timedelta(minutes=index)},
        )
    _create(store, f"{c}/no-time", {"owner": "u"})
    newest = Query(
        c,
        equal=(("owner", "u"),),
        order=(("t", "DESCENDING"), (DOCUMENT_NAME, "DESCENDING")),
        limit=2,
    )
    first = store.query(newest)
    assert [s.id for s in first] == ["d4", "d2"]
    rest = store.query(
        Query(
            c,
            equal=newest.equal,
            order=newest.order,
            start_after=(first[-1].get("t"), first[-1].path),
            limit=2,
        )
    )
    assert [s.id for s in rest] == ["d0"]
    early = store.query(
        Query(
            c,
            before=("t", T0 + dt.timedelta(minutes=3)),
            order=(("t", "ASCENDING"),),
            limit=10,
        )
    )
    assert [s.id for s in early] == ["d0", "d1", "d2"]


def equality_compares_types_as_firestore_does(store: Documents, c: str) -> None:
    _create(store, f"{c}/false", {"refunded": False})
    _create(store, f"{c}/zero", {"refunded": 0})
    _create(store, f"{c}/none", {"refunded": None})
    found = store.query(Query(c, equal=(("refunded", False),)))
    assert [s.id for s in found] == ["false"]


def a_range_filter_skips_other_types(store: Documents, c: str) -> None:
    _create(store, f"{c}/time", {"lease": T0})
    _create(store, f"{c}/cleared", {"lease": None})
    found = store.query(
        Query(c, before=("lease", T0 + dt.timedelta(seconds=1)), order=(("lease", "ASCENDING"),))
    )
    assert [s.id for s in found] == ["time"]


def a_collection_lists_its_own_documents_by_id(store: Documents, c: str) -> None:
    _create(store, f"{c}/b", {"n": 2})
    _create(store, f"{c}/a", {"n": 1})
    _create(store, f"{c}/a/sub/x", {"n": 3})
    assert [s.id for s in store.read_collection(c)] == ["a", "b"]
    assert [s.id for s in store.read_collection(f"{c}/a/sub")] == ["x"]


CHECKS: dict[str, Check] = {
    check.__name__: check
    for check in (
        reads_in_the_order_asked_and_reports_missing_documents,
        a_document_id_firestore_reserves_reads_as_missing,
        a_commit_answers_what_a_read_then_finds,
        a_create_fails_if_the_document_exists_and_the_batch_writes_nothing,
        an_update_or_delete_from_a_stale_read_fails,
        an_update_replaces_a_map_it_names_whole,
        queries_filter_order_page_and_skip_documents_lacking_a_field,
        equality_compares_types_as_firestore_does,
        a_range_filter_skips_other_types,
        a_collection_lists_its_own_documents_by_id,
    )
}
