"""A `Documents` that counts what passes through it, for tests that hold code to a budget of
Firestore operations (documents read, documents written, commits), the units Firestore bills.

It wraps another store (usually `tests.support.memory_store.MemoryDocuments`, which keeps the
faults); only what is asked through this wrapper is counted, so a test can set up its world on
the inner store without spending the budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.store.documents import Batch, Documents, Query, Snapshot


@dataclass(frozen=True)
class Tally:
    reads: int = 0  # documents read: each path of a read, each result of a query (one at least)
    writes: int = 0  # documents written by the commits sent (applied or not)
    commits: int = 0  # commits sent

    def __sub__(self, other: Tally) -> Tally:
        return Tally(
            self.reads - other.reads, self.writes - other.writes, self.commits - other.commits
        )


@dataclass
class CountingDocuments:
    inner: Documents
    tally: Tally = field(default_factory=Tally)
    calls: list[str] = field(default_factory=list)  # what was asked, in order (for messages)

    def read(self, *paths: str) -> list[Snapshot]:
        self._count(f"read {', '.join(paths)}", reads=len(paths))
        return self.inner.read(*paths)

    def commit(self, batch: Batch) -> dict[str, Snapshot]:
        written = ", ".join(f"{type(w).__name__.lower()} {w.path}" for w in batch.writes)
        self._count(f"commit {written}", writes=len(batch.writes), commits=1)
        return self.inner.commit(batch)

    def query(self, query: Query) -> list[Snapshot]:
        found = self.inner.query(query)
        self._count(f"query {query.collection}", reads=max(1, len(found)))
        return found

    def count(self, query: Query) -> int:
        self._count(f"count {query.collection}", reads=1)  # one read per 1000 entries
        return self.inner.count(query)

    def read_collection(self, collection: str) -> list[Snapshot]:
        found = self.inner.read_collection(collection)
        self._count(f"read_collection {collection}", reads=max(1, len(found)))
        return found

    def _count(self, call: str, *, reads: int = 0, writes: int = 0, commits: int = 0) -> None:
        now = self.tally
        self.tally = Tally(now.reads + reads, now.writes + writes, now.commits + commits)
        self.calls.append(call)
