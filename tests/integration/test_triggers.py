"""The local event chain (`tools.stack.chain`) on the real emulators, with stand-in functions.

Every function here is tests/support/functions/record_event.py run by functions-framework in
its own process, as `make dev` runs the real ones; it writes down each CloudEvent exactly as it
arrived, so these tests check what production's platform would deliver: Firestore document
events from Eventarc (binary mode, protobuf `DocumentEventData`) and Pub/Sub pushes.

Each stack gets a project of its own: the emulator keeps trigger registrations for its whole
life (there is no call to remove one), and one test's subscriptions must not feed another's.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import firestore, pubsub_v1
from google.events.cloud.firestore import DocumentEventData

from shared.core.settings import Settings
from shared.money.ledger import Ledger
from shared.store.firestore import FirestoreDocuments
from tests.support.paths import REPO
from tools.stack import waiting
from tools.stack.chain import (
    FUNCTIONS,
    FunctionSpec,
    Knobs,
    LocalStack,
    TriggerRoute,
    Wiring,
    default_functions,
    default_wiring,
)
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.processes import free_port, port_is_free
from tools.stack.triggers import FIRESTORE_EVENT_PREFIX, FirestoreTrigger
from tools.stack.waiting import wait_until

FIRESTORE_DOCUMENT_UPDATED = "google.cloud.firestore.document.v1.updated"
RECORDER = REPO / "tests" / "support" / "functions" / "record_event.py"
WAIT_SECONDS = 30.0

Record = dict[str, Any]


def project_settings(emulators: EmulatorSet) -> Settings:
    env = emulators.env()
    return Settings(
        gcp_project=f"demo-chain-{uuid.uuid4().hex[:8]}",
        firestore_emulator_host=env["FIRESTORE_EMULATOR_HOST"],
        pubsub_emulator_host=env["PUBSUB_EMULATOR_HOST"],
        storage_emulator_host=env["STORAGE_EMULATOR_HOST"],
    )


def recorders(*names: str) -> list[FunctionSpec]:
    """Stand-in functions: each `name` runs the recorder's target of the same name."""
    return [FunctionSpec(name, name, RECORDER, free_port()) for name in names]


def make_stack(
    emulators: EmulatorSet,
    settings: Settings,
    record_dir: Path,
    functions: list[FunctionSpec],
    wiring: Wiring,
    knobs: Knobs | None = None,
) -> LocalStack:
    if emulators.functions_emulator_port is None:
        raise RuntimeError("the session's Firestore emulator was started without triggers")
    return LocalStack(
        settings,
        functions,
        router_port=emulators.functions_emulator_port,
        log_dir=record_dir / "logs",
        env={**os.environ, "RECORD_DIR": str(record_dir), "LOG_LEVEL": "WARNING"},
        wiring=wiring,
        knobs=knobs,
    )


def records(record_dir: Path, target: str) -> list[Record]:
    folder = record_dir / target
    if not folder.is_dir():
        return []
    found = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    return sorted(found, key=lambda r: str(r["attributes"].get("time", "")))


def wait_for(
    record_dir: Path,
    target: str,
    predicate: Callable[[list[Record]], bool],
    what: str,
    timeout: float = WAIT_SECONDS,
) -> list[Record]:
    """Poll the recorder's folder until `predicate(records)` holds; fail after `timeout`."""
    try:
        return waiting.wait_for(lambda: records(record_dir, target), predicate, timeout, what)
    except TimeoutError as exc:
        pytest.fail(f"{target}: {exc}")


def event_data(record: Record) -> Any:
    """The record's body parsed as production's `DocumentEventData` (the official sample's way)."""
    data = DocumentEventData()
    data._pb.ParseFromString(base64.b64decode(record["data_b64"]))
    return data


def message_json(record: Record) -> Any:
    return json.loads(base64.b64decode(record["data"]["message"]["data"]))


# --- Firestore triggers ---------------------------------------------------------------------


