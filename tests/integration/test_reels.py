"""Reel Maker: `POST /v1/reels` and the `stitch` function, with real ffmpeg on the emulators."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.storage import Bucket

from shared.media.probe import probe
from tests.support.chain import Chain
from tests.support.media import decode_check, download


@pytest.fixture
def chain(load_chain: Callable[..., Chain]) -> Chain:
    return load_chain("generate", "stitch", "refund", OFFLINE_VIDEO_LONG_SIDE_PX="320")


def make_clip(chain: Chain, user: str, aspect_ratio: str = "16:9", seconds: int = 4) -> str:
    """A video draft of `user`'s, made by the real `generate`."""
    created = chain.submit(
        user,
        {
            "type": "video",
            "prompt": f"clip {aspect_ratio}",
            "aspect_ratio": aspect_ratio,
            "duration_seconds": seconds,
        },
    )
    assert chain.work(created) == 200
    return str(created["id"])


def order_reel(chain: Chain, user: str, clips: list[str]) -> dict[str, Any]:
    response = chain.api.post(
        "/v1/reels", json={"clips": clips, "title": "my reel"}, headers=chain.auth(user)
    )
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
    chain: Chain, bucket: Bucket, tmp_path: Path, progress_seen: Callable[[str], list[int]]
) -> None:
    chain.ledger.grant("alice", 50)
    clips = [make_clip(chain, "alice") for _ in range(3)]
    before = chain.ledger.balance("alice")
    reel = order_reel(chain, "alice", clips)
    assert reel["type"] == "reel"
    assert reel["cost"] == chain.settings.pricing.reel_tokens
    assert reel["request"]["clips"] == clips
    assert chain.ledger.balance("alice") == before - reel["cost"]
    values = progress_seen(reel["id"])
    assert chain.work(reel, "stitch") == 200
    creation = chain.doc(reel["id"])
    assert creation["status"] == "draft", creation.get("error")
    [item] = creation["media"]
    local = download(bucket, item["uri"], tmp_path)
    found = probe(local)
    clip_total = sum(chain.doc(c)["media"][0]["duration_seconds"] for c in clips)
    assert abs(found.duration_seconds - clip_total) < 0.3
    assert abs(item["duration_seconds"] - clip_total) < 0.3
    assert item["bytes"] == local.stat().st_size
    assert decode_check(local) > 0
    deadline_values = list(values)
    assert deadline_values == sorted(deadline_values)
    assert creation["progress"] == 100


def test_mixed_aspect_ratios_are_normalised_into_one_reel(
    chain: Chain, bucket: Bucket, tmp_path: Path
) -> None:
    chain.ledger.grant("alice", 50)
    clips = [make_clip(chain, "alice", ratio) for ratio in ("16:9", "9:16", "1:1")]
    reel = order_reel(chain, "alice", clips)
    assert chain.work(reel, "stitch") == 200
    creation = chain.doc(reel["id"])
    assert creation["status"] == "draft", creation.get("error")
    [item] = creation["media"]
    local = download(bucket, item["uri"], tmp_path)
    found = probe(local)
    assert (found.width, found.height) == (item["width"], item["height"])
    assert abs(found.duration_seconds - 12) < 0.5
    assert found.audio_codec == "aac"
    assert decode_check(local) > 0


def test_redelivery_makes_one_reel_and_one_debit(chain: Chain, bucket: Bucket) -> None:
    chain.ledger.grant("alice", 50)
    clips = [make_clip(chain, "alice") for _ in range(2)]
    reel = order_reel(chain, "alice", clips)
    for _ in range(3):
        assert chain.work(reel, "stitch") == 200
    assert chain.doc(reel["id"])["attempts"] == 1
    objects = list(bucket.client.list_blobs(bucket.name, prefix=f"media/alice/{reel['id']}/"))
    assert len(objects) == 1
    entries = chain.ledger.entries("alice")
    assert sum(1 for e in entries if e["creation_id"] == reel["id"]) == 1


def test_a_clip_deleted_before_stitching_fails_the_reel_and_refunds_it(chain: Chain) -> None:
    chain.ledger.grant("alice", 50)
    clips = [make_clip(chain, "alice") for _ in range(2)]
    reel = order_reel(chain, "alice", clips)
    deleted = chain.api.delete(f"/v1/creations/{clips[1]}", headers=chain.auth("alice"))
    assert deleted.status_code == 204
    balance = chain.ledger.balance("alice")
    assert chain.work(reel, "stitch") == 200
    creation = chain.doc(reel["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "clip_missing"
    assert chain.settle(reel["id"]) == 200
    assert chain.ledger.balance("alice") == balance + reel["cost"]


def test_reel_requests_are_checked_clip_by_clip(chain: Chain) -> None:
    api, auth, ledger = chain.api, chain.auth, chain.ledger
    ledger.grant("alice", 50)
    ledger.grant("bob", 50)
    mine = make_clip(chain, "alice")
    theirs = make_clip(chain, "bob")
    image = chain.submit("alice", {"type": "image", "prompt": "x"})["id"]
    pending = chain.submit("alice", {"type": "video", "prompt": "x"})["id"]
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


def test_a_replay_answers_the_reel_it_made_after_a_clip_was_deleted(chain: Chain) -> None:
    chain.ledger.grant("alice", 50)
    clips = [make_clip(chain, "alice"), make_clip(chain, "alice")]
    body = {"clips": clips, "title": "my reel"}
    headers = {**chain.auth("alice"), "Idempotency-Key": "reel-1"}
    first = chain.api.post("/v1/reels", json=body, headers=headers)
    assert first.status_code == 202, first.json
    assert (
        chain.api.delete(f"/v1/creations/{clips[0]}", headers=chain.auth("alice")).status_code
        == 204
    )
    replay = chain.api.post("/v1/reels", json=body, headers=headers)
    assert replay.status_code == 202, replay.json
    assert (replay.json or {})["id"] == (first.json or {})["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    unkeyed = chain.api.post("/v1/reels", json=body, headers=chain.auth("alice"))
    assert unkeyed.status_code == 404  # without the key, the clips are checked as they are now
