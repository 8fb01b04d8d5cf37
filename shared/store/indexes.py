"""The Firestore queries the code runs, and the composite index each one needs.

A declaration, read by tests only: Terraform must create exactly these indexes
(terraform/firestore.tf), and the queries `CreationReader`, `Sweeper` and the submit limits
(`shared.intake.limits`) really build must be these shapes (tests/static/test_firestore_indexes.py
captures them). A new query means a new
entry here, and the tests then ask for its index in Terraform.

A query's shape is what decides its index: the fields it filters with `==` (in any order),
then the fields it orders by, in order, ending with the document name (Firestore appends
`__name__` in the direction of the last ordering when the query does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from shared.store import paths
from shared.store.documents import DOCUMENT_NAME, Direction

ASC: Final = "ASCENDING"
DESC: Final = "DESCENDING"


@dataclass(frozen=True)
class QueryShape:
    """One query: its collection, equality-filtered fields and orderings (range field first)."""

    collection: str
    equalities: frozenset[str]
    orders: tuple[tuple[str, Direction], ...]

    def normalized(self) -> QueryShape:
        """The same query with Firestore's implicit final ordering on the document name."""
        orders = self.orders
        if not orders or orders[-1][0] != DOCUMENT_NAME:
            last: Direction = orders[-1][1] if orders else ASC
            orders = (*orders, (DOCUMENT_NAME, last))
        return QueryShape(self.collection, self.equalities, orders)

    def needs_composite_index(self) -> bool:
        """False when Firestore's automatic single-field indexes serve the query."""
        ordered = {field for field, _ in self.orders if field != DOCUMENT_NAME}
        # Equality-only queries are served by merging single-field indexes.
        return bool(ordered) and len(self.equalities | ordered) > 1

    def served_by(self, index: Sequence[tuple[str, Direction]]) -> bool:
        """Whether a composite index with these fields (in order) serves the query: the
        equality fields first, in any order and direction, then exactly the orderings."""
        orders = self.normalized().orders
        count = len(self.equalities)
        head, tail = index[:count], tuple(index[count:])
        return {field for field, _ in head} == self.equalities and tail == orders


@dataclass(frozen=True)
class DeclaredQuery:
    name: str  # where the code runs it
    shape: QueryShape


def _query(name: str, equalities: set[str], *orders: tuple[str, Direction]) -> DeclaredQuery:
    return DeclaredQuery(name, QueryShape(paths.CREATIONS, frozenset(equalities), orders))


QUERIES: Final[tuple[DeclaredQuery, ...]] = (
    _query(
        "CreationReader.list_for_user: a user's creations, newest first",
        {"user_id"},
        ("created_at", DESC),
        (DOCUMENT_NAME, DESC),
    ),
    _query(
        "CreationReader.list_for_user(status=...): a user's creations in one status",
        {"user_id", "status"},
        ("created_at", DESC),
        (DOCUMENT_NAME, DESC),
    ),
    _query(
        "limits.check_active: a user's pending and processing creations (the statuses after"
        " `failed`; bounded)",
        {"user_id"},
        ("status", ASC),
        (DOCUMENT_NAME, ASC),
    ),
    _query(
        "Sweeper: creations in a status since before a cutoff (pending)",
        {"status"},
        ("updated_at", ASC),
        (DOCUMENT_NAME, ASC),
    ),
    _query(
        "Sweeper: processing creations whose lease expired",
        {"status"},
        ("lease_expires_at", ASC),
        (DOCUMENT_NAME, ASC),
    ),
    _query(
        "Sweeper: failed or canceled creations not refunded since before a cutoff",
        {"status", "refunded"},
        ("updated_at", ASC),
        (DOCUMENT_NAME, ASC),
    ),
    _query(
        "Sweeper: creations whose DELETE began (single-field index; age checked in code)",
        {"deleting"},
        (DOCUMENT_NAME, ASC),
    ),
)


def queries_needing_an_index() -> list[DeclaredQuery]:
    return [query for query in QUERIES if query.shape.needs_composite_index()]
