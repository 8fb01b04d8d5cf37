"""Reel Maker: `POST /v1/reels` and the `stitch` function, with real ffmpeg on the emulators."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from functions_framework import create_app
from google.cloud import firestore
from google.cloud.storage import Bucket

from shared.core.settings import Settings, load_settings
from shared.media.probe import probe
from shared.money.ledger import Ledger
from tests.support.chain import deliver, doc, job_of, settle
from tests.support.contract import ContractClient
from tests.support.media import decode_check
from tests.support.paths import REPO

Auth = Callable[[str], dict[str, str]]


@pytest.fixture
def functions(stack: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, FlaskClient]:
    monkeypatch.setenv("OFFLINE_VIDEO_LONG_SIDE_PX", "320")
    load_settings.cache_clear()
    sources = {
        "generate": "functions/generate/main.py",
        "stitch": "functions/stitch/main.py",
        "refund": "functions/refund/main.py",
    }
    return {t: create_app(t, str(REPO / s)).test_client() for t, s in sources.items()}


def make_clip(
    api: ContractClient,
    auth: Auth,
    functions: dict[str, FlaskClient],
    stack: Settings,
    user: str,
    aspect_ratio: str = "16:9",
    seconds: int = 4,
) -> str:
    response = api.post(
        "/v1/creations",
        headers=auth(user),
        json={
            "type": "video",
            "prompt": f"clip {aspect_ratio}",
            "aspect_ratio": aspect_ratio,
            "duration_seconds": seconds,
        },
    )
    assert response.status_code == 202
    created = response.json or {}
    assert deliver(functions, "generate", stack.generate_topic, job_of(created)) == 200
    return str(created["id"])


def order_reel(api: ContractClient, auth: Auth, user: str, clips: list[str]) -> dict[str, Any]:
    response = api.post("/v1/reels", json={"clips": clips, "title": "my reel"}, headers=auth(user))
    assert response.status_code == 202, response.json
    created: dict[str, Any] = response.json or {}
    return created


@pytest.fixture
def progress_seen(db: firestore.Client) -> Iterator[Callable[[str], list[int]]]:
    """Watch a creation with a Firestore listener (as a UI does) and collect its progress."""
    watches: list[Any] = []
    seen: dict[str, list[int]] = {}
    lock = threading.Lock()

    def watch(creation_id: str) -> list[int]:
        values = seen.setdefault(creation_id, [])

        def on_change(snapshots: list[Any], changes: Any, read_time: Any) -> None:
            for snapshot in snapshots:
                data = snapshot.to_dict() or {}
                with lock:
                    if not values or values[-1] != data.get("progress"):
                        values.append(int(data.get("progress", 0)))

        watches.append(db.collection("creations").document(creation_id).on_snapshot(on_change))
        return values

    yield watch
    for w in watches:
        w.unsubscribe()


def test_matching_clips_make_a_reel_whose_duration_is_their_sum(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    functions: dict[str, FlaskClient],
    bucket: Bucket,
    tmp_path: Path,
    progress_seen: Callable[[str], list[int]],
) -> None:
    ledger.grant("alice", 50)
    clips = [make_clip(api, auth, functions, stack, "alice") for _ in range(3)]
    before = ledger.balance("alice")
    reel = order_reel(api, auth, "alice", clips)
    assert reel["type"] == "reel"
    assert reel["cost"] == stack.pricing.reel_tokens
    assert reel["request"]["clips"] == clips
    assert ledger.balance("alice") == before - reel["cost"]
    values = progress_seen(reel["id"])
    assert deliver(functions, "stitch", stack.stitch_topic, job_of(reel)) == 200
    creation = doc(db, reel["id"])
    assert creation["status"] == "draft", creation.get("error")
    [item] = creation["media"]
    local = tmp_path / "reel.mp4"
    bucket.blob(item["uri"].removeprefix(f"gs://{bucket.name}/")).download_to_filename(local)
    found = probe(local)
    clip_total = sum(doc(db, c)["media"][0]["duration_seconds"] for c in clips)
    assert abs(found.duration_seconds - clip_total) < 0.3
    assert abs(item["duration_seconds"] - clip_total) < 0.3
    assert item["bytes"] == local.stat().st_size
    assert decode_check(local) > 0
    deadline_values = list(values)
    assert deadline_values == sorted(deadline_values)
    assert creation["progress"] == 100


def test_mixed_aspect_ratios_are_normalised_into_one_reel(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    functions: dict[str, FlaskClient],
    bucket: Bucket,
    tmp_path: Path,
) -> None:
    ledger.grant("alice", 50)
    clips = [
        make_clip(api, auth, functions, stack, "alice", ratio) for ratio in ("16:9", "9:16", "1:1")
    ]
    reel = order_reel(api, auth, "alice", clips)
    assert deliver(functions, "stitch", stack.stitch_topic, job_of(reel)) == 200
    creation = doc(db, reel["id"])
    assert creation["status"] == "draft", creation.get("error")
    [item] = creation["media"]
    local = tmp_path / "reel.mp4"
    bucket.blob(item["uri"].removeprefix(f"gs://{bucket.name}/")).download_to_filename(local)
    found = probe(local)
    assert (found.width, found.height) == (item["width"], item["height"])
    assert abs(found.duration_seconds - 12) < 0.5
    assert found.audio_codec == "aac"
    assert decode_check(local) > 0


def test_redelivery_makes_one_reel_and_one_debit(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    functions: dict[str, FlaskClient],
    bucket: Bucket,
) -> None:
    ledger.grant("alice", 50)
    clips = [make_clip(api, auth, functions, stack, "alice") for _ in range(2)]
    reel = order_reel(api, auth, "alice", clips)
    for _ in range(3):
        assert deliver(functions, "stitch", stack.stitch_topic, job_of(reel)) == 200
    assert doc(db, reel["id"])["attempts"] == 1
    objects = list(bucket.client.list_blobs(bucket.name, prefix=f"media/alice/{reel['id']}/"))
    assert len(objects) == 1
    assert sum(1 for e in ledger.entries("alice") if e["creation_id"] == reel["id"]) == 1


def test_a_clip_deleted_before_stitching_fails_the_reel_and_refunds_it(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    functions: dict[str, FlaskClient],
) -> None:
    ledger.grant("alice", 50)
    clips = [make_clip(api, auth, functions, stack, "alice") for _ in range(2)]
    reel = order_reel(api, auth, "alice", clips)
    assert api.delete(f"/v1/creations/{clips[1]}", headers=auth("alice")).status_code == 204
    balance = ledger.balance("alice")
    assert deliver(functions, "stitch", stack.stitch_topic, job_of(reel)) == 200
    creation = doc(db, reel["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "clip_missing"
    assert settle(functions, db, reel["id"]) == 200
    assert ledger.balance("alice") == balance + reel["cost"]


def test_reel_requests_are_checked_clip_by_clip(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    stack: Settings,
    functions: dict[str, FlaskClient],
) -> None:
    ledger.grant("alice", 50)
    ledger.grant("bob", 50)
    mine = make_clip(api, auth, functions, stack, "alice")
    theirs = make_clip(api, auth, functions, stack, "bob")
    image = (
        api.post("/v1/creations", json={"type": "image", "prompt": "x"}, headers=auth("alice")).json
        or {}
    )["id"]
    pending = (
        api.post("/v1/creations", json={"type": "video", "prompt": "x"}, headers=auth("alice")).json
        or {}
    )["id"]
    balance = ledger.balance("alice")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"clips": [mine, theirs]}, 404, "clips[1]"),
        ({"clips": [mine, "nope"]}, 404, "clips[1]"),
        ({"clips": [image, mine]}, 400, "clips[0]"),
        ({"clips": [mine, pending]}, 400, "clips[1]"),
        ({"clips": [mine]}, 400, "clips"),
        ({"clips": [mine] * 21}, 400, "clips"),
        ({"clips": [mine, "a/b"]}, 400, "clips[1]"),
        ({"clips": [mine, mine], "colour": "red"}, 400, "colour"),
        ({"clips": [mine, mine], "title": "   "}, 400, "title"),
    ]
    for body, status, field in cases:
        response = api.post("/v1/reels", json=body, headers=auth("alice"))
        assert response.status_code == status, (body, response.json)
        assert (response.json or {})["error"]["message"].startswith(field), response.json
    assert ledger.balance("alice") == balance
    same_clip_twice = api.post("/v1/reels", json={"clips": [mine, mine]}, headers=auth("alice"))
    assert same_clip_twice.status_code == 202
