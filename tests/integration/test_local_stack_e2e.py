"""The whole chain as `make dev` runs it: every function its own functions-framework process,
Pub/Sub push subscriptions with dead letters, Firestore triggers through the router, the
scheduler driving the sweeper. Nothing is called directly: only HTTP to submit, then waiting."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client as StorageClient
from PIL import Image

from shared.media.probe import probe
from tests.support.media import decode_check, download, first_frame, picture_difference
from tests.support.stack import RunningStack, start_stack
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet


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
    local = download(storage.bucket(chain.settings.media_bucket), clip["uri"], tmp_path)
    assert abs(probe(local).duration_seconds - 4) < 0.2
    assert decode_check(local) > 0
    assert len(chain.doc(image["id"])["media"]) == 2
    assert chain.ledger.balance("ana") == 20 - image["cost"] - video["cost"]
    chain.assert_ledgers_balance()


def test_a_video_from_an_image_draft_starts_from_that_image(
    chain: RunningStack, tmp_path: Path
) -> None:
    chain.ledger.grant("vida", 20)
    image = chain.submit("vida", {"type": "image", "prompt": "a lighthouse"})
    chain.wait(image["id"], lambda d: d.get("status") == "draft", "draft")
    body = {"type": "video", "prompt": "closer", "image": image["id"], "duration_seconds": 4}
    video = chain.submit("vida", body)
    done = chain.wait(video["id"], lambda d: d.get("status") in ("draft", "failed"), "final")
    assert done["status"] == "draft", done.get("error")
    storage = StorageClient(
        project=chain.settings.gcp_project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": chain.settings.storage_emulator_host},
    )
    bucket = storage.bucket(chain.settings.media_bucket)
    [picture] = chain.doc(image["id"])["media"]
    [clip] = done["media"]
    local = download(bucket, clip["uri"], tmp_path)
    assert abs(probe(local).duration_seconds - 4) < 0.2
    source = Image.open(download(bucket, picture["uri"], tmp_path))
    assert picture_difference(first_frame(local), source) < 6.0  # the picture itself


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


def test_four_images_with_one_withheld_end_draft_with_three_and_one_token_back(
    chain: RunningStack,
) -> None:
    chain.ledger.grant("eve", 5)
    created = chain.submit("eve", {"type": "image", "prompt": "koi [withhold:1]", "count": 4})
    assert created["cost"] == 4
    done = chain.wait(created["id"], lambda d: d.get("status") == "draft", "draft")
    assert len(done["media"]) == 3
    assert (done["partial"]["asked"], done["partial"]["made"], done["partial"]["refund"]) == (
        4,
        3,
        1,
    )
    assert "withheld" in done["partial"]["reason"]
    assert done["refunded"] is False
    entries = chain.ledger.entries("eve")
    assert sorted((e["id"], e["amount"]) for e in entries if e["kind"] == "refund") == [
        (f"refund:{created['id']}:partial", 1)
    ]
    assert chain.ledger.balance("eve") == 5 - 4 + 1
    shown = requests.get(
        f"{chain.stack.url('submit')}/v1/creations/{created['id']}",
        headers=chain.headers("eve"),
        timeout=30,
    )
    assert shown.status_code == 200
    assert shown.json()["partial"] == done["partial"]
    chain.assert_ledgers_balance()
