"""Malformed, foreign and duplicated events at every event entry point, through the real
functions-framework apps on the emulators.

Each is acked (a 2xx answer: Pub/Sub and Eventarc would otherwise redeliver it for days), logs
exactly one line saying why, and changes no document.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from google.cloud import firestore

from tests.support.chain import PROJECT, Chain, job_of
from tests.support.events import firestore_update, push_body, topic_path

PUBSUB_FUNCTIONS = ("generate", "stitch", "dead_letter")
EVERY_FUNCTION = (*PUBSUB_FUNCTIONS, "refund", "sweep")


@dataclass
class World:
    """Creations in several states, for bad events to (not) touch: the `202` answers of a
    draft and a pending creation, and the stored document of a failed one (not yet refunded)."""

    chain: Chain
    failed_id: str
    failed: dict[str, Any]
    draft: dict[str, Any]
    pending: dict[str, Any]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@pytest.fixture
def logs() -> Iterator[Records]:
    """What the suite's own loggers (`shared.*`) say, at INFO and above."""
    handler, logger = Records(), logging.getLogger("shared")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def world(load_chain: Callable[..., Chain], logs: Records) -> World:
    chain = load_chain(
        *EVERY_FUNCTION, OFFLINE_IMAGE_LONG_SIDE_PX="64", OFFLINE_VIDEO_LONG_SIDE_PX="64"
    )
    chain.ledger.grant("alice", 10)
    failed = chain.submit("alice", {"type": "image", "prompt": "x [fail:permanent]"})
    assert chain.work(failed) == 200
    draft = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    assert chain.work(draft) == 200
    pending = chain.submit("alice", {"type": "image", "prompt": "later"})
    # Each function handles one harmless event first, so what it logs while it builds its
    # collaborators is not counted below.
    gone = {"creation_id": "gone", "user_id": "alice", "type": "image"}
    for function in PUBSUB_FUNCTIONS:
        assert chain.deliver(function, gone) == 200
    assert refund_event(chain, "creations/gone", None) == 200
    assert chain.deliver("sweep", {}) == 200
    logs.records.clear()
    return World(chain, failed["id"], chain.doc(failed["id"]), draft, pending)


def every_document(db: firestore.Client) -> dict[str, tuple[dict[str, Any] | None, Any]]:
    """Every document of the project (subcollections too), with its update time."""
    found: dict[str, tuple[dict[str, Any] | None, Any]] = {}

    def walk(collections: Iterator[Any]) -> None:
        for collection in collections:
            for reference in collection.list_documents():
                snapshot = reference.get()
                found[reference.path] = (snapshot.to_dict(), snapshot.update_time)
                walk(reference.collections())

    walk(db.collections())
    return found


def post_push(chain: Chain, function: str, message: dict[str, Any]) -> int:
    """POST a push body whose `message` is exactly `message` (not built from a payload)."""
    body = push_body(PROJECT, f"{chain.topic_of(function)}-push", {})
    body["message"] = {"messageId": "m-bad", **message}
    path = topic_path(PROJECT, chain.topic_of(function))
    return chain.functions[function].post(path, json=body).status_code


def refund_event(
    chain: Chain, path: str, after: dict[str, Any] | None, before: dict[str, Any] | None = None
) -> int:
    if after is None and before is None:
        before = {"status": "failed"}  # a delete: the old value only
    headers, body = firestore_update(PROJECT, path, before, after)
    return chain.functions["refund"].post("/", data=body, headers=headers).status_code


def assert_acked_once_and_unchanged(
    world: World, logs: Records, send: Callable[[], int], reason: str
) -> None:
    before = every_document(world.chain.db)
    logs.records.clear()
    status = send()
    assert 200 <= status < 300, f"answered {status}: it would be redelivered"
    lines = logs.lines()
    assert len(lines) == 1, f"expected one log line, got {lines}"
    assert reason in lines[0], lines[0]
    assert every_document(world.chain.db) == before


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


def job_bytes(world: World, **fields: Any) -> bytes:
    return json.dumps({**job_of(world.pending), **fields}).encode()


# --- Pub/Sub entry points: generate, stitch, dead_letter ------------------------------------


