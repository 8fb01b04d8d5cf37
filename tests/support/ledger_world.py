"""What Firestore and the media bucket hold, read without the suite's code, and the promises of
docs/contract.md checked over it (for tests/integration/test_stateful_ledger.py).

`History` is what the store was asked to do, heard from every commit that landed (the test's
store wrapper reports them): which creations were written and at what cost, each creation's
statuses in the order they were written, which were deleted. `World` is one reading of the
store and the bucket. `check(world, history)` says which promise does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from google.cloud import firestore
from google.cloud.storage import Client as StorageClient

from shared.creations.lifecycle import DELETING, REFUNDABLE_STATUSES, TRANSITIONS
from shared.creations.model import CreationType, Job
from shared.creations.requests import StoredRequest, VideoRequest
from shared.media.providers.base import (
    GeneratedMedia,
    GenerationContext,
    ProviderTransient,
    SafetyBlocked,
)
from shared.media.storage import split_gs_uri
from shared.store import paths
from shared.store.documents import Batch, Create, Delete, Snapshot, Update

# Every `error.code` docs/contract.md lists.
ERROR_CODES: Final = frozenset(
    {
        "invalid_request",
        "safety_blocked",
        "empty_result",
        "provider_error",
        "delivery_exhausted",
        "too_many_attempts",
        "not_processed",
        "queue_unavailable",
        "clip_missing",
        "clip_unreadable",
        "stitch_failed",
        "stitch_timeout",
    }
)
# Objects may exist only for creations in these statuses (a worker uploads after its claim and
# before its move to draft).
MAY_HOLD_MEDIA: Final = frozenset({"processing", "draft"})


def _reachable() -> dict[str, frozenset[str]]:
    """status -> every status reachable from it by one or more moves."""
    out: dict[str, frozenset[str]] = {}
    for start in TRANSITIONS:
        seen: set[str] = set()
        todo = list(TRANSITIONS[start])
        while todo:
            status = todo.pop()
            if status not in seen:
                seen.add(status)
                todo.extend(TRANSITIONS[status])
        out[start] = frozenset(seen)
    return out


REACHABLE: Final = _reachable()


# --- the provider -------------------------------------------------------------------------------

# `partial`: an image request for 2 or more gets one image fewer (said as a short answer); any
# other request is made whole.
Outcome = Literal["success", "permanent", "transient", "partial"]


@dataclass
class Turn:
    """What the provider does on one call: `meanwhile` runs while it "generates" (another
    process's work, in the middle of this one's), then it succeeds or fails as `outcome` says."""

    outcome: Outcome = "success"
    meanwhile: Callable[[], None] | None = None


@dataclass
class TurnProvider:
    """A provider that reports progress, saves a checkpoint, then plays its next `Turn` (success
    when none is left). Every call's files have sizes no other call's have, so an object
    overwritten by another attempt no longer matches the `media` that names it."""

    turns: list[Turn] = field(default_factory=list)
    calls: int = 0

    def generate(
        self, job: Job, request: StoredRequest, context: GenerationContext
    ) -> list[GeneratedMedia]:
        self.calls += 1
        call = self.calls  # another call may run meanwhile
        turn = self.turns.pop(0) if self.turns else Turn()
        context.report_progress(40)
        context.save_checkpoint({"operation": f"operations/{job.creation_id}-{call}"})
        if turn.meanwhile is not None:
            turn.meanwhile()
        if turn.outcome == "permanent":
            raise SafetyBlocked("The prompt was blocked (scripted).")
        if turn.outcome == "transient":
            raise ProviderTransient("Rate limited (scripted).")
        if isinstance(request, VideoRequest):
            return [
                _file(
                    context.workdir,
                    "clip.mp4",
                    self.calls,
                    0,
                    "video/mp4",
                    request.duration_seconds,
                )
            ]
        count = int(getattr(request, "count", 1))
        if turn.outcome == "partial" and count > 1:
            count -= 1
            context.say_short("1 image withheld by the provider's safety filter (scripted).")
        return [
            _file(context.workdir, f"image-{i}.png", call, i, "image/png", None)
            for i in range(count)
        ]


def _file(
    folder: Path, name: str, call: int, index: int, content_type: str, seconds: float | None
) -> GeneratedMedia:
    path = folder / name
    path.write_bytes(b"M" * (64 + 8 * call + index))
    return GeneratedMedia(path, content_type, 64, 64, seconds)


# --- what was written ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """A creation as its first write made it."""

    user_id: str
    type: CreationType
    cost: int
    items: int  # how many media files its request asks for


@dataclass
class History:
    created: dict[str, Written] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)  # as written, in order
    deleted: dict[str, str] = field(default_factory=dict)  # id -> its status when deleted
    codes: dict[str, str] = field(default_factory=dict)  # id -> error.code of its failure
    bad_moves: list[str] = field(default_factory=list)
    observed: dict[str, str] = field(default_factory=dict)  # id -> status at the last check
    partials: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> its draft's partial

    def on_commit(self, batch: Batch, written: dict[str, Snapshot]) -> None:
        """Hear of a commit that landed (`written`: each document as it now is)."""
        for write in batch.writes:
            if not write.path.startswith(f"{paths.CREATIONS}/"):
                continue
            creation_id = write.path.rsplit("/", 1)[-1]
            if isinstance(write, Create):
                self._created(creation_id, write.data)
            elif isinstance(write, Update):
                if "status" in write.fields:
                    self._moved(creation_id, str(write.before.get("status")), written[write.path])
            elif isinstance(write, Delete):
                self.deleted[creation_id] = str(write.before.get("status"))

    def _created(self, creation_id: str, data: dict[str, Any]) -> None:
        if data.get("status") != "pending":
            self.bad_moves.append(f"{creation_id} was created {data.get('status')}")
        if creation_id in self.created:
            self.bad_moves.append(f"{creation_id} was created twice")
        request = data.get("request") or {}
        items = 1 if data.get("type") == "video" else int(request.get("count", 1))
        self.created[creation_id] = Written(
            str(data.get("user_id")), data["type"], int(data["cost"]), items
        )
        self.statuses[creation_id] = ["pending"]

    def _moved(self, creation_id: str, before: str, after: Snapshot) -> None:
        to = str(after.get("status"))
        seen = self.statuses.setdefault(creation_id, [])
        last = seen[-1] if seen else before
        if before != last:
            self.bad_moves.append(f"{creation_id}: a move from {before}, last written {last}")
        if to != before and to not in TRANSITIONS.get(before, frozenset()):
            self.bad_moves.append(f"{creation_id}: {before} -> {to} (statuses {[*seen, to]})")
        if to != last:
            seen.append(to)
        if to == "failed":
            self.codes[creation_id] = str((after.get("error") or {}).get("code"))
        partial = after.get("partial")
        if to == "draft" and isinstance(partial, dict):
            self.partials[creation_id] = dict(partial)


# --- what is there ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str | None


@dataclass(frozen=True)
class World:
    balances: dict[str, int]  # users/{uid}.tokens
    entries: dict[str, dict[str, dict[str, Any]]]  # uid -> ledger entry id -> entry
    creations: dict[str, dict[str, Any]]
    objects: dict[str, StoredObject]  # object name (under media/) -> what it is
    bucket: str


def observe(db: firestore.Client, storage: StorageClient, bucket: str) -> World:
    balances = {
        user.id: int((user.to_dict() or {}).get("tokens", 0))
        for user in db.collection(paths.USERS).stream()
    }
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in db.collection_group(paths.LEDGER).stream():
        owner = entry.reference.parent.parent
        uid = owner.id if owner is not None else "?"
        entries.setdefault(uid, {})[entry.id] = entry.to_dict() or {}
    creations = {c.id: c.to_dict() or {} for c in db.collection(paths.CREATIONS).stream()}
    objects = {
        blob.name: StoredObject(int(blob.size or 0), blob.content_type)
        for blob in storage.list_blobs(bucket, prefix="media/")
    }
    return World(balances, entries, creations, objects, bucket)


# The kinds of media findings, kept apart from the rest so a test may tolerate one while a
# known defect breaks it (it still counts them).
MediaKind = Literal["orphan", "stranded", "overwritten", "missing", "extra", "misnamed"]


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    media: dict[MediaKind, list[str]] = field(default_factory=dict)

    def add(self, kind: MediaKind, problem: str) -> None:
        self.media.setdefault(kind, []).append(problem)


def check(world: World, history: History, *, max_attempts: int) -> Findings:
    found = Findings()
    _balances(world, found.problems)
    _money(world, history, found.problems)
    _statuses(world, history, found.problems, max_attempts)
    _orphans(world, history, found)
    _media_sets(world, history, found)
    return found


def _balances(world: World, problems: list[str]) -> None:
    for uid in sorted(set(world.balances) | set(world.entries)):
        total = sum(int(e.get("amount", 0)) for e in world.entries.get(uid, {}).values())
        balance = world.balances.get(uid)
        if balance is None:
            problems.append(f"{uid} has ledger entries summing to {total} but no balance")
        elif balance < 0:
            problems.append(f"{uid} has a negative balance {balance}")
        elif balance != total:
            problems.append(f"{uid}: balance {balance} != sum of ledger {total}")


def _money(world: World, history: History, problems: list[str]) -> None:
    """One debit of the cost per creation; a full refund (`refund:{creation}`) iff it is (or was
    deleted) failed or canceled, with its `refunded` flag; a partial refund
    (`refund:{creation}:partial`) iff it is (or was deleted) a partial draft, of the unit price
    of each image not made, and never beside a full one."""
    debits: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    refunds: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    partial_refunds: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for uid, entries in world.entries.items():
        for entry_id, entry in entries.items():
            kind, creation_id = entry.get("kind"), entry.get("creation_id")
            if kind == "grant":
                if creation_id is not None or int(entry.get("amount", 0)) <= 0:
                    problems.append(f"{uid}/{entry_id}: an odd grant {entry}")
                continue
            if kind == "refund" and entry_id == f"refund:{creation_id}:partial":
                found = partial_refunds
            elif kind in ("debit", "refund") and entry_id == f"{kind}:{creation_id}":
                found = debits if kind == "debit" else refunds
            else:
                problems.append(f"{uid}/{entry_id}: an odd entry {entry}")
                continue
            found.setdefault(str(creation_id), []).append((uid, entry))
    for creation_id in sorted(set(debits) | set(refunds) | set(partial_refunds)):
        if creation_id not in history.created:
            problems.append(f"a ledger entry for {creation_id}, a creation never written")
    for creation_id, written in history.created.items():
        debit = debits.get(creation_id, [])
        if [(uid, -int(e["amount"])) for uid, e in debit] != [(written.user_id, written.cost)]:
            problems.append(f"{creation_id} (cost {written.cost}) is debited as {debit}")
        refund = refunds.get(creation_id, [])
        if len(refund) > 1 or any(int(e["amount"]) != written.cost for _, e in refund):
            problems.append(f"{creation_id} (cost {written.cost}) is refunded as {refund}")
        partial_refund = partial_refunds.get(creation_id, [])
        if refund and partial_refund:
            problems.append(f"{creation_id} is refunded in full and in part")
        doc = world.creations.get(creation_id)
        if doc is not None:
            status = str(doc.get("status"))
            if bool(refund) != bool(doc.get("refunded")):
                problems.append(
                    f"{creation_id} ({status}): refunded flag {doc.get('refunded')} but "
                    f"{len(refund)} refund entries"
                )
            if refund and status not in REFUNDABLE_STATUSES:
                problems.append(f"{creation_id} is refunded but {status}")
            partial = doc.get("partial") if status == "draft" else None
        elif creation_id in history.deleted:
            status = history.deleted[creation_id]
            if (status in REFUNDABLE_STATUSES) != bool(refund):
                problems.append(
                    f"{creation_id} was deleted {status} with {len(refund)} refund entries"
                )
            partial = history.partials.get(creation_id) if status == "draft" else None
        else:
            problems.append(f"{creation_id} vanished without being deleted")
            continue
        _partial_money(creation_id, written, partial, partial_refund, problems)


def _partial_money(
    creation_id: str,
    written: Written,
    partial: object,
    entries: list[tuple[str, dict[str, Any]]],
    problems: list[str],
) -> None:
    """A partial draft's one refund: (asked - made) x cost / asked, as its `partial` says."""
    if partial is None:
        if entries:
            problems.append(f"{creation_id} is refunded in part but is no partial draft")
        return
    if not isinstance(partial, dict):
        problems.append(f"{creation_id}: an odd partial {partial}")
        return
    asked, made = partial.get("asked"), partial.get("made")
    if not (isinstance(asked, int) and isinstance(made, int) and 0 < made < asked):
        problems.append(f"{creation_id}: a partial of {made} of {asked}")
        return
    owed = written.cost * (asked - made) // asked
    if asked != written.items or partial.get("refund") != owed or not partial.get("reason"):
        problems.append(f"{creation_id} (cost {written.cost}, {written.items} asked): {partial}")
    paid = [(uid, int(e["amount"])) for uid, e in entries]
    if paid != ([(written.user_id, owed)] if owed else []):
        problems.append(f"{creation_id} ({made} of {asked}, owed {owed}) is refunded as {paid}")


