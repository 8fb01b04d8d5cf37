"""Settling a creation's media once it is final, in the `refund` function's handler, on the
in-memory store and media store: a draft keeps exactly its one media set, a failed or canceled
creation keeps nothing, and the refund never waits on (or repeats because of) storage."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from google.api_core.retry import Retry
from google.cloud.storage import Client as StorageClient

from shared.core.errors import StoreBusy
from shared.creations.claims import ClaimStore
from shared.creations.model import Job
from shared.creations.status_events import StatusEvent
from shared.media.providers.base import GeneratedMedia
from shared.media.storage import staging_prefix
from shared.money.ledger import Ledger
from shared.money.refunds import RefundHandler, Refunds
from shared.store import paths
from shared.store.documents import Batch
from shared.wiring import media_store
from shared.work.worker import GenerationWorker
from tests.support.events import status_event
from tests.support.fakes import (
    SETTINGS,
    Clock,
    RecordingAnnouncer,
    RecordingMediaStore,
    ScriptedProvider,
)
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import debited_creation, move


@pytest.fixture
def media() -> RecordingMediaStore:
    return RecordingMediaStore()


@pytest.fixture
def handler(store: MemoryDocuments, ledger: Ledger, media: RecordingMediaStore) -> RefundHandler:
    return RefundHandler(Refunds(store, SETTINGS, ledger), media=media)


def change(store: MemoryDocuments, creation_id: str) -> StatusEvent:
    """The status event of the creation as it is now."""
    return status_event(creation_id, store.creation(creation_id) or {})


def generate(store: MemoryDocuments, clock: Clock, media: RecordingMediaStore, job: Job) -> str:
    w = GenerationWorker(
        claims=ClaimStore(store, SETTINGS, clock=clock),
        provider=ScriptedProvider(makes=2),
        uploader=media,
        settings=SETTINGS,
        announcer=RecordingAnnouncer(),
    )
    return w.handle(job, event_id="e").kind


def job_of(store: MemoryDocuments, creation_id: str) -> Job:
    (found,) = store.read(paths.creation(creation_id))
    return Job.of(found)


def test_a_draft_keeps_exactly_its_media_set(
    store: MemoryDocuments,
    ledger: Ledger,
    clock: Clock,
    media: RecordingMediaStore,
    handler: RefundHandler,
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    # An earlier attempt crashed after uploading (its objects are under their own names).
    media.objects[f"media/u/{creation_id}/1-deadbeef0000/0.png"] = b"crashed attempt"
    media.objects[f"{staging_prefix('u', creation_id)}veo/sample_0.mp4"] = b"provider scratch"
    media.objects["media/u/other/1-x/0.png"] = b"another creation's"
    assert generate(store, clock, media, job_of(store, creation_id)) == "draft"
    assert handler.on_status_event(change(store, creation_id), event_id="e1") == "nothing_to_do"
    published = [item["uri"] for item in store.creation(creation_id)["media"]]
    assert len(published) == 2
    assert [f"gs://media/{name}" for name in media.under("u", creation_id)] == sorted(published)
    assert sorted(media.objects) == sorted(
        ["media/u/other/1-x/0.png", *(uri.removeprefix("gs://media/") for uri in published)]
    )
    assert ledger.balance("u") == 7  # a draft is never refunded


@pytest.mark.parametrize("final", ["failed", "canceled"])
def test_a_failed_or_canceled_creation_keeps_no_objects_and_is_refunded_once(
    store: MemoryDocuments,
    ledger: Ledger,
    media: RecordingMediaStore,
    handler: RefundHandler,
    final: str,
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    if final == "failed":
        move(store, creation_id, "processing")
        media.objects[f"media/u/{creation_id}/1-abc/0.png"] = b"uploaded, then the write failed"
        media.objects[f"{staging_prefix('u', creation_id)}1-abc/sample_0.mp4"] = b"veo"
        move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    else:
        move(store, creation_id, "canceled")
    expected = "refunded"
    for event in ("e1", "e1", "e2"):  # redelivered, then the refund's own update
        assert handler.on_status_event(change(store, creation_id), event_id=event) in (
            expected,
            "already_refunded",
            "nothing_to_do",
        )
        expected = "already_refunded"
    assert media.objects == {}
    assert ledger.balance("u") == 10
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 1


def test_storage_down_never_holds_up_the_refund_and_the_redelivery_settles(
    store: MemoryDocuments,
    ledger: Ledger,
    media: RecordingMediaStore,
    handler: RefundHandler,
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    move(store, creation_id, "processing")
    media.objects[f"media/u/{creation_id}/1-abc/0.png"] = b"left over"
    move(store, creation_id, "failed", {"error": {"code": "x", "message": "x"}})
    event = change(store, creation_id)
    media.down = 1
    with pytest.raises(StoreBusy):  # the event is redelivered...
        handler.on_status_event(event, event_id="e1")
    assert ledger.balance("u") == 10  # ...but the refund is already made
    assert store.creation(creation_id)["refunded"] is True
    assert (
        handler.on_status_event(event, event_id="e1") == "nothing_to_do"
    )  # read: refunded already
    assert media.objects == {}
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 1


def test_unfinished_and_deleted_creations_are_not_settled(
    store: MemoryDocuments,
    ledger: Ledger,
    media: RecordingMediaStore,
    handler: RefundHandler,
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    move(store, creation_id, "processing")
    name = f"media/u/{creation_id}/1-abc/0.png"
    media.objects[name] = b"a live worker's upload, not yet published"
    # An event that is early or wrong about its creation: the document, still processing, wins.
    early = StatusEvent(creation_id=creation_id, user_id="u", type="image", status="failed")
    assert handler.on_status_event(early, event_id="e1") == "nothing_to_do"
    (found,) = store.read(paths.creation(creation_id))
    batch = Batch()
    batch.delete(found)
    store.commit(batch)
    assert handler.on_status_event(early, event_id="e2") == "deleted"
    assert list(media.objects) == [name]


@pytest.mark.parametrize(
    "listed",
    [[], [{"uri": "gs://m/media/u/kept.png"}, {"name": "no uri"}]],
    ids=["none", "one-without-a-uri"],
)
def test_a_draft_that_does_not_name_its_media_is_left_alone(
    store: MemoryDocuments,
    ledger: Ledger,
    media: RecordingMediaStore,
    handler: RefundHandler,
    listed: list[dict[str, str]],
) -> None:
    # Written by hand or by an older version: settling by what it names would delete files
    # the items without a `uri` may describe.
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    move(store, creation_id, "processing")
    media.objects[f"media/u/{creation_id}/0.png"] = b"an older version's name"
    move(store, creation_id, "draft", {"progress": 100, "media": listed})
    assert handler.on_status_event(change(store, creation_id), event_id="e") == "nothing_to_do"
    assert media.under("u", creation_id) == [f"media/u/{creation_id}/0.png"]


class RecordingBlob:
    """A storage client's blob that records the arguments of each call."""

    def __init__(self, calls: list[dict[str, object]]) -> None:
        self._calls = calls

    def upload_from_filename(self, filename: str, **kwargs: object) -> None:
        self._calls.append(kwargs)

    def delete(self, **kwargs: object) -> None:
        self._calls.append(kwargs)


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def bucket(self, name: str) -> RecordingClient:
        return self

    def blob(self, name: str) -> RecordingBlob:
        return RecordingBlob(self.calls)

    def list_blobs(self, bucket: str, **kwargs: object) -> list[object]:
        self.calls.append(kwargs)
        return []


