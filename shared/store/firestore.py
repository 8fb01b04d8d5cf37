"""`Documents` on Firestore: the only module that talks to the Firestore client library.

Every call carries the one retry and timeout policy (`STORE_TIMEOUT_SECONDS`, retries
included; `shared.core.calls`), and what the library raises becomes the port's errors: a
transient failure is `StoreBusy`, a failed precondition or an existing document on commit is
`LostRace`. Anything else (permission denied, a malformed request) is a real answer about the
deployment and passes through unchanged.

Why batches with preconditions and not transactions: see `shared.store.optimistic`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.core.calls import TRANSIENT_ERRORS, bounded_retry
from shared.core.errors import StoreBusy
from shared.core.settings import Settings
from shared.store.documents import (
    DOCUMENT_NAME,
    SERVER_TIME,
    Batch,
    Create,
    LostRace,
    Query,
    Snapshot,
    Stamped,
    Update,
    server_time_paths,
    written,
)

# Another writer got there first: the document changed or vanished since it was read
# (`update_time` precondition, NotFound), or a `create` found it existing.
_LOST_RACE = (
    gexc.FailedPrecondition,
    gexc.AlreadyExists,
    gexc.Conflict,
    gexc.Aborted,
    gexc.NotFound,
)
_RESERVED_ID = re.compile(r"__.*__", re.DOTALL)
_DIRECTIONS = {"ASCENDING": firestore.Query.ASCENDING, "DESCENDING": firestore.Query.DESCENDING}


class FirestoreDocuments:
    def __init__(self, db: firestore.Client, settings: Settings) -> None:
        self._db = db
        self._timeout = settings.store_timeout_seconds
        self._retry = bounded_retry(settings.store_timeout_seconds)

    def read(self, *paths: str) -> list[Snapshot]:
        # Firestore reserves ids of the form `__...__` and refuses to read them
        # (InvalidArgument); no document can have one, so it reads as missing. Ids come from
        # clients (a path, a reel's clips), so asking would turn their typo into an error.
        asked = [path for path in paths if not _RESERVED_ID.fullmatch(path.rsplit("/", 1)[-1])]
        refs = [self._db.document(path) for path in asked]
        found = {path: Snapshot(path, None) for path in paths}
        if refs:
            try:
                # get_all answers in the server's order, and leaves nothing out (a missing
                # document is a snapshot that does not exist).
                found.update(
                    (snapshot.reference.path, _snapshot(snapshot))
                    for snapshot in self._db.get_all(refs, retry=self._retry, timeout=self._timeout)
                )
            except TRANSIENT_ERRORS as exc:
                raise _busy("read", exc) from exc
        return [found[path] for path in paths]

    def commit(self, batch: Batch) -> dict[str, Snapshot]:
        writes = batch.writes
        pending = self._db.batch()
        for write in writes:
            ref = self._db.document(write.path)
            if isinstance(write, Create):
                pending.create(ref, _encoded(write.data))
            elif isinstance(write, Update):
                pending.update(ref, _encoded(write.fields), option=self._unchanged(write.before))
            else:
                pending.delete(ref, option=self._unchanged(write.before))
        try:
            results = pending.commit(retry=self._retry, timeout=self._timeout)
        except _LOST_RACE as exc:
            raise LostRace(f"{type(exc).__name__}: {exc.message}") from exc
        except TRANSIENT_ERRORS as exc:
            raise _busy("commit", exc) from exc
        out: dict[str, Snapshot] = {}
        for write, result in zip(writes, results, strict=True):
            values = [_helpers.decode_value(v, self._db) for v in result.transform_results]
            paths = server_time_paths(write)
            if len(values) != len(paths):
                # Never seen; if the library ever answers otherwise, the commit has landed
                # all the same: read the document rather than fail a done write.
                (out[write.path],) = self.read(write.path)
                continue
            stamped = Stamped(
                # A delete's result has no update time; the commit's stands in.
                update_time=result.update_time or pending.commit_time or dt.datetime.now(dt.UTC),
                server_values=dict(zip(paths, values, strict=True)),
            )
            out[write.path] = written(write, stamped)
        return out

    def query(self, query: Query) -> list[Snapshot]:
        return self._stream(self._built(query), "query")

    def count(self, query: Query) -> int:
        try:
            [[result]] = self._built(query).count().get(retry=self._retry, timeout=self._timeout)
        except TRANSIENT_ERRORS as exc:
            raise _busy("count", exc) from exc
        return int(result.value)

    def _built(self, query: Query) -> Any:
        """`query` as the client library's query."""
        built: Any = self._db.collection(query.collection)
        for name, value in query.equal:
            built = built.where(filter=FieldFilter(name, "==", value))
        if query.before is not None:
            built = built.where(filter=FieldFilter(query.before[0], "<", query.before[1]))
        for name, direction in query.order:
            built = built.order_by(name, direction=_DIRECTIONS[direction])
        if query.start_after is not None:
            cursor = {
                name: self._db.document(value) if name == DOCUMENT_NAME else value
                for (name, _), value in zip(query.order, query.start_after, strict=True)
            }
            built = built.start_after(cursor)
        if query.limit is not None:
            built = built.limit(query.limit)
        return built

    def read_collection(self, collection: str) -> list[Snapshot]:
        return self._stream(self._db.collection(collection), "read_collection")

    # --- helpers ----------------------------------------------------------------------------

    def _stream(self, query: Any, what: str) -> list[Snapshot]:
        try:
            return [_snapshot(s) for s in query.stream(retry=self._retry, timeout=self._timeout)]
        except TRANSIENT_ERRORS as exc:
            raise _busy(what, exc) from exc

    def _unchanged(self, before: Snapshot) -> Any:
        return self._db.write_option(last_update_time=before.update_time)


def _snapshot(snapshot: Any) -> Snapshot:
    data = snapshot.to_dict() if snapshot.exists else None
    return Snapshot(snapshot.reference.path, data, None if data is None else snapshot.update_time)


def _encoded(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _encoded_value(value) for key, value in values.items()}


def _encoded_value(value: Any) -> Any:
    if value is SERVER_TIME:
        return firestore.SERVER_TIMESTAMP
    if isinstance(value, Mapping):
        return _encoded(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [_encoded_value(item) for item in value]
    return value


def _busy(what: str, exc: BaseException) -> StoreBusy:
    return StoreBusy(f"the store is unavailable ({what}): {type(exc).__name__}")
