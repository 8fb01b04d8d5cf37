"""Malformed, foreign and duplicated events at every event entry point, through the real
functions-framework apps on the emulators.

Each is acked (a 2xx answer: Pub/Sub would otherwise redeliver it for days), logs exactly one
line saying why, and changes no document.
"""

from __future__ import annotations

import base64
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
from tests.support.events import push_body, topic_path

JOB_FUNCTIONS = ("generate", "stitch", "dead_letter")
# Every function fed by messages with a body of its own: the jobs, and the status stream.
MESSAGE_FUNCTIONS = (*JOB_FUNCTIONS, "refund")
EVERY_FUNCTION = (*MESSAGE_FUNCTIONS, "sweep")


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
    for function in JOB_FUNCTIONS:
        assert chain.deliver(function, gone) == 200
    assert chain.deliver("refund", {**gone, "status": "failed"}) == 200
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


def status_event(world: World, creation_id: str, **fields: Any) -> Callable[[], int]:
    """Sending `refund` the status event of a creation of alice's image (as announced, with
    `fields` changed)."""
    event = {"creation_id": creation_id, "user_id": "alice", "type": "image", "status": "failed"}
    return lambda: world.chain.deliver("refund", event | fields)


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


def reason_for(function: str, reason: str) -> str:
    """What `function` says of a message that is not one it takes."""
    return reason.replace("not a job", "not a status event") if function == "refund" else reason


# --- Pub/Sub entry points: generate, stitch, dead_letter, refund ----------------------------


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


@pytest.mark.parametrize("function", MESSAGE_FUNCTIONS)
@pytest.mark.parametrize("case", sorted(BAD_MESSAGES))
def test_a_bad_message_is_acked_once_and_changes_nothing(
    world: World, logs: Records, function: str, case: str
) -> None:
    message, reason = BAD_MESSAGES[case]
    assert_acked_once_and_unchanged(
        world,
        logs,
        lambda: post_push(world.chain, function, message(world)),
        reason_for(function, reason),
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


# --- refund: status events -----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"user_id": "mallory"}, {"type": "video"}, {"status": "deleting"}],
    ids=["another-owner", "another-type", "not-marked"],
)
def test_refund_acts_on_the_document_not_on_what_an_event_claims(
    world: World, logs: Records, fields: dict[str, Any]
) -> None:
    # The failed creation is owed a refund, but not to mallory, and not as a video; a
    # `deleting` event for a creation no DELETE marked deletes nothing (it is refunded, though:
    # it is failed and owed it, which is the document's truth).
    if fields.get("status") == "deleting":
        assert status_event(world, world.failed_id, **fields)() == 200
        assert world.chain.doc(world.failed_id)["refunded"] is True
        return
    assert_acked_once_and_unchanged(
        world, logs, status_event(world, world.failed_id, **fields), "ignored"
    )


def test_refund_acks_an_event_for_a_creation_that_is_gone_with_one_line(
    world: World, logs: Records
) -> None:
    assert_acked_once_and_unchanged(world, logs, status_event(world, "long-gone"), "deleted")


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
def test_refund_ignores_a_creation_with_a_missing_or_odd_status(
    world: World, logs: Records, fields: dict[str, Any]
) -> None:
    document = world.chain.db.document(f"creations/{world.failed_id}")
    odd = {k: v for k, v in fields.items() if v is not None}
    document.update(odd or {"status": firestore.DELETE_FIELD})  # a hand edit
    assert_acked_once_and_unchanged(world, logs, status_event(world, world.failed_id), "ignored")


@pytest.mark.parametrize(
    "fields", [{"cost": "three"}, {"cost": -3}, {"user_id": "alice/x"}, {"user_id": 7}], ids=repr
)
def test_refund_does_not_crash_on_a_stored_creation_with_odd_fields(
    world: World, logs: Records, fields: dict[str, Any]
) -> None:
    world.chain.db.document(f"creations/{world.failed_id}").update(fields)  # a hand edit
    expected = "ignored" if "user_id" in fields else "not_refundable"
    assert_acked_once_and_unchanged(world, logs, status_event(world, world.failed_id), expected)


def test_a_duplicate_status_event_pays_once(world: World, logs: Records) -> None:
    assert status_event(world, world.failed_id)() == 200  # the refund itself
    assert world.chain.ledger.balance("alice") == 10 - 2  # the draft and the pending one
    assert_acked_once_and_unchanged(
        world, logs, status_event(world, world.failed_id), "nothing_to_do"
    )


def test_refund_acks_a_firestore_event_it_does_not_take(world: World, logs: Records) -> None:
    # What Eventarc sent the Firestore trigger refund had before the status stream.
    event = CloudEvent(
        {"type": "google.cloud.firestore.document.v1.updated", "source": "//x", "id": "2"},
        b"\xff\x00 not protobuf",
    )
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