def test_a_document_update_reaches_the_function_as_eventarc_delivers_it(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    # GIVEN the production trigger (updated on creations/{id}) routed to a recorder
    settings = project_settings(emulators)
    trigger = FirestoreTrigger("creations-refund", FIRESTORE_DOCUMENT_UPDATED, "creations/{id}")
    wiring = Wiring(triggers=(TriggerRoute(trigger, "refund"),))
    db = firestore.Client(project=settings.gcp_project)
    ref = db.collection("creations").document("c-1")

    with make_stack(emulators, settings, tmp_path, recorders("refund"), wiring):
        # WHEN a creation is made, then updated (a top-level field, a nested one, a new one)
        ref.set({"status": "pending", "progress": 0, "request": {"prompt": "a", "count": 2}})
        ref.update(
            {
                "status": "failed",
                "request.prompt": "b",
                "error": {"code": "provider_error", "message": "no"},
            }
        )
        got = wait_for(tmp_path, "refund", lambda r: len(r) >= 1, "the update event")

    # THEN exactly one event came (the create does not match an `updated` trigger) ...
    assert len(got) == 1
    attributes = got[0]["attributes"]
    # ... in binary mode with production's attributes, `source` included
    assert attributes["specversion"] == "1.0"
    assert attributes["type"] == FIRESTORE_DOCUMENT_UPDATED
    assert attributes["source"] == (
        f"//firestore.googleapis.com/projects/{settings.gcp_project}/databases/(default)"
    )
    assert attributes["subject"] == "documents/creations/c-1"
    assert attributes["datacontenttype"] == "application/protobuf"
    assert attributes["id"]
    assert attributes["time"]
    assert attributes["document"] == "creations/c-1"
    assert attributes["database"] == attributes["namespace"] == "(default)"
    assert attributes["project"] == settings.gcp_project
    # ... and a raw protobuf body that parses as DocumentEventData
    data = event_data(got[0])
    name = f"projects/{settings.gcp_project}/databases/(default)/documents/creations/c-1"
    assert data.value.name == data.old_value.name == name
    assert data.value.fields["status"].string_value == "failed"
    assert data.old_value.fields["status"].string_value == "pending"
    assert data.value.fields["request"].map_value.fields["prompt"].string_value == "b"
    assert data.value.fields["request"].map_value.fields["count"].integer_value == 2
    assert "error" not in data.old_value.fields
    assert sorted(data.update_mask.field_paths) == ["error", "request.prompt", "status"]


def test_created_written_and_deleted_triggers_fire_too(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    settings = project_settings(emulators)
    wiring = Wiring(
        triggers=tuple(
            TriggerRoute(
                FirestoreTrigger(f"t-{kind}", FIRESTORE_EVENT_PREFIX + kind, "creations/{id}"),
                "record",
            )
            for kind in ("created", "written", "deleted")
        )
    )
    ref = firestore.Client(project=settings.gcp_project).collection("creations").document("c-2")

    with make_stack(emulators, settings, tmp_path, recorders("record"), wiring):
        ref.set({"status": "pending"})
        ref.update({"status": "processing"})
        ref.delete()
        # created + deleted + one `written` for each of the three writes
        got = wait_for(tmp_path, "record", lambda r: len(r) >= 5, "five events")

    by_type: dict[str, list[Any]] = {}
    for record in got:
        assert record["attributes"]["source"].startswith("//firestore.googleapis.com/projects/")
        by_type.setdefault(record["attributes"]["type"], []).append(event_data(record))
    kinds = {t.removeprefix(FIRESTORE_EVENT_PREFIX): len(v) for t, v in by_type.items()}
    assert kinds == {"created": 1, "written": 3, "deleted": 1}
    (created,) = by_type[FIRESTORE_EVENT_PREFIX + "created"]
    assert created.value.fields["status"].string_value == "pending"
    assert not created._pb.HasField("old_value")
    (deleted,) = by_type[FIRESTORE_EVENT_PREFIX + "deleted"]
    assert not deleted._pb.HasField("value")
    assert deleted.old_value.fields["status"].string_value == "processing"
    written_updates = [
        w for w in by_type[FIRESTORE_EVENT_PREFIX + "written"] if w._pb.HasField("old_value")
    ]
    masks = [list(w.update_mask.field_paths) for w in written_updates if w._pb.HasField("value")]
    assert masks == [["status"]]


# --- Pub/Sub pushes, dead letters and the scheduler (production wiring) -----------------------


@pytest.fixture(scope="module")
def chain(
    emulators: EmulatorSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalStack, Path]]:
    """The production Pub/Sub wiring with every function a recorder; fast retries and clock.

    Without the Firestore trigger: the emulator has one trigger port, and the trigger tests'
    stacks need it while this one lives.
    """
    settings = project_settings(emulators).model_copy(update={"max_delivery_attempts": 5})
    record_dir = tmp_path_factory.mktemp("chain")
    production = default_wiring(settings)
    knobs = Knobs(
        sweep_interval_seconds=0.5, retry_min_backoff_seconds=0.1, retry_max_backoff_seconds=0.5
    )
    stack = make_stack(
        emulators,
        settings,
        record_dir,
        recorders("generate", "stitch", "dead_letter", "sweep", "refund", "webhooks"),
        Wiring(pushes=production.pushes, schedule_topic=production.schedule_topic),
        knobs,
    )
    with stack:
        yield stack, record_dir


def publish(settings: Settings, topic: str, payload: dict[str, Any], **attributes: str) -> str:
    publisher = pubsub_v1.PublisherClient()
    future = publisher.publish(
        publisher.topic_path(settings.gcp_project, topic),
        json.dumps(payload).encode(),
        **attributes,
    )
    return str(future.result(timeout=10))


def test_a_job_message_is_pushed_as_a_pubsub_cloud_event(chain: tuple[LocalStack, Path]) -> None:
    stack, record_dir = chain
    settings = stack.settings
    marker = uuid.uuid4().hex

    message_id = publish(settings, settings.generate_topic, {"marker": marker}, type="image")

    got = wait_for(
        record_dir,
        "generate",
        lambda rs: any(message_json(r).get("marker") == marker for r in rs),
        "the job message",
    )
    (record,) = [r for r in got if message_json(r).get("marker") == marker]
    attributes = record["attributes"]
    assert attributes["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert attributes["source"] == (
        f"//pubsub.googleapis.com/projects/{settings.gcp_project}/topics/{settings.generate_topic}"
    )
    assert attributes["id"] == message_id
    assert record["data"]["message"]["attributes"] == {"type": "image"}


def test_a_status_event_reaches_each_of_its_subscribers(chain: tuple[LocalStack, Path]) -> None:
    """refund and webhooks each have their own subscription to the one status stream."""
    stack, record_dir = chain
    settings = stack.settings
    marker = uuid.uuid4().hex
    publish(settings, settings.status_topic, {"marker": marker}, status="draft", webhook="1")
    for target in ("refund", "webhooks"):
        got = wait_for(
            record_dir,
            target,
            lambda rs: any(message_json(r).get("marker") == marker for r in rs),
            "the status event",
        )
        (record,) = [r for r in got if message_json(r).get("marker") == marker]
        assert record["attributes"]["source"].endswith(f"/topics/{settings.status_topic}")
        assert record["data"]["message"]["attributes"]["webhook"] == "1"


def test_a_job_that_keeps_failing_is_dead_lettered(chain: tuple[LocalStack, Path]) -> None:
    stack, record_dir = chain
    settings = stack.settings
    marker = uuid.uuid4().hex

    publish(settings, settings.generate_topic, {"marker": marker, "fail": True})

    dead = wait_for(
        record_dir,
        "dead_letter",
        lambda rs: any(message_json(r).get("marker") == marker for r in rs),
        "the dead-lettered job",
    )
    (record,) = [r for r in dead if message_json(r).get("marker") == marker]
    assert record["attributes"]["source"] == (
        f"//pubsub.googleapis.com/projects/{settings.gcp_project}"
        f"/topics/{settings.dead_letter_topic}"
    )
    attributes = record["data"]["message"]["attributes"]
    assert attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(
        settings.max_delivery_attempts
    )
    assert attributes["CloudPubSubDeadLetterSourceSubscription"] == (
        f"{settings.generate_topic}-push"
    )
    attempts = [
        r for r in records(record_dir, "generate") if message_json(r).get("marker") == marker
    ]
    assert len(attempts) == settings.max_delivery_attempts


def test_the_scheduler_ticks_reach_the_sweeper(chain: tuple[LocalStack, Path]) -> None:
    stack, record_dir = chain
    settings = stack.settings
    before = len(records(record_dir, "sweep"))

    got = wait_for(record_dir, "sweep", lambda rs: len(rs) >= before + 2, "two scheduler ticks")

    for record in got:
        assert record["attributes"]["source"] == (
            f"//pubsub.googleapis.com/projects/{settings.gcp_project}/topics/{settings.sweep_topic}"
        )
        assert message_json(record) == {}


# --- lifecycle ----------------------------------------------------------------------------------


def test_stop_removes_what_start_made_and_a_dead_function_is_reported(
    emulators: EmulatorSet, tmp_path: Path
) -> None:
    settings = project_settings(emulators)
    functions = recorders("sweep", "refund")
    production = default_wiring(settings)
    wiring = Wiring(
        pushes=tuple(p for p in production.pushes if p.function == "sweep"),
        triggers=production.triggers,
    )
    stack = make_stack(emulators, settings, tmp_path, functions, wiring)
    subscriber = pubsub_v1.SubscriberClient()
    project_path = f"projects/{settings.gcp_project}"

    def push_subscriptions() -> list[str]:
        return [
            s.name
            for s in subscriber.list_subscriptions(project=project_path)
            if s.push_config.push_endpoint
        ]

    stack.start()
    try:
        assert push_subscriptions() == [f"{project_path}/subscriptions/{settings.sweep_topic}-push"]
        assert stack.failure() is None
        pid = stack.processes["refund"].pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        failure = wait_until(stack.failure, WAIT_SECONDS, "the dead function is noticed")
        assert "the refund function" in failure
    finally:
        stack.stop()

    assert push_subscriptions() == []
    assert all(port_is_free(f.port) for f in functions)
    assert port_is_free(stack.router_port)


# --- the real functions -------------------------------------------------------------------------


def test_the_real_chain_makes_a_draft_and_refunds_a_failure(
    emulators: EmulatorSet, base_env: dict[str, str], signer: DevSigner, tmp_path: Path
) -> None:
    """submit -> Pub/Sub push -> generate -> draft; a failure -> status stream -> refund."""
    settings = project_settings(emulators)
    stack = LocalStack(
        settings,
        default_functions({name: free_port() for name in FUNCTIONS}),
        router_port=emulators.functions_emulator_port or 0,
        log_dir=tmp_path,
        env={**os.environ, **base_env, "OFFLINE_IMAGE_LONG_SIDE_PX": "256"},
        knobs=Knobs(sweep_interval_seconds=0),
    )
    user = "e2e-user"
    headers = {"Authorization": f"Bearer {signer.mint(user, settings.gcp_project)}"}
    db = firestore.Client(project=settings.gcp_project)
    ledger = Ledger(FirestoreDocuments(db, settings), settings)

    with stack:
        ledger.grant(user, 10)

        def submit(prompt: str) -> dict[str, Any]:
            response = requests.post(
                f"{stack.url('submit')}/v1/creations",
                json={"type": "image", "prompt": prompt},
                headers=headers,
                timeout=10,
            )
            assert response.status_code == 202, response.text
            created: dict[str, Any] = response.json()
            return created

        good = submit("a lighthouse at dusk")
        bad = submit("a storm [fail:permanent]")

        def settled() -> dict[str, dict[str, Any]]:
            docs = {
                c["id"]: db.collection("creations").document(c["id"]).get() for c in (good, bad)
            }
            return {key: doc.to_dict() or {} for key, doc in docs.items()}

        def done(state: dict[str, dict[str, Any]]) -> bool:
            good_done = state[good["id"]].get("status") == "draft"
            return good_done and bool(state[bad["id"]].get("refunded"))

        state = waiting.wait_for(
            settled, done, WAIT_SECONDS, "the chain settles: a draft and a refund", interval=0.1
        )

    assert state[good["id"]]["media"][0]["uri"].startswith(f"gs://{settings.media_bucket}/")
    assert state[bad["id"]]["status"] == "failed"
    assert state[bad["id"]]["error"]["code"] == "provider_error"
    assert ledger.balance(user) == 10 - good["cost"]
    # Both moves were announced on the status stream (its tap keeps a copy), which is what
    # fed refund: no Firestore trigger is wired any more.
    assert stack.wiring.triggers == ()
    subscriber = pubsub_v1.SubscriberClient()
    tap = subscriber.subscription_path(settings.gcp_project, f"{settings.status_topic}-tap")
    told: set[tuple[str, str]] = set()

    def both_told() -> bool:
        pulled = subscriber.pull(subscription=tap, max_messages=50, timeout=10)
        for received in pulled.received_messages:
            event = json.loads(received.message.data)
            told.add((event["creation_id"], event["status"]))
        return {(good["id"], "draft"), (bad["id"], "failed")} <= told

    wait_until(both_told, WAIT_SECONDS, "both moves on the status stream's tap")
