"""Seeing creations finish as a UI would: one Firestore listener per user, on that user's
creations (`creations where user_id == uid`). Narrow listeners keep the emulator's lag low
(a listener on the whole collection fell seconds behind under a burst)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

FINAL_STATUSES = frozenset({"draft", "failed", "canceled"})


@dataclass(frozen=True)
class Seen:
    status: str
    at: float  # time.perf_counter() when the listener's callback saw it


class CreationWatcher:
    """Listens to the given users' creations; `wait` blocks until ids reach a final status."""

    def __init__(self, db: firestore.Client, users: Iterable[str]) -> None:
        self._db = db
        self._users = list(users)
        self._done = threading.Condition()
        self.seen: dict[str, Seen] = {}
        self._initial: set[str] = set()
        self._watches: list[Any] = []

    def start(self, timeout: float = 30.0) -> None:
        for uid in self._users:
            query = self._db.collection("creations").where(filter=FieldFilter("user_id", "==", uid))
            self._watches.append(query.on_snapshot(self._callback_for(uid)))
        # Each listener's first snapshot (empty) says it is attached: submitting earlier could
        # make a fast creation's draft arrive in the initial snapshot instead of as a change.
        deadline = time.monotonic() + timeout
        with self._done:
            while len(self._initial) < len(self._users):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._users) - len(self._initial)} listeners did not attach"
                    )
                self._done.wait(left)

    def _callback_for(self, uid: str) -> Any:
        def on_snapshot(_docs: Any, changes: Any, _read_time: Any) -> None:
            now = time.perf_counter()
            with self._done:
                self._initial.add(uid)
                for change in changes:
                    snapshot = change.document
                    data = snapshot.to_dict() or {}
                    status = str(data.get("status", ""))
                    if status in FINAL_STATUSES and snapshot.id not in self.seen:
                        self.seen[snapshot.id] = Seen(status=status, at=now)
                self._done.notify_all()

        return on_snapshot

    def wait(self, ids: Iterable[str], timeout: float) -> dict[str, Seen]:
        """The final status of each id; raises TimeoutError naming how many are missing."""
        wanted = list(ids)
        deadline = time.monotonic() + timeout
        with self._done:
            while True:
                missing = [i for i in wanted if i not in self.seen]
                if not missing:
                    return {i: self.seen[i] for i in wanted}
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(missing)} of {len(wanted)} creations not final after "
                        f"{timeout:g} s (e.g. {missing[0]})"
                    )
                self._done.wait(min(left, 1.0))

    def stop(self) -> None:
        for watch in self._watches:
            watch.unsubscribe()
        self._watches = []
