"""The whole chain as `make dev` runs it: every function its own functions-framework process,
Pub/Sub push subscriptions with dead letters, Firestore triggers through the router, the
scheduler driving the sweeper. Nothing is called directly: only HTTP to submit, then waiting."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.storage import Client as StorageClient

from shared.core.settings import Settings
from shared.media.probe import decode_check, probe
from shared.money.ledger import Ledger
from shared.store.firestore import FirestoreDocuments
from tools.stack.chain import FUNCTIONS, Knobs, LocalStack, default_functions
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet, free_port

WAIT_SECONDS = 60.0


@dataclass
class RunningStack:
    stack: LocalStack
    settings: Settings
    db: firestore.Client
    ledger: Ledger
    headers: Callable[[str], dict[str, str]]

    def submit(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            f"{self.stack.url('submit')}/v1/creations",
            json=body,
            headers=self.headers(user),
            timeout=30,
        )
        assert response.status_code == 202, response.text
        created: dict[str, Any] = response.json()
        return created

    def doc(self, creation_id: str) -> dict[str, Any]:
        return self.db.collection("creations").document(creation_id).get().to_dict() or {}

    def wait(
        self,
        creation_id: str,
        done: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = WAIT_SECONDS,
        *,
        watch_processes: bool = True,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            current = self.doc(creation_id)
            if done(current):
                return current
            if time.monotonic() >= deadline:
                pytest.fail(f"{what} not reached within {timeout:.0f} s: {current}")
            problem = self.stack.failure() if watch_processes else None
            assert problem is None, problem
            time.sleep(0.1)

    def assert_ledgers_balance(self) -> None:
        for user in self.db.collection("users").stream():
            tokens = (user.to_dict() or {}).get("tokens", 0)
            amounts = [
                int((e.to_dict() or {})["amount"])
                for e in user.reference.collection("ledger").stream()
            ]
            assert tokens == sum(amounts) >= 0, (user.id, tokens, amounts)


def start_stack(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    log_dir: Path,
    extra_env: dict[str, str],
) -> RunningStack:
    env = emulators.env()
    settings = Settings(
        gcp_project=f"demo-e2e-{uuid.uuid4().hex[:8]}",
        firestore_emulator_host=env["FIRESTORE_EMULATOR_HOST"],
        pubsub_emulator_host=env["PUBSUB_EMULATOR_HOST"],
        storage_emulator_host=env["STORAGE_EMULATOR_HOST"],
    )
    process_env = {
        **os.environ,
        **base_env,
        "OFFLINE_IMAGE_LONG_SIDE_PX": "256",
        "OFFLINE_VIDEO_LONG_SIDE_PX": "320",
        **extra_env,
    }
    stack = LocalStack(
        settings,
        default_functions({name: free_port() for name in FUNCTIONS}),
        router_port=emulators.functions_emulator_port or 0,
        log_dir=log_dir,
        env=process_env,
        knobs=Knobs(sweep_interval_seconds=1, retry_min_backoff_seconds=1),
    )
    stack.start()
    # The client library reads the emulator host when it is built; this fixture outlives the
    # per-test environment, so it must not leave the variable behind in os.environ.
    with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": env["FIRESTORE_EMULATOR_HOST"]}):
        db = firestore.Client(project=settings.gcp_project)
    return RunningStack(
        stack=stack,
        settings=settings,
        db=db,
        ledger=Ledger(FirestoreDocuments(db, settings), settings),
        headers=lambda uid: {"Authorization": f"Bearer {signer.mint(uid, settings.gcp_project)}"},
    )


@pytest.fixture(scope="module")
def chain(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningStack]:
    running = start_stack(emulators, base_env, signer, tmp_path_factory.mktemp("e2e"), {})
    try:
        yield running
    finally:
        running.stack.stop()


def test_image_and_video_reach_draft_with_media_in_storage(
    chain: RunningStack, tmp_path: Path
) -> None:
    chain.ledger.grant("ana", 20)
    image = chain.submit("ana", {"type": "image", "prompt": "a lighthouse", "count": 2})
    video = chain.submit("ana", {"type": "video", "prompt": "waves", "duration_seconds": 4})
    for created in (image, video):
        done = chain.wait(created["id"], lambda d: d.get("status") == "draft", "draft")
        assert done["progress"] == 100
    storage = StorageClient(
        project=chain.settings.gcp_project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": chain.settings.storage_emulator_host},
    )
    [clip] = chain.doc(video["id"])["media"]
    local = tmp_path / "clip.mp4"
    bucket = storage.bucket(chain.settings.media_bucket)
    bucket.blob(clip["uri"].split("/", 3)[3]).download_to_filename(local)
    assert abs(probe(local).duration_seconds - 4) < 0.2
    assert decode_check(local) > 0
    assert len(chain.doc(image["id"])["media"]) == 2
    assert chain.ledger.balance("ana") == 20 - image["cost"] - video["cost"]
    chain.assert_ledgers_balance()


def test_transient_failure_is_redelivered_by_pubsub_and_completes(chain: RunningStack) -> None:
    chain.ledger.grant("ben", 5)
    created = chain.submit("ben", {"type": "image", "prompt": "fog [fail:transient:2]"})
    done = chain.wait(created["id"], lambda d: d.get("status") == "draft", "draft")
    assert done["attempts"] == 3
    assert chain.ledger.balance("ben") == 5 - created["cost"]
    assert sorted(e["kind"] for e in chain.ledger.entries("ben")) == ["debit", "grant"]


def test_a_job_that_always_fails_is_dead_lettered_failed_and_refunded(chain: RunningStack) -> None:
    chain.ledger.grant("cy", 5)
    created = chain.submit("cy", {"type": "image", "prompt": "static [fail:transient]"})
    done = chain.wait(created["id"], lambda d: bool(d.get("refunded")), "refunded", 90)
    assert done["status"] == "failed"
    assert done["error"]["code"] in ("delivery_exhausted", "too_many_attempts")
    assert chain.ledger.balance("cy") == 5
    assert sorted(e["kind"] for e in chain.ledger.entries("cy")) == ["debit", "grant", "refund"]
    chain.assert_ledgers_balance()


def test_a_permanent_failure_is_refunded_through_the_firestore_trigger(
    chain: RunningStack,
) -> None:
    chain.ledger.grant("dee", 5)
    created = chain.submit("dee", {"type": "image", "prompt": "storm [fail:safety]"})
    done = chain.wait(created["id"], lambda d: bool(d.get("refunded")), "refunded")
    assert done["error"]["code"] == "safety_blocked"
    assert chain.ledger.balance("dee") == 5