def _statuses(world: World, history: History, problems: list[str], max_attempts: int) -> None:
    problems.extend(history.bad_moves)
    for creation_id, doc in world.creations.items():
        status = str(doc.get("status"))
        before = history.observed.get(creation_id)
        if before is not None and status != before and status not in REACHABLE[before]:
            problems.append(f"{creation_id} went back from {before} to {status}")
        history.observed[creation_id] = status
        if creation_id not in history.created:
            problems.append(f"{creation_id} exists but was never written by the suite")
        if int(doc.get("attempts", 0)) > max_attempts:
            problems.append(f"{creation_id} was taken up {doc.get('attempts')} times")
        error = doc.get("error")
        if status == "failed" and (
            not isinstance(error, dict) or error.get("code") not in ERROR_CODES
        ):
            problems.append(f"{creation_id} failed with an error outside the contract: {error}")
        if status == "draft" and (doc.get("progress") != 100 or not doc.get("media")):
            problems.append(f"{creation_id} is a draft with progress {doc.get('progress')}")
        if status != "draft" and doc.get("partial") is not None:
            problems.append(f"{creation_id} is {status} with a partial {doc.get('partial')}")


def _creation_of(name: str) -> tuple[str, str]:
    """The owner and creation of an object under media/ (`media/{uid}/{creation}/...`)."""
    parts = name.split("/")
    return (parts[1], parts[2]) if len(parts) > 3 else ("?", "?")


