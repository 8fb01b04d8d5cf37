"""The document store every decision of the suite is written against: a port, Firestore behind it.

The ledger, claims, submissions, refunds and the sweeper read `Snapshot`s and commit `Batch`es
through `Documents`. `shared.store.firestore.FirestoreDocuments` implements it on Firestore;
the fast tests implement it in memory (tests/support/memory_store.py), and one set of contract
checks holds both to the same behaviour (tests/support/store_contract.py).

What a commit promises, in both:
- it is atomic: every write of the batch lands, or none does;
- `Batch.create` fails if the document exists; `Batch.update` and `Batch.delete` fail if the
  document changed (or vanished) since the snapshot they were given was read. Either failure is
  `LostRace`: another writer got there first, so re-read and decide again
  (`shared.store.optimistic.run_optimistic`);
- `SERVER_TIME` anywhere in a written value becomes the store's clock at the commit;
- it answers with each written document as now stored, server times filled in, so callers
  need not read back what they just wrote.
A store that does not answer raises `StoreBusy` (retryable; for a commit, its writes may or may
not have landed: look before assuming either).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

Direction = Literal["ASCENDING", "DESCENDING"]
DOCUMENT_NAME: Final = "__name__"  # orders (and pages) by document path
# A creation's `status`: written only by the state machine (`shared.creations.lifecycle`), which
# says so with `moves_status=True`; any other write naming it is refused (see `Batch`).
STATUS_FIELD: Final = "status"


class ServerTime:
    """The sentinel type of `SERVER_TIME`."""

    def __repr__(self) -> str:
        return "SERVER_TIME"


SERVER_TIME: Final = ServerTime()


class LostRace(Exception):
    """A guarded write found the document changed (or created) by someone else since it was read."""


@dataclass(frozen=True)
class Snapshot:
    """One document as read (or as written): `data` is None when it does not exist."""

    path: str
    data: dict[str, Any] | None
    update_time: dt.datetime | None = None

    @property
    def exists(self) -> bool:
        return self.data is not None

    @property
    def id(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def get(self, name: str, default: Any = None) -> Any:
        """A top-level field, or `default` when the field (or the document) is missing."""
        return default if self.data is None else self.data.get(name, default)


@dataclass(frozen=True)
class Create:
    path: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Update:
    """Set `fields` (keys are field paths: `checkpoint.veo_operation`) if `before` still holds."""

    before: Snapshot
    fields: dict[str, Any]

    @property
    def path(self) -> str:
        return self.before.path


@dataclass(frozen=True)
class Delete:
    """Delete the document if `before` still holds."""

    before: Snapshot

    @property
    def path(self) -> str:
        return self.before.path


Write = Create | Update | Delete


class Batch:
    """Writes to commit together, at most one per document (so each is guarded on its own).

    A write that sets `status` must say `moves_status=True`, which only the state machine does
    (tests/static/test_status_writes.py holds every other module to that), and one that says
    so must set it.
    """

    def __init__(self) -> None:
        self._writes: dict[str, Write] = {}

    def create(self, path: str, data: Mapping[str, Any], *, moves_status: bool = False) -> None:
        _check_status(path, data, moves_status)
        self._add(Create(path, dict(data)))

    def update(
        self, before: Snapshot, fields: Mapping[str, Any], *, moves_status: bool = False
    ) -> None:
        if not before.exists or before.update_time is None:
            raise ValueError(f"{before.path}: only a document that was read can be updated")
        _check_status(before.path, fields, moves_status)
        self._add(Update(before, dict(fields)))

    def delete(self, before: Snapshot) -> None:
        if not before.exists or before.update_time is None:
            raise ValueError(f"{before.path}: only a document that was read can be deleted")
        self._add(Delete(before))

    @property
    def writes(self) -> list[Write]:
        return list(self._writes.values())

    def __bool__(self) -> bool:
        return bool(self._writes)

    def _add(self, write: Write) -> None:
        if write.path in self._writes:
            raise ValueError(f"{write.path}: one write per document and batch")
        self._writes[write.path] = write


def _check_status(path: str, fields: Mapping[str, Any], moves_status: bool) -> None:
    if (STATUS_FIELD in fields) != moves_status:
        raise ValueError(
            f"{path}: `status` is written by the state machine (shared.creations.lifecycle) "
            "and only by it"
        )


@dataclass(frozen=True)
class Query:
    """One query over a collection's documents (not its subcollections').

    Filters: each `equal` pair must match exactly; `before` is `field < value`. Results are in
    `order` (then by document path, in the last order's direction), after the document whose
    values for the `order` fields are `start_after`, `limit` at most. A document lacking a
    filtered or ordered field is not a result.
    """

    collection: str
    equal: tuple[tuple[str, Any], ...] = ()
    before: tuple[str, Any] | None = None
    order: tuple[tuple[str, Direction], ...] = ()
    start_after: tuple[Any, ...] | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.start_after is not None and len(self.start_after) != len(self.order):
            raise ValueError("start_after needs one value per order field")
        if self.before is not None and (not self.order or self.order[0][0] != self.before[0]):
            raise ValueError("a range filter's field must be the first order")


class Documents(Protocol):
    """The port (see the module docstring)."""

    def read(self, *paths: str) -> list[Snapshot]:
        """The documents at `paths`, in that order, in one round trip."""
        ...

    def commit(self, batch: Batch) -> dict[str, Snapshot]:
        """Apply `batch` atomically; each written document (by path) as now stored."""
        ...

    def query(self, query: Query) -> list[Snapshot]: ...

    def count(self, query: Query) -> int:
        """How many documents `query` matches (`limit` at most), without reading them: Firestore
        bills a count as one read per 1000 index entries it passes, not one per document."""
        ...

    def read_collection(self, collection: str) -> list[Snapshot]:
        """Every document of a collection, by document id."""
        ...


# --- what a write leaves behind (pure; both stores use it) ------------------------------------


FieldPath = tuple[str, ...]


@dataclass(frozen=True)
class Stamped:
    """What a store did with one write: when, and the values it gave the `SERVER_TIME`s."""

    update_time: dt.datetime
    server_values: dict[FieldPath, Any] = field(default_factory=dict)


def server_time_paths(write: Write) -> list[FieldPath]:
    """Where `SERVER_TIME` stands in a write's values, as sorted field paths (update keys split
    at their dots). Firestore answers a write's server values in this order."""
    if isinstance(write, Delete):
        return []
    values = write.data if isinstance(write, Create) else write.fields
    found: list[FieldPath] = []
    for key, value in values.items():
        prefix = tuple(key.split(".")) if isinstance(write, Update) else (key,)
        found.extend(_sentinels(value, prefix))
    return sorted(found)