def test_every_storage_call_is_held_to_the_media_timeout(tmp_path: Path) -> None:
    """The storage client's own default (120 s of retries) would hold a worker past its lease
    while storage is down."""
    client = RecordingClient()
    settings = SETTINGS.model_copy(update={"media_timeout_seconds": 7.0})
    store = media_store(settings, cast(StorageClient, client))
    image = tmp_path / "0.png"
    image.write_bytes(b"png")
    item = GeneratedMedia(path=image, content_type="image/png", width=1, height=1)
    media = store.upload("u", "c" * 32, [item], scope="1-abc")
    store.discard(media)
    store.settle("u", "c" * 32, keep=[])
    assert len(client.calls) == 4  # upload, delete, and the two prefixes listed
    for call in client.calls:
        retry = call["retry"]
        assert isinstance(retry, Retry) and retry.timeout == 7.0
        assert call["timeout"] == 7.0


def test_a_first_attempts_image_draft_is_taken_on_its_word_and_costs_no_read(
    store: MemoryDocuments, ledger: Ledger, media: RecordingMediaStore, handler: RefundHandler
) -> None:
    ledger.grant("u", 10)
    creation_id = debited_creation(store, ledger, "u")
    reads = store.reads
    first = StatusEvent(
        creation_id=creation_id, user_id="u", type="image", status="draft", attempt=1
    )
    assert first.leaves_nothing_to_settle
    assert handler.on_status_event(first, event_id="e1") == "nothing_to_do"
    assert store.reads == reads
    # A video stages under tmp/, and a later attempt may follow a crashed one: those look.
    for later in (
        first.model_copy(update={"type": "video"}),
        first.model_copy(update={"attempt": 2}),
    ):
        assert not later.leaves_nothing_to_settle