BAD_MESSAGES: dict[str, tuple[Callable[[World], dict[str, Any]], str]] = {
    "bad-base64": (lambda w: {"data": "not base64!"}, "not base64"),
    "data-not-a-string": (lambda w: {"data": 12}, "not a base64 string"),
    "attributes-not-a-map": (
        lambda w: {"data": encoded(job_bytes(w)), "attributes": ["a"]},
        "attributes",
    ),
    "attribute-not-a-string": (
        lambda w: {"data": encoded(job_bytes(w)), "attributes": {"a": {"b": 1}}},
        "attributes",
    ),
    "not-json": (lambda w: {"data": encoded(b"\xff\xfe not json")}, "not a job"),
    "json-not-a-job": (lambda w: {"data": encoded(b"[1, 2]")}, "not a job"),
    "missing-fields": (
        lambda w: {"data": encoded(json.dumps({"creation_id": w.pending["id"]}).encode())},
        "not a job",
    ),
    "slash-in-creation-id": (
        lambda w: {"data": encoded(job_bytes(w, creation_id=f"{w.pending['id']}/x"))},
        "creation_id",
    ),
    "slash-in-user-id": (
        lambda w: {"data": encoded(job_bytes(w, user_id="alice/ledger"))},
        "user_id",
    ),
    "unknown-type": (lambda w: {"data": encoded(job_bytes(w, type="poster"))}, "type"),
    "deeply-nested": (
        # json.loads raises RecursionError (not ValueError) at this depth.
        lambda w: {"data": encoded(b"[" * 2000 + b"]" * 2000)},
        "nested too deeply",
    ),
    "huge": (
        lambda w: {"data": encoded(job_bytes(w, padding="x" * 2_000_000))},
        "bytes",
    ),
}


@pytest.mark.parametrize("function", PUBSUB_FUNCTIONS)
@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
def test_a_bad_job_message_is_acked_once_and_changes_nothing(
    world: World, logs: Records, function: str, case: str
) -> None:
    message, reason = BAD_MESSAGES[case]
    assert_acked_once_and_unchanged(
        world, logs, lambda: post_push(world.chain, function, message(world)), reason
    )


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        ("generate", "job skipped: final"),
        ("stitch", "job skipped: not_for_this_worker"),  # the draft is an image
        ("dead_letter", "already final"),
    ],
)
def test_a_duplicate_job_for_a_finished_creation_is_acked_once_and_changes_nothing(
    world: World, logs: Records, function: str, reason: str
) -> None:
    for _ in range(2):
        assert_acked_once_and_unchanged(
            world, logs, lambda: world.chain.work(world.draft, function), reason
        )


@pytest.mark.parametrize(
    ("function", "job"),
    [
        ("stitch", lambda w: job_of(w.pending)),  # an image job on the reel topic
        ("generate", lambda w: {**job_of(w.pending), "type": "reel"}),  # a reel job on images
        ("generate", lambda w: {**job_of(w.pending), "user_id": "mallory"}),  # not its owner
        ("generate", lambda w: {**job_of(w.pending), "type": "video"}),  # not its type
    ],
    ids=["image-to-stitch", "reel-to-generate", "wrong-owner", "wrong-type"],
)
def test_a_job_that_does_not_match_its_worker_or_creation_is_acked_and_changes_nothing(
    world: World, logs: Records, function: str, job: Callable[[World], dict[str, Any]]
) -> None:
    assert_acked_once_and_unchanged(
        world, logs, lambda: world.chain.deliver(function, job(world)), "job skipped"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        json.dumps({"subscription": f"projects/{PROJECT}/subscriptions/x"}).encode(),
        json.dumps({"message": "not a map", "subscription": "s"}).encode(),
    ],
    ids=["not-json", "no-message", "message-not-a-map"],
)
def test_a_body_that_is_no_push_envelope_is_refused_before_any_code_of_ours(
    world: World, logs: Records, body: bytes
) -> None:
    # Pub/Sub never sends these (it builds the envelope itself), so only a caller that is not
    # Pub/Sub sees the 400 functions-framework answers; nothing of ours runs.
    before = every_document(world.chain.db)
    path = topic_path(PROJECT, world.chain.topic_of("generate"))
    response = world.chain.functions["generate"].post(
        path, data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert logs.lines() == []
    assert every_document(world.chain.db) == before


# --- refund: Firestore document events -------------------------------------------------------


def test_refund_ignores_events_for_documents_that_are_not_creations(
    world: World, logs: Records
) -> None:
    failed = world.failed  # the fields of a creation the trigger would refund
    for path in (
        f"elsewhere/{world.failed_id}",  # the id of a creation the trigger would refund
        f"users/alice/ledger/debit:{world.failed_id}",
        f"creations/{world.failed_id}/notes/n1",
    ):
        assert_acked_once_and_unchanged(
            world, logs, functools.partial(refund_event, world.chain, path, failed), "ignored"
        )


def test_refund_acks_a_delete_with_one_line(world: World, logs: Records) -> None:
    path = f"creations/{world.pending['id']}"
    assert_acked_once_and_unchanged(
        world, logs, lambda: refund_event(world.chain, path, None), "deleted"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"status": None},
        {"status": 5},
        {"status": ["failed"]},
        {"status": "failed", "refunded": "no"},
    ],
    ids=repr,
)
def test_refund_ignores_a_creation_event_with_a_missing_or_odd_status(
    world: World, logs: Records, fields: dict[str, Any]
) -> None:
    after = {k: v for k, v in world.failed.items() if k != "status"} | fields
    after = {k: v for k, v in after.items() if v is not None}
    path = f"creations/{world.failed_id}"
    assert_acked_once_and_unchanged(
        world, logs, lambda: refund_event(world.chain, path, after), "ignored"
    )