def _orphans(world: World, history: History, found: Findings) -> None:
    """`orphan`: an object under media/ of a failed or canceled creation; `stranded`: of a
    deleted creation, or of none."""
    for name in world.objects:
        owner, creation_id = _creation_of(name)
        doc = world.creations.get(creation_id)
        if doc is not None:
            status = str(doc.get("status"))
            if status not in MAY_HOLD_MEDIA:
                found.add("orphan", f"{name} belongs to a {status} creation")
            elif owner != doc.get("user_id"):
                found.add("misnamed", f"{name} is not under its creation's owner")
        elif creation_id in history.deleted:
            found.add("stranded", f"{name} belongs to a deleted creation")
        else:
            found.add("stranded", f"{name} belongs to no creation")


def _media_sets(world: World, history: History, found: Findings) -> None:
    """Every draft has exactly one media set, as its `media` says: `missing` (an object it
    names is gone), `extra` (an object under its prefix it does not name), `overwritten` (an
    object it names is not what it says), `misnamed` (a count, or a bucket, that is off)."""
    by_creation: dict[str, set[str]] = {}
    for name in world.objects:
        by_creation.setdefault(_creation_of(name)[1], set()).add(name)
    for creation_id, doc in world.creations.items():
        if doc.get("status") != "draft" or doc.get(DELETING):
            continue  # a draft marked `deleting` is on its way out: the trigger finishes it
        named: dict[str, dict[str, Any]] = {}
        for item in doc.get("media") or []:
            bucket, name = split_gs_uri(str(item.get("uri")))
            if bucket != world.bucket:
                found.add("misnamed", f"{creation_id}: media in another bucket: {item}")
            named[name] = item
        expected = history.created.get(creation_id)
        partial = doc.get("partial")
        made = partial.get("made") if isinstance(partial, dict) else None
        if expected is not None and len(named) != (expected.items if made is None else made):
            asked = f"{len(named)} media items, {expected.items} asked, partial {partial}"
            found.add("misnamed", f"{creation_id}: {asked}")
        stored = by_creation.get(creation_id, set())
        for name in sorted(set(named) - stored):
            found.add("missing", f"draft {creation_id}: its {name} is gone")
        for name in sorted(stored - set(named)):
            found.add("extra", f"draft {creation_id}: {name} is not in its media")
        for name, item in named.items():
            obj = world.objects.get(name)
            if obj is None:
                continue
            if (obj.size, obj.content_type) != (item.get("bytes"), item.get("content_type")):
                found.add(
                    "overwritten",
                    f"draft {creation_id}: {name} is {obj.size} bytes {obj.content_type}, "
                    f"its media item says {item.get('bytes')} {item.get('content_type')}",
                )
