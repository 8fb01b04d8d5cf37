"""Faults injected between the writes of one step, on the real adapters (Firestore, Cloud
Storage) and on a job queue that the test delivers from itself.

A *step* is one call a platform would make once: an API call, one delivery of one event. Its
*writes* are what leaves the process: store commits, media uploads and deletes, publishes.
`Faults.arm(fault)` makes the `fault.at`-th write of the next step go wrong:

- `crash`: the process dies just before that write (it does not land);
- `crash_after`: the write lands, then the process dies before hearing the answer;
- `lost`: the write lands, its answer is lost (`StoreBusy` / `QueueUnavailable`), and the
  process goes on;
- `resent`: as `lost`, but the client library resent the commit and the resend ran into the
  first one's own writes (`LostRace`); other writes treat it as `lost`;
- `busy`: the write does not land and the call fails (`StoreBusy` / `QueueUnavailable`);
- `race`: just before the write, another process does `fault.other` (`Faults.racer` runs it,
  without faults); then the write goes ahead, and fails as a lost race if it must.

A crash raises `Crash`, a `BaseException`, so no `except Exception` of the code under test can
swallow it; after it every call of the step raises `Crash` too (the process is gone).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from shared.core.errors import QueueUnavailable, StoreBusy
from shared.creations.model import Creation, Job
from shared.creations.status_events import StatusEvent
from shared.media.providers.base import GeneratedMedia
from shared.media.storage import GcsMediaStore
from shared.store.documents import Batch, Documents, LostRace, Query, Snapshot

T = TypeVar("T")
FaultKind = Literal["crash", "crash_after", "lost", "resent", "busy", "race"]
WriteKind = Literal["commit", "upload", "discard", "settle", "delete_media", "publish", "announce"]


class Crash(BaseException):
    """The process died here (injected)."""


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: int  # the write of the step it hits, from 1
    other: str = ""  # for `race`: what the other process does

    def __str__(self) -> str:
        return f"{self.kind}@{self.at}" + (f"({self.other})" if self.other else "")


@dataclass
class Faults:
    """The fault plan of the current step, shared by every wrapper of one process."""

    plan: Fault | None = None
    writes: int = 0
    dead: bool = False
    fired: Fault | None = None
    _paused: int = 0
    landed: int = 0  # writes that landed (faults or not): nothing changed while it stays
    racer: Callable[[str], None] = lambda _other: None

    def arm(self, fault: Fault | None) -> None:
        self.plan, self.writes, self.dead, self.fired = fault, 0, False, None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Another process's work, run in the middle of this one's (no faults for it)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def alive(self) -> None:
        if self.dead and not self._paused:
            raise Crash("the process is gone")

    def write(self, what: WriteKind, apply: Callable[[], T]) -> T:
        self.alive()
        if self._paused or self.plan is None:
            return self._landed(apply)
        self.writes += 1
        if self.writes != self.plan.at:
            return self._landed(apply)
        fault = self.fired = self.plan
        if fault.kind == "race":
            with self.paused():
                self.racer(fault.other)
            return self._landed(apply)
        if fault.kind == "crash":
            self.dead = True
            raise Crash(f"died before {what} #{fault.at}")
        if fault.kind == "busy":
            raise _unanswered(what, "unavailable (injected)")
        self._landed(apply)
        if fault.kind == "crash_after":
            self.dead = True
            raise Crash(f"died after {what} #{fault.at}")
        if fault.kind == "resent" and what == "commit":
            raise LostRace("AlreadyExists: the resent commit found its own writes (injected)")
        raise _unanswered(what, "answer lost (injected)")

    def _landed(self, apply: Callable[[], T]) -> T:
        result = apply()
        self.landed += 1
        return result


def _unanswered(what: WriteKind, why: str) -> Exception:
    if what in ("publish", "announce"):
        return QueueUnavailable(f"publish: {why}")
    return StoreBusy(f"{what}: {why}")


class FaultyDocuments:
    """`Documents` on another `Documents` (the Firestore adapter), with `faults` between its
    commits; `on_commit(batch, written)` hears of every commit that landed."""

    def __init__(
        self,
        inner: Documents,
        faults: Faults,
        on_commit: Callable[[Batch, dict[str, Snapshot]], None],
    ) -> None:
        self._inner = inner
        self._faults = faults
        self._on_commit = on_commit

    def read(self, *paths: str) -> list[Snapshot]:
        self._faults.alive()
        return self._inner.read(*paths)

    def commit(self, batch: Batch) -> dict[str, Snapshot]:
        def apply() -> dict[str, Snapshot]:
            written = self._inner.commit(batch)
            self._on_commit(batch, written)
            return written

        return self._faults.write("commit", apply)

    def query(self, query: Query) -> list[Snapshot]:
        self._faults.alive()
        return self._inner.query(query)

    def count(self, query: Query) -> int:
        self._faults.alive()
        return self._inner.count(query)

    def read_collection(self, collection: str) -> list[Snapshot]:
        self._faults.alive()
        return self._inner.read_collection(collection)


class FaultyMedia:
    """The Cloud Storage media store, with `faults` at each upload and each delete."""

    def __init__(self, inner: GcsMediaStore, faults: Faults) -> None:
        self._inner = inner
        self._faults = faults

    def upload(
        self, user_id: str, creation_id: str, items: list[GeneratedMedia], *, scope: str
    ) -> list[dict[str, Any]]:
        return self._faults.write(
            "upload", lambda: self._inner.upload(user_id, creation_id, items, scope=scope)
        )

    def discard(self, media: list[dict[str, Any]]) -> int:
        return self._faults.write("discard", lambda: self._inner.discard(media))

    def settle(self, user_id: str, creation_id: str, keep: Collection[str]) -> int:
        return self._faults.write("settle", lambda: self._inner.settle(user_id, creation_id, keep))

    def delete_media(self, creation: Creation) -> int:
        return self._faults.write("delete_media", lambda: self._inner.delete_media(creation))


@dataclass
class Message:
    """One published job message, as its subscription holds it."""

    message_id: str
    job: Job
    topic: str
    deliveries: int = 0
    nacks: int = 0  # deliveries that did not end in an ack (raised, or the process died)
    acked: bool = False
    dead_lettered: bool = False


@dataclass
class JobQueue:
    """A `JobPublisher` that keeps every message for the test to deliver when, as often and in
    whatever order it likes; `down` refuses every publish."""

    faults: Faults
    messages: list[Message] = field(default_factory=list)
    down: bool = False

    def publish(self, job: Job, *, topic: str) -> str:
        def apply() -> str:
            message = Message(f"m{len(self.messages) + 1}", job, topic)
            self.messages.append(message)
            return message.message_id

        if self.down:
            self.faults.alive()
            raise QueueUnavailable("the queue is down (injected)")
        return self.faults.write("publish", apply)


@dataclass
class Announcement:
    """One status event, as the status stream's subscription holds it until acked."""

    event: StatusEvent
    acked: bool = False


@dataclass
class StatusStream:
    """A `StatusAnnouncer` that keeps every event for the test to deliver when, as often and in
    whatever order it likes, with `faults` at each announcement (one that fails or whose answer
    is lost answers False, as the Pub/Sub announcer does)."""

    faults: Faults
    events: list[Announcement] = field(default_factory=list)

    def announce(self, event: StatusEvent) -> bool:
        def apply() -> bool:
            self.events.append(Announcement(event))
            return True

        try:
            return self.faults.write("announce", apply)
        except QueueUnavailable:
            return False