@pytest.mark.parametrize(
    "fields", [{"cost": "three"}, {"cost": -3}, {"user_id": "alice/x"}, {"user_id": 7}], ids=repr
)
def test_refund_does_not_crash_on_a_stored_creation_with_odd_fields(
    world: World, logs: Records, fields: dict[str, Any]
) -> None:
    path = f"creations/{world.failed_id}"
    world.chain.db.document(path).update(fields)  # a hand edit, or an old version's write
    odd = world.chain.doc(world.failed_id)
    assert_acked_once_and_unchanged(
        world, logs, lambda: refund_event(world.chain, path, odd), "not_refundable"
    )


def test_a_duplicate_refund_event_pays_once(world: World, logs: Records) -> None:
    path = f"creations/{world.failed_id}"
    assert refund_event(world.chain, path, world.failed) == 200  # the refund itself
    assert world.chain.ledger.balance("alice") == 10 - 2  # the draft and the pending one
    assert_acked_once_and_unchanged(
        world, logs, lambda: refund_event(world.chain, path, world.failed), "already_refunded"
    )


@pytest.mark.parametrize(
    "event",
    [
        # A Pub/Sub message delivered to the Firestore trigger.
        CloudEvent(
            {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//x", "id": "1"},
            b"{}",
        ),
        # Bytes that are not a DocumentEventData.
        CloudEvent(
            {"type": "google.cloud.firestore.document.v1.updated", "source": "//x", "id": "2"},
            b"\xff\x00 not protobuf",
        ),
        # A DocumentEventData naming no document.
        CloudEvent(
            {"type": "google.cloud.firestore.document.v1.updated", "source": "//x", "id": "3"},
            b"",
        ),
    ],
    ids=["pubsub-type", "not-protobuf", "no-document"],
)
def test_refund_acks_an_event_it_cannot_decode(
    world: World, logs: Records, event: CloudEvent
) -> None:
    headers, body = to_binary(event)

    def send() -> int:
        return (
            world.chain.functions["refund"].post("/", data=body, headers=dict(headers)).status_code
        )

    assert_acked_once_and_unchanged(world, logs, send, "event dropped")


# --- sweep -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["bad-base64", "attributes-not-a-map", "data-not-a-string"])
def test_a_bad_sweep_tick_is_acked_once_and_changes_nothing(
    world: World, logs: Records, case: str
) -> None:
    message, reason = BAD_MESSAGES[case]
    assert_acked_once_and_unchanged(
        world, logs, lambda: post_push(world.chain, "sweep", message(world)), reason
    )


def test_a_repeated_sweep_tick_with_nothing_stuck_changes_nothing(
    world: World, logs: Records
) -> None:
    for _ in range(2):
        assert_acked_once_and_unchanged(
            world, logs, lambda: world.chain.deliver("sweep", {}, message_id="tick"), "sweep done"
        )


def test_the_sweep_skips_creations_with_no_status_or_odd_fields_and_sweeps_the_rest(
    world: World, load_chain: Callable[..., Chain], logs: Records
) -> None:
    db = world.chain.db
    failed = db.document(f"creations/{world.failed_id}")
    pending = world.chain.doc(world.pending["id"])
    no_status = {k: v for k, v in world.failed.items() if k != "status"}
    db.document("creations/no-status").set(no_status)  # no query matches it
    db.document("creations/odd-cost").set(world.failed | {"cost": "three"})
    db.document("creations/odd-requeues").set(pending | {"requeues": "two"})
    sweep = load_chain(
        "sweep",
        SWEEP_REFUND_AFTER_SECONDS="0.01",
        SWEEP_PENDING_AFTER_SECONDS="0.01",
        SWEEP_BATCH_SIZE="1",  # one per page: the odd ones come first on some pages
    )
    assert sweep.deliver("sweep", {}) == 200
    assert failed.get().get("refunded") is True  # the real failure was refunded
    assert world.chain.ledger.balance("alice") == 10 - 2
    assert db.document("creations/odd-cost").get().get("refunded") is False
    assert world.chain.doc(world.pending["id"])["requeues"] == 1  # swept, past the odd one
    skipped = [line for line in logs.lines() if "skipped" in line]
    assert len(skipped) == 1, skipped  # odd-requeues: its requeue count is not a number
