"""The Firestore adapter keeps the port's promises (the same checks run on the in-memory store),
and turns Firestore's failures into the port's errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared.core.errors import StoreBusy
from shared.core.settings import Settings
from shared.store.documents import Batch
from shared.store.firestore import FirestoreDocuments
from tests.support.store_contract import CHECKS, Check


@pytest.fixture
def store(db: firestore.Client, stack: Settings) -> FirestoreDocuments:
    return FirestoreDocuments(db, stack)


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_firestore_store_keeps_the_contract(store: FirestoreDocuments, check: Check) -> None:
    check(store, "things")


@pytest.fixture
def commits_fail(db: firestore.Client) -> Iterator[None]:
    api = db._firestore_api
    original = api.commit

    def commit(*args: Any, **kwargs: Any) -> Any:
        raise gexc.ServiceUnavailable("injected")

    api.commit = commit
    yield
    api.commit = original


def test_an_unavailable_firestore_is_store_busy(
    store: FirestoreDocuments, commits_fail: None
) -> None:
    batch = Batch()
    batch.create("things/a", {"n": 1})
    with pytest.raises(StoreBusy, match="unavailable"):
        store.commit(batch)
