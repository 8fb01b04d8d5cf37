from __future__ import annotations

import base64
import json

import pytest
from cloudevents.http import CloudEvent

from shared.core.events import MalformedEvent, PubSubMessage
from shared.creations.status_events import StatusEvent, status_event_in
from shared.work.jobs import job_from_event
from shared.work.progress_writes import ThrottledProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_monotonic_and_at_most_one_write_per_interval() -> None:
    writes: list[int] = []
    clock = FakeClock()
    progress = ThrottledProgress(writes.append, min_interval_seconds=1.0, clock=clock)
    progress(10)  # too soon after the work began
    clock.now += 1.5
    progress(20)
    progress(25)  # too soon after the last write
    clock.now += 1.5
    progress(5)  # backwards: never written
    progress(30)
    clock.now += 1.5
    progress(150)  # clamped below 100: only the finish writes 100
    assert writes == [20, 30, 99]


def test_a_job_done_within_the_interval_writes_no_progress() -> None:
    writes: list[int] = []
    clock = FakeClock()
    progress = ThrottledProgress(writes.append, min_interval_seconds=1.0, clock=clock)
    for percent in (5, 50, 99):
        clock.now += 0.3
        progress(percent)
    assert writes == []  # the move to draft writes 100; nothing before it was needed
    clock.now += 0.2
    progress(99)  # one interval after the work began: the first write
    assert writes == [99]


def test_a_failed_progress_write_is_skipped_not_raised() -> None:
    writes: list[int] = []
    down = {"on": True}

    def flaky(percent: int) -> None:
        if down["on"]:
            raise RuntimeError("store down")
        writes.append(percent)

    progress = ThrottledProgress(flaky, min_interval_seconds=0)
    progress(10)  # fails; not raised
    down["on"] = False
    progress(10)  # the same percent again: the failed write did not count as written
    assert writes == [10]


def _pubsub_event(data: bytes) -> CloudEvent:
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub", "id": "1"},
        {"message": {"data": base64.b64encode(data).decode(), "messageId": "m1"}},
    )


def test_a_job_is_read_from_a_pubsub_event() -> None:
    job = job_from_event(
        _pubsub_event(json.dumps({"creation_id": "c1", "user_id": "u1", "type": "image"}).encode())
    )
    assert (job.creation_id, job.user_id, job.type) == ("c1", "u1", "image")


def _job(**fields: object) -> bytes:
    return json.dumps({"creation_id": "c1", "user_id": "u1", "type": "image", **fields}).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"creation_id": 1}',
        b"[]",
        # json.loads raises RecursionError on deep nesting: not a ValueError, yet no job either.
        b"[" * 2000 + b"]" * 2000,
        # Ids that cannot name a document: Firestore's `document("a/b")` raises ValueError.
        _job(creation_id="a/b"),
        _job(creation_id=""),
        _job(creation_id="x" * 129),
        _job(creation_id="a b"),
        _job(user_id="a/b"),
        _job(user_id=""),
        _job(user_id="u" * 129),
        _job(user_id=".."),
        _job(type="poster"),
        # A job is a few hundred bytes; a message this big is not one, whatever it holds.
        _job(padding="x" * 100_000),
    ],
    ids=lambda data: data[:40].decode(errors="replace"),
)
def test_a_message_that_is_not_a_job_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        job_from_event(_pubsub_event(data))


@pytest.mark.parametrize(
    "message",
    [
        {"data": 12},  # not a string
        {"data": "not base64!"},
        {"data": base64.b64encode(_job()).decode(), "attributes": ["not", "a", "map"]},
        {"data": base64.b64encode(_job()).decode(), "attributes": {"a": {"b": 1}}},
        {"data": base64.b64encode(_job()).decode(), "messageId": {"x": 1}},
    ],
)
def test_an_envelope_that_is_not_a_pubsub_message_is_malformed(message: object) -> None:
    event = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub", "id": "1"},
        {"message": message},
    )
    with pytest.raises(MalformedEvent):
        job_from_event(event)


def test_a_status_event_is_decoded_from_its_message() -> None:
    event = StatusEvent(creation_id="c1", user_id="u", type="image", status="draft")
    message = PubSubMessage("m1", event.encode(), event.attributes())
    assert status_event_in(message) == event
    assert event.attributes() == {
        "creation_id": "c1",
        "status": "draft",
        "type": "image",
        "event_key": "c1:draft",
    }
    first = event.model_copy(update={"attempt": 1})
    assert first.attributes()["attempt"] == "1"  # what refund's subscription filter reads


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"creation_id": "c1", "user_id": "u", "type": "image", "status": "pending"}',
        b'{"creation_id": "a/b", "user_id": "u", "type": "image", "status": "failed"}',
        b'{"creation_id": "c1", "user_id": "u", "type": "image"}',
        b"[" * 5000,
    ],
    ids=["not-json", "not-announced", "bad-id", "no-status", "huge"],
)
def test_what_is_not_a_status_event_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedEvent):
        status_event_in(PubSubMessage("m1", body, {}))
