"""`Documents` in memory, for fast tests of the logic written against the port.

It keeps the port's promises (tests/support/store_contract.py holds it and the Firestore
adapter to the same checks) and adds ways to break them on purpose, as Firestore can:

- `unavailable(n)`: the next `n` calls raise `StoreBusy` (Firestore did not answer);
- `lose_next_commit_answer(resent=...)`: the next commit is applied and its answer lost on the
  way back: the caller gets `StoreBusy`, or, with `resent`, `LostRace` (the client library
  sent the commit again and the resend ran into the first one's own writes);
- `before_commit(hook)`: `hook(batch)` runs just before each commit is checked, so a test can
  slip in another writer's commit (a lost race) at exactly that moment.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from shared.core.errors import StoreBusy
from shared.store.documents import (
    DOCUMENT_NAME,
    Batch,
    Create,
    Delete,
    LostRace,
    Query,
    Snapshot,
    Stamped,
    Write,
    server_time_paths,
    written,
)


class MemoryDocuments:
    """`clock` is the store's own: what `SERVER_TIME` becomes (real time unless a test sets it).
    Commit times strictly increase, as update times must."""

    def __init__(self, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._docs: dict[str, Snapshot] = {}
        self._lock = threading.RLock()
        self._clock = clock or _now
        self._time = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._unavailable = 0
        self._lose_answer: str | None = None
        self._unavailable_after_lost_answer = 0
        self._hooks: list[Callable[[Batch], object]] = []
        self.commits = 0  # commits applied, for tests that count writes
        self.reads = 0  # documents read (a read of three counts three)

    # --- faults -------------------------------------------------------------------------------

    def unavailable(self, calls: int = 1) -> None:
        self._unavailable += calls

    def recover(self) -> None:
        """Answer every call again."""
        self._unavailable = 0

    def lose_next_commit_answer(self, *, resent: bool = False, then_unavailable: int = 0) -> None:
        """The next commit is applied but its caller hears `StoreBusy` (or, `resent`, the
        `LostRace` of the client library's resend running into it); then the store answers
        none of the next `then_unavailable` calls."""
        self._lose_answer = "resent" if resent else "busy"
        self._unavailable_after_lost_answer = then_unavailable

    def before_commit(self, hook: Callable[[Batch], object]) -> None:
        self._hooks.append(hook)

    # --- the port -----------------------------------------------------------------------------

    def read(self, *paths: str) -> list[Snapshot]:
        with self._lock:
            self._answer_or_fail("read")
            self.reads += len(paths)
            return [self._copy(self._docs.get(path) or Snapshot(path, None)) for path in paths]

    def commit(self, batch: Batch) -> dict[str, Snapshot]:
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            hook(batch)
        with self._lock:
            self._answer_or_fail("commit")
            for write in batch.writes:
                self._check(write)
            self._time = max(self._time + dt.timedelta(microseconds=1), self._clock())
            out: dict[str, Snapshot] = {}
            for write in batch.writes:
                paths = server_time_paths(write)
                stamped = Stamped(self._time, dict.fromkeys(paths, self._time))
                after = written(write, stamped)
                if after.exists:
                    self._docs[write.path] = self._copy(after)
                else:
                    self._docs.pop(write.path, None)
                out[write.path] = self._copy(after)
            self.commits += 1
            lost, self._lose_answer = self._lose_answer, None
            if lost:
                self._unavailable += self._unavailable_after_lost_answer
                self._unavailable_after_lost_answer = 0
            if lost == "resent":
                raise LostRace("AlreadyExists: the resent commit found its own writes")
            if lost == "busy":
                raise StoreBusy("the store is unavailable (commit): the answer was lost")
            return out

    def query(self, query: Query) -> list[Snapshot]:
        with self._lock:
            self._answer_or_fail("query")
            found = [s for s in self._in(query.collection) if _matches(s, query)]
        order = list(query.order)
        if not order or order[-1][0] != DOCUMENT_NAME:
            last = order[-1][1] if order else "ASCENDING"
            order.append((DOCUMENT_NAME, last))
        for name, direction in reversed(order):  # stable sorts, last key first

            def by(snapshot: Snapshot, field: str = name) -> Any:
                return _value(snapshot, field)

            found.sort(key=by, reverse=direction == "DESCENDING")
        if query.start_after is not None:
            cursor = tuple(query.start_after)
            found = [s for s in found if _after(s, query.order, cursor)]
        if query.limit is not None:
            found = found[: query.limit]
        return [self._copy(s) for s in found]

    def count(self, query: Query) -> int:
        return len(self.query(query))

    def read_collection(self, collection: str) -> list[Snapshot]:
        with self._lock:
            self._answer_or_fail("read_collection")
            return [self._copy(s) for s in sorted(self._in(collection), key=lambda s: s.id)]

    # --- test helpers -------------------------------------------------------------------------

    def data(self, path: str) -> dict[str, Any] | None:
        """The stored document at `path` (a copy), or None."""
        found = self._docs.get(path)
        return copy.deepcopy(found.data) if found is not None else None

    def creation(self, creation_id: str) -> dict[str, Any]:
        """The stored `creations/{creation_id}` (a copy), `{}` when there is none."""
        return self.data(f"creations/{creation_id}") or {}

    def paths(self) -> list[str]:
        return sorted(self._docs)

    # --- helpers ------------------------------------------------------------------------------

    def _answer_or_fail(self, what: str) -> None:
        if self._unavailable:
            self._unavailable -= 1
            raise StoreBusy(f"the store is unavailable ({what}): injected")

    def _check(self, write: Write) -> None:
        current = self._docs.get(write.path)
        if isinstance(write, Create):
            if current is not None:
                raise LostRace(f"AlreadyExists: {write.path}")
            return
        if current is None or current.update_time != write.before.update_time:
            kind = "delete" if isinstance(write, Delete) else "update"
            raise LostRace(f"FailedPrecondition: {write.path} changed since it was read ({kind})")

    def _in(self, collection: str) -> list[Snapshot]:
        return [s for path, s in self._docs.items() if path.rsplit("/", 1)[0] == collection]

    @staticmethod
    def _copy(snapshot: Snapshot) -> Snapshot:
        return Snapshot(snapshot.path, copy.deepcopy(snapshot.data), snapshot.update_time)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_MISSING = object()


def _value(snapshot: Snapshot, name: str) -> Any:
    if name == DOCUMENT_NAME:
        return snapshot.path
    return (snapshot.data or {}).get(name, _MISSING)


def _same(a: Any, b: Any) -> bool:
    # Firestore compares by type first: `false` is not `0`, and `1` is not `true`.
    return type(a) is type(b) and a == b


def _matches(snapshot: Snapshot, query: Query) -> bool:
    for name, wanted in query.equal:
        if not _same(_value(snapshot, name), wanted):
            return False
    if query.before is not None:
        name, bound = query.before
        value = _value(snapshot, name)
        if value is _MISSING or type(value) is not type(bound) or not value < bound:
            return False
    return all(_value(snapshot, name) is not _MISSING for name, _ in query.order)


def _after(snapshot: Snapshot, order: tuple[tuple[str, str], ...], cursor: tuple[Any, ...]) -> bool:
    """Whether `snapshot` sorts strictly after `cursor` in `order`."""
    for (name, direction), bound in zip(order, cursor, strict=True):
        value = _value(snapshot, name)
        if value == bound:
            continue
        return bool(value > bound) if direction == "ASCENDING" else bool(value < bound)
    return False
