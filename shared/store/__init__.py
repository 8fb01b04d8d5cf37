"""Documents: the port every decision is written against, and Firestore behind it.

documents   the port: snapshots, guarded batches, queries, `SERVER_TIME`, `LostRace`
firestore   the port on Firestore (the one retry/timeout/error-mapping policy)
optimistic  read, decide, commit; on a lost race read again (`run_optimistic`)
paths       where each kind of document lives
indexes     the queries the code runs and the composite indexes they need
"""

from shared.store import paths
from shared.store.documents import (
    DOCUMENT_NAME,
    SERVER_TIME,
    Batch,
    Documents,
    LostRace,
    Query,
    Snapshot,
)
from shared.store.firestore import FirestoreDocuments
from shared.store.optimistic import run_optimistic

__all__ = [
    "DOCUMENT_NAME",
    "SERVER_TIME",
    "Batch",
    "Documents",
    "FirestoreDocuments",
    "LostRace",
    "Query",
    "Snapshot",
    "paths",
    "run_optimistic",
]
