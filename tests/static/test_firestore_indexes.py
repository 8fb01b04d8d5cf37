"""Every Firestore query the code runs has its composite index in Terraform.

Three links, each checked: the queries the code really builds (captured from `CreationReader`
and `Sweeper` with a client that never connects) are the ones declared in `shared/store/indexes.py`;
each declared query that needs a composite index has one in terraform/firestore.tf; and
Terraform declares no index that no query uses.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.aggregation import AggregationQuery
from google.cloud.firestore_v1.base_aggregation import AggregationResult
from google.cloud.firestore_v1.query import Query
from google.cloud.firestore_v1.types import StructuredQuery

from shared.core.settings import Settings
from shared.creations.claims import ClaimStore
from shared.creations.model import Job
from shared.creations.reading import CreationReader, encode_cursor
from shared.creations.status_events import SilentAnnouncer
from shared.intake.limits import check_active
from shared.money.ledger import Ledger
from shared.money.refunds import Refunds
from shared.store.documents import DOCUMENT_NAME, Direction
from shared.store.firestore import FirestoreDocuments
from shared.store.indexes import QUERIES, QueryShape, queries_needing_an_index
from shared.work.sweeper import Sweeper
from tests.support.paths import REPO
from tests.support.terraform import TERRAFORM_DIR, Module

# Where the code asks the store for a query; each is exercised below. A new file here needs a
# new capture. Only the Firestore adapter turns them into Firestore queries.
QUERY_SITES = {"shared/creations/reading.py", "shared/work/sweeper.py", "shared/intake/limits.py"}
ADAPTER = "shared/store/firestore.py"
_PORT_QUERY = re.compile(r"\bQuery\(")
_FIRESTORE_QUERY_CALL = re.compile(r"\.(where|order_by|collection_group|start_after|start_at)\(")

_EQUALITY = StructuredQuery.FieldFilter.Operator.EQUAL
_DIRECTIONS: dict[int, Direction] = {
    StructuredQuery.Direction.ASCENDING: "ASCENDING",
    StructuredQuery.Direction.DESCENDING: "DESCENDING",
}


def shape_of(query: Query) -> QueryShape:
    """The shape (collection, == fields, orderings) of a query the client library built."""
    proto = query._to_protobuf()
    (source,) = proto.from_
    assert not source.all_descendants, "collection group queries need their own index scope"
    filters = (
        [f.field_filter for f in proto.where.composite_filter.filters]
        if proto.where.composite_filter.filters
        else [proto.where.field_filter]
        if proto.where.field_filter.field.field_path
        else []
    )
    equalities = frozenset(f.field.field_path for f in filters if f.op == _EQUALITY)
    ranges = [f.field.field_path for f in filters if f.op != _EQUALITY]
    orders = tuple((o.field.field_path, _DIRECTIONS[o.direction]) for o in proto.order_by)
    for field in ranges:  # Firestore orders by a range field first if the query does not
        if field not in [name for name, _ in orders]:
            orders = ((field, "ASCENDING"), *orders)
    return QueryShape(source.collection_id, equalities, orders)


class _NoPublisher:
    def publish(self, job: Job, *, topic: str) -> str:
        raise AssertionError("nothing is published when the queries find nothing")


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[QueryShape]]:
    """Every query streamed or counted while the test runs; each finds nothing."""
    shapes: list[QueryShape] = []

    def stream(self: Query, *args: Any, **kwargs: Any) -> Iterator[Any]:
        shapes.append(shape_of(self))
        return iter(())

    def count_get(self: AggregationQuery, *args: Any, **kwargs: Any) -> list[list[Any]]:
        shapes.append(shape_of(self._nested_query))
        return [[AggregationResult(alias="count", value=0)]]

    monkeypatch.setattr(Query, "stream", stream)
    monkeypatch.setattr(AggregationQuery, "get", count_get)
    yield shapes


@pytest.fixture
def db() -> firestore.Client:
    # Never connects: building queries is local, and `stream` is replaced.
    return firestore.Client(project="demo-indexes", credentials=AnonymousCredentials())


def code_queries(db: firestore.Client, captured: list[QueryShape]) -> set[QueryShape]:
    settings = Settings()
    documents = FirestoreDocuments(db, settings)
    store = CreationReader(documents)
    cursor = encode_cursor(dt.datetime(2030, 1, 1, tzinfo=dt.UTC), "c1")
    for status in (None, "draft"):
        for page in (None, cursor):
            store.list_for_user("alice", status=status, limit=10, cursor=page)
    check_active(documents, "alice", settings)
    ledger = Ledger(documents, settings)
    Sweeper(
        documents,
        settings,
        claims=ClaimStore(documents, settings),
        refunds=Refunds(documents, settings, ledger),
        publisher=_NoPublisher(),
        announcer=SilentAnnouncer(),
        finish_delete=lambda creation_id: False,
    ).sweep()
    assert captured, "no query was captured"
    return {shape.normalized() for shape in captured}


def terraform_indexes() -> dict[str, tuple[str, tuple[tuple[str, Direction], ...]]]:
    root = Module.load(TERRAFORM_DIR)
    found = {}
    for name, body in root.resources_of("google_firestore_index").items():
        assert body.get("query_scope", "COLLECTION") == "COLLECTION", name
        fields = tuple((f["field_path"], f["order"]) for f in body["fields"])
        found[name] = (body["collection"], fields)
    return found


def test_the_code_runs_exactly_the_declared_queries(
    db: firestore.Client, captured: list[QueryShape]
) -> None:
    ran = code_queries(db, captured)
    declared = {query.shape.normalized() for query in QUERIES}
    assert ran - declared == set(), (
        f"queries missing from shared/store/indexes.py: {ran - declared}"
    )
    assert declared - ran == set(), f"declared but never run: {declared - ran}"


def _files_matching(pattern: re.Pattern[str]) -> set[str]:
    return {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "shared").rglob("*.py")
        if pattern.search(path.read_text())
    }


def test_only_the_known_sites_build_queries() -> None:
    sites = _files_matching(_PORT_QUERY) - {"shared/store/documents.py"}
    assert sites <= QUERY_SITES, (
        f"{sorted(sites - QUERY_SITES)} build queries: declare them in "
        "shared/store/indexes.py and capture them in this test"
    )
    assert _files_matching(_FIRESTORE_QUERY_CALL) <= {ADAPTER}, (
        "only the Firestore adapter may build Firestore queries"
    )


def test_every_declared_query_has_its_index_in_terraform() -> None:
    indexes = terraform_indexes()
    for query in queries_needing_an_index():
        serving = [
            name
            for name, (collection, fields) in indexes.items()
            if collection == query.shape.collection and query.shape.served_by(fields)
        ]
        assert serving, f"no Terraform index serves: {query.name} ({query.shape})"


def test_terraform_declares_no_unused_index() -> None:
    for name, (collection, fields) in terraform_indexes().items():
        assert fields[-1][0] == DOCUMENT_NAME, f"{name}: end with __name__ as Firestore does"
        users = [
            query.name
            for query in QUERIES
            if query.shape.collection == collection and query.shape.served_by(fields)
        ]
        assert users, f"google_firestore_index.{name} serves no query of shared/store/indexes.py"


def test_served_by_follows_firestore_rules() -> None:
    shape = QueryShape("c", frozenset({"a", "b"}), (("t", "DESCENDING"),))
    assert shape.served_by(
        [("b", "ASCENDING"), ("a", "ASCENDING"), ("t", "DESCENDING"), (DOCUMENT_NAME, "DESCENDING")]
    )
    assert not shape.served_by(
        [("a", "ASCENDING"), ("t", "DESCENDING"), (DOCUMENT_NAME, "DESCENDING")]
    )
    assert not shape.served_by(
        [("a", "ASCENDING"), ("b", "ASCENDING"), ("t", "ASCENDING"), (DOCUMENT_NAME, "ASCENDING")]
    )
    assert not QueryShape("c", frozenset({"a"}), ()).needs_composite_index()
    assert not QueryShape("c", frozenset({"a", "b"}), ()).needs_composite_index()
    assert not QueryShape("c", frozenset(), (("t", "ASCENDING"),)).needs_composite_index()