def _sentinels(value: Any, prefix: FieldPath) -> Iterator[FieldPath]:
    if value is SERVER_TIME:
        yield prefix
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _sentinels(item, (*prefix, key))


def written(write: Write, stamped: Stamped) -> Snapshot:
    """The document as `write` left it."""
    if isinstance(write, Delete):
        return Snapshot(write.path, None, None)
    if isinstance(write, Create):
        data: dict[str, Any] = {}
        for key, value in write.data.items():
            data[key] = _resolved(value, (key,), stamped.server_values)
        return Snapshot(write.path, data, stamped.update_time)
    # Copied along the written paths only: the maps a write does not reach are shared with the
    # snapshot it was staged on, which no code changes (snapshots are values). A deep copy of
    # the whole document was a few ms of CPU per commit.
    data = dict(write.before.data or {})
    for key, value in write.fields.items():
        path = tuple(key.split("."))
        target = data
        for part in path[:-1]:
            child = target.get(part)
            child = dict(child) if isinstance(child, dict) else {}
            target[part] = child
            target = child
        target[path[-1]] = _resolved(value, path, stamped.server_values)
    return Snapshot(write.path, data, stamped.update_time)


def _resolved(value: Any, path: FieldPath, server_values: Mapping[FieldPath, Any]) -> Any:
    if value is SERVER_TIME:
        return server_values[path]
    if isinstance(value, Mapping):
        return {k: _resolved(v, (*path, k), server_values) for k, v in value.items()}
    if isinstance(value, list):
        return [copy.deepcopy(item) for item in value]
    return value
