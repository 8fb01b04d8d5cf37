"""generate, refund, dead_letter and sweep, driven through functions-framework with the events
the platform sends (Pub/Sub push bodies, binary Firestore CloudEvents), on the emulators."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app
from google.cloud import firestore
from google.cloud.storage import Bucket
from PIL import Image

from shared.core.settings import Settings, load_settings
from shared.creations.claims import Claim, ClaimStore
from shared.creations.requests import ImageRequest
from shared.intake.submission import SubmissionService
from shared.media.probe import probe
from shared.money.ledger import Ledger
from shared.money.refunds import Refunds
from shared.store.documents import Documents
from tests.support.chain import PROJECT, deliver, doc, job_of, kinds, settle, submit
from tests.support.contract import ContractClient
from tests.support.events import push_body, topic_path
from tests.support.media import decode_check
from tests.support.paths import REPO

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def functions(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, FlaskClient]:
    # Small, fast media and a short lease so the tests exercise the real code quickly.
    monkeypatch.setenv("OFFLINE_IMAGE_LONG_SIDE_PX", "256")
    monkeypatch.setenv("OFFLINE_VIDEO_LONG_SIDE_PX", "320")
    load_settings.cache_clear()
    sources = {
        "generate": "functions/generate/main.py",
        "refund": "functions/refund/main.py",
        "dead_letter": "functions/dead_letter/main.py",
        "sweep": "functions/sweep/main.py",
    }
    return {
        target: create_app(target, str(REPO / source)).test_client()
        for target, source in sources.items()
    }


def run_sweep(settings: Settings) -> int:
    """One scheduler tick: the sweep function, loaded now (so with the settings of now)."""
    sweep_app = create_app("sweep", str(REPO / "functions/sweep/main.py")).test_client()
    body = push_body(PROJECT, "sweep-push", {})
    return int(sweep_app.post(topic_path(PROJECT, settings.sweep_topic), json=body).status_code)


def download(bucket: Bucket, uri: str, tmp_path: Path) -> Path:
    name = uri.removeprefix(f"gs://{bucket.name}/")
    target = tmp_path / Path(name).name
    bucket.blob(name).download_to_filename(str(target))
    return target


# --- generate -------------------------------------------------------------------------------


def test_image_reaches_draft_with_media_that_decodes(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    ledger.grant("alice", 10)
    created = submit(
        api,
        auth,
        "alice",
        {"type": "image", "prompt": "a red fox", "count": 2, "aspect_ratio": "16:9"},
    )
    assert deliver(functions, "generate", stack.generate_topic, job_of(created)) == 200
    creation = doc(db, created["id"])
    assert creation["status"] == "draft"
    assert creation["progress"] == 100
    assert creation["completed_at"] is not None
    assert len(creation["media"]) == 2
    for item in creation["media"]:
        assert item["content_type"] == "image/png"
        with Image.open(download(bucket, item["uri"], tmp_path)) as image:
            image.load()
            assert image.size == (item["width"], item["height"])
            assert item["width"] > item["height"]  # 16:9
        assert item["bytes"] > 0
    assert settle(functions, db, created["id"]) == 200
    assert kinds(ledger, "alice") == ["debit", "grant"]  # a draft is never refunded


def test_video_reaches_draft_with_an_mp4_that_decodes(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    ledger.grant("alice", 10)
    created = submit(
        api, auth, "alice", {"type": "video", "prompt": "waves", "duration_seconds": 4}
    )
    assert deliver(functions, "generate", stack.generate_topic, job_of(created)) == 200
    creation = doc(db, created["id"])
    assert creation["status"] == "draft", creation.get("error")
    [item] = creation["media"]
    assert item["content_type"] == "video/mp4"
    path = download(bucket, item["uri"], tmp_path)
    found = probe(path)
    assert found.video_codec == "h264"
    assert abs(found.duration_seconds - 4) < 0.2
    assert (found.width, found.height) == (item["width"], item["height"])
    assert decode_check(path) > 0
    assert abs(item["duration_seconds"] - 4) < 0.2


def test_permanent_failure_ends_failed_and_refunded_once(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "storm [fail:permanent]"})
    assert deliver(functions, "generate", stack.generate_topic, job_of(created)) == 200  # acked
    creation = doc(db, created["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "provider_error"
    assert creation["error"]["message"]
    for _ in range(3):  # the trigger may fire more than once
        assert settle(functions, db, created["id"]) == 200
    assert doc(db, created["id"])["refunded"] is True
    assert ledger.balance("alice") == 10
    assert kinds(ledger, "alice") == ["debit", "grant", "refund"]


def test_safety_block_has_its_own_code(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "x [fail:safety]"})
    assert deliver(functions, "generate", stack.generate_topic, job_of(created)) == 200
    assert doc(db, created["id"])["error"]["code"] == "safety_blocked"
    settle(functions, db, created["id"])
    assert ledger.balance("alice") == 10


def test_transient_failure_is_redelivered_then_drafts_with_one_debit(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "fog [fail:transient:1]"})
    job = job_of(created)
    assert deliver(functions, "generate", stack.generate_topic, job, message_id="m1") == 500
    after_first = doc(db, created["id"])
    assert after_first["status"] == "processing"
    assert deliver(functions, "generate", stack.generate_topic, job, message_id="m1") == 200
    creation = doc(db, created["id"])
    assert creation["status"] == "draft"
    assert creation["attempts"] == 2
    settle(functions, db, created["id"])
    assert kinds(ledger, "alice") == ["debit", "grant"]
    assert ledger.balance("alice") == 9


def test_same_message_three_times_makes_one_media_set_and_one_debit(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
    bucket: Bucket,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "a kite", "count": 2})
    for _ in range(3):
        assert (
            deliver(functions, "generate", stack.generate_topic, job_of(created), message_id="same")
            == 200
        )
    creation = doc(db, created["id"])
    assert creation["status"] == "draft"
    assert creation["attempts"] == 1
    objects = list(bucket.client.list_blobs(bucket.name, prefix=f"media/alice/{created['id']}/"))
    assert len(objects) == 2
    assert kinds(ledger, "alice") == ["debit", "grant"]


def test_job_for_a_creation_under_a_live_lease_is_acked_without_work(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
    documents: Documents,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "a kite"})
    claim = ClaimStore(documents, stack).claim(created["id"])  # another worker holds it
    assert isinstance(claim, Claim)
    assert deliver(functions, "generate", stack.generate_topic, job_of(created)) == 200
    creation = doc(db, created["id"])
    assert creation["status"] == "processing"
    assert creation["attempts"] == 1


def test_a_canceled_creation_is_not_generated(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "a kite"})
    api.post(f"/v1/creations/{created['id']}:cancel", headers=auth("alice"))
    assert deliver(functions, "generate", stack.generate_topic, job_of(created)) == 200
    assert doc(db, created["id"])["status"] == "canceled"
    settle(functions, db, created["id"])
    assert ledger.balance("alice") == 10


def test_a_malformed_message_is_acked_and_changes_nothing(
    functions: dict[str, FlaskClient], stack: Settings
) -> None:
    assert deliver(functions, "generate", stack.generate_topic, {"not": "a job"}) == 200


# --- dead letters ---------------------------------------------------------------------------


def test_dead_lettered_job_fails_the_creation_and_the_refund_follows(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "a kite"})
    attributes = {"CloudPubSubDeadLetterSourceDeliveryCount": "5"}
    for _ in range(2):  # a duplicate dead letter changes nothing more
        assert (
            deliver(
                functions,
                "dead_letter",
                stack.dead_letter_topic,
                job_of(created),
                attributes=attributes,
            )
            == 200
        )
    creation = doc(db, created["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "delivery_exhausted"
    settle(functions, db, created["id"])
    assert ledger.balance("alice") == 10
    assert kinds(ledger, "alice") == ["debit", "grant", "refund"]


def test_dead_letter_for_a_draft_leaves_it_alone(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "a kite"})
    deliver(functions, "generate", stack.generate_topic, job_of(created))
    assert deliver(functions, "dead_letter", stack.dead_letter_topic, job_of(created)) == 200
    assert doc(db, created["id"])["status"] == "draft"
    settle(functions, db, created["id"])
    assert ledger.balance("alice") == 9


# --- sweeper --------------------------------------------------------------------------------


def test_a_creation_whose_publish_was_lost_is_swept_and_completed(
    auth: Auth,
    ledger: Ledger,
    refunds: Refunds,
    documents: Documents,
    db: firestore.Client,
    functions: dict[str, FlaskClient],
    stack: Settings,
    monkeypatch: pytest.MonkeyPatch,
    topic_messages: Callable[..., list[Any]],
) -> None:
    class LostPublisher:
        def publish(self, job: object, *, topic: str) -> str:
            return "lost"  # the process "died" after the commit: nothing was published

    ledger.grant("alice", 10)
    service = SubmissionService(
        documents, stack, ledger=ledger, refunds=refunds, publisher=LostPublisher()
    )
    accepted = service.submit(
        user_id="alice",
        request=ImageRequest(
            prompt="lost", model=stack.default_image_model, aspect_ratio="1:1", count=1
        ),
        cost=1,
        idempotency_key=None,
        fingerprint="f",
    )
    monkeypatch.setenv("SWEEP_PENDING_AFTER_SECONDS", "0.01")
    load_settings.cache_clear()
    assert run_sweep(stack) == 200
    [message] = topic_messages(stack.generate_topic)
    job = json.loads(message.message.data)
    assert job["creation_id"] == accepted.creation.id
    assert deliver(functions, "generate", stack.generate_topic, job) == 200
    assert doc(db, accepted.creation.id)["status"] == "draft"
    assert doc(db, accepted.creation.id)["requeues"] == 1


def test_sweeper_refunds_a_failure_whose_trigger_was_lost(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    monkeypatch: pytest.MonkeyPatch,
    functions: dict[str, FlaskClient],
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "x [fail:permanent]"})
    deliver(functions, "generate", stack.generate_topic, job_of(created))
    assert ledger.balance("alice") == 9  # failed, but the refund trigger never came
    monkeypatch.setenv("SWEEP_REFUND_AFTER_SECONDS", "0.01")
    load_settings.cache_clear()
    assert run_sweep(stack) == 200
    assert ledger.balance("alice") == 10
    assert doc(db, created["id"])["refunded"] is True


def test_an_expired_lease_is_requeued_and_then_exhausted_attempts_fail(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    monkeypatch: pytest.MonkeyPatch,
    functions: dict[str, FlaskClient],
    topic_messages: Callable[..., list[Any]],
) -> None:
    import datetime as dt

    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "a kite"})
    topic_messages(stack.generate_topic)  # drain submit's own message
    # A worker claimed it and died: its lease expired a minute ago, attempts are used up.
    db.collection("creations").document(created["id"]).update(
        {
            "status": "processing",
            "attempts": stack.max_generation_attempts,
            "lease_owner": "dead-worker",
            "lease_expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        }
    )
    assert run_sweep(stack) == 200
    [message] = topic_messages(stack.generate_topic)
    assert (
        deliver(functions, "generate", stack.generate_topic, json.loads(message.message.data))
        == 200
    )
    creation = doc(db, created["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "too_many_attempts"
    settle(functions, db, created["id"])
    assert ledger.balance("alice") == 10
