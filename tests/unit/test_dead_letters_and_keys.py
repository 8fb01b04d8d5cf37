"""Dead letters and freed idempotency keys, on the in-memory store."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from shared.core.events import MalformedEvent, PubSubMessage
from shared.creations.claims import ClaimStore
from shared.creations.status_events import StatusNotAnnounced
from shared.intake import idempotency
from shared.intake.idempotency import KeyUse
from shared.store import paths
from shared.store.documents import Batch
from shared.work.dead_letters import DELIVERY_COUNT_ATTRIBUTE, DeadLetterHandler
from tests.support.fakes import SETTINGS, Clock, RecordingAnnouncer
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import move, new_creation


def dead_letter(creation_id: str, user_id: str = "u", kind: str = "image") -> PubSubMessage:
    job = {"creation_id": creation_id, "user_id": user_id, "type": kind}
    return PubSubMessage("m1", json.dumps(job).encode(), {DELIVERY_COUNT_ATTRIBUTE: "5"})


@pytest.fixture
def handler(store: MemoryDocuments, clock: Clock) -> DeadLetterHandler:
    return DeadLetterHandler(ClaimStore(store, SETTINGS, clock=clock), RecordingAnnouncer())


@pytest.mark.parametrize("status", ["pending", "processing"])
def test_a_dead_letter_fails_an_unfinished_creation(
    store: MemoryDocuments, handler: DeadLetterHandler, clock: Clock, status: str
) -> None:
    creation_id = new_creation(store, "u")
    if status == "processing":  # a worker that died: its lease ran out
        move(store, creation_id, "processing", {"lease_owner": "w", "lease_expires_at": clock.now})
    assert handler.on_dead_letter(dead_letter(creation_id), event_id="e")
    failed = store.creation(creation_id)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "delivery_exhausted"
    assert failed.get("lease_owner") is None


def test_a_dead_letter_spares_a_creation_a_live_worker_holds(
    store: MemoryDocuments, handler: DeadLetterHandler, clock: Clock
) -> None:
    # A duplicate message (the sweeper re-enqueues a creation pending too long) dead-letters
    # while another delivery's worker is generating: that worker's paid result must not be
    # dropped. If it dies, its lease runs out and the sweeper takes the creation on.
    creation_id = new_creation(store, "u")
    lease = clock.now + dt.timedelta(seconds=SETTINGS.lease_seconds)
    move(store, creation_id, "processing", {"lease_owner": "w", "lease_expires_at": lease})
    commits = store.commits
    assert not handler.on_dead_letter(dead_letter(creation_id), event_id="e")
    assert store.creation(creation_id)["status"] == "processing"
    assert store.commits == commits
    clock.advance(SETTINGS.lease_seconds + 1)  # the worker died; a later dead letter fails it
    assert handler.on_dead_letter(dead_letter(creation_id), event_id="e2")
    assert store.creation(creation_id)["error"]["code"] == "delivery_exhausted"


@pytest.mark.parametrize(("user_id", "kind"), [("mallory", "image"), ("u", "reel")])
def test_a_dead_letter_that_disagrees_with_its_creation_changes_nothing(
    store: MemoryDocuments, handler: DeadLetterHandler, user_id: str, kind: str
) -> None:
    """Hand-made or misrouted: failing (and refunding) the creation its id names would act on
    a creation that was never asked to be made this way, as the workers' claim refuses to."""
    creation_id = new_creation(store, "u")
    assert not handler.on_dead_letter(dead_letter(creation_id, user_id, kind), event_id="e")
    assert store.creation(creation_id)["status"] == "pending"


def test_a_dead_letter_leaves_final_and_missing_creations_alone(
    store: MemoryDocuments, handler: DeadLetterHandler
) -> None:
    creation_id = new_creation(store, "u")
    move(store, creation_id, "processing")
    move(store, creation_id, "draft", {"progress": 100})
    commits = store.commits
    assert not handler.on_dead_letter(dead_letter(creation_id), event_id="e")
    assert not handler.on_dead_letter(dead_letter("gone"), event_id="e")
    assert store.commits == commits


@pytest.mark.parametrize(
    "data",
    [
        base64.b64encode(b"not json"),
        b"[" * 2000 + b"]" * 2000,  # RecursionError in json.loads
        json.dumps({"creation_id": "a/b", "user_id": "u", "type": "image"}).encode(),
        json.dumps({"creation_id": "c", "user_id": "a/b", "type": "image"}).encode(),
    ],
    ids=["not-json", "deep", "slash-in-creation", "slash-in-user"],
)
def test_a_dead_letter_that_is_not_a_job_is_malformed(
    store: MemoryDocuments, handler: DeadLetterHandler, data: bytes
) -> None:
    # The dead-letter subscription has no dead letter of its own: what raises anything but
    # MalformedEvent here is retried for the subscription's whole retention.
    with pytest.raises(MalformedEvent):
        handler.on_dead_letter(PubSubMessage("m", data, {}), event_id="e")
    assert store.commits == 0


def test_a_key_is_released_only_for_the_creation_it_made(store: MemoryDocuments) -> None:
    key = paths.idempotency_key("u", "k")
    batch = Batch()
    (record,) = store.read(key)
    assert KeyUse("u", "f", 48).stage(batch, record, "c1") is None
    store.commit(batch)
    idempotency.release(store, key, "someone-else")
    assert store.data(key) is not None
    idempotency.release(store, key, "c1")
    assert store.data(key) is None
    store.unavailable()
    idempotency.release(store, key, "c1")  # best effort: a store that is down is logged only


def test_a_dead_letter_announces_the_final_status_it_makes_or_finds(
    store: MemoryDocuments, clock: Clock
) -> None:
    announcer = RecordingAnnouncer()
    handler = DeadLetterHandler(ClaimStore(store, SETTINGS, clock=clock), announcer)
    creation_id, drafted = new_creation(store, "u"), new_creation(store, "u")
    move(store, drafted, "processing")
    move(store, drafted, "draft", {"progress": 100, "media": [{"uri": "gs://m/x"}]})
    assert handler.on_dead_letter(dead_letter(creation_id), event_id="e1")
    # Final already: its own earlier delivery, or a draft whose worker could not announce it.
    assert not handler.on_dead_letter(dead_letter(creation_id), event_id="e2")
    assert not handler.on_dead_letter(dead_letter(drafted), event_id="e3")
    assert announcer.told == [(creation_id, "failed"), (creation_id, "failed"), (drafted, "draft")]


def test_a_dead_letter_that_cannot_announce_is_redelivered(
    store: MemoryDocuments, clock: Clock
) -> None:
    handler = DeadLetterHandler(
        ClaimStore(store, SETTINGS, clock=clock), RecordingAnnouncer(fail=True)
    )
    creation_id = new_creation(store, "u")
    with pytest.raises(StatusNotAnnounced):
        handler.on_dead_letter(dead_letter(creation_id), event_id="e1")
    assert store.creation(creation_id)["status"] == "failed"  # the failure stands
    live = new_creation(store, "u")  # not final: nothing to announce, nothing raised
    lease = clock.now + dt.timedelta(seconds=SETTINGS.lease_seconds)
    move(store, live, "processing", {"lease_owner": "w", "lease_expires_at": lease})
    assert not handler.on_dead_letter(dead_letter(live), event_id="e2")
