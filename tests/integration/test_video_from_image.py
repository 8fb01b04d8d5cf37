"""A video from an image draft: `POST /v1/creations` with `image`, and the real `generate` (the
offline provider, real ffmpeg) reading that image from the storage emulator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.cloud.storage import Bucket
from PIL import Image

from shared.media.probe import probe
from tests.support.chain import Chain
from tests.support.media import download, first_frame, picture_difference

SAME_PICTURE = 6.0  # see tests/component/test_offline_image_videos.py


@pytest.fixture
def chain(load_chain: Callable[..., Chain]) -> Chain:
    return load_chain(
        "generate", "refund", OFFLINE_IMAGE_LONG_SIDE_PX="256", OFFLINE_VIDEO_LONG_SIDE_PX="320"
    )


def make_image(chain: Chain, user: str, count: int = 1) -> dict[str, Any]:
    """An image draft of `user`'s (`count` images), made by the real `generate`."""
    created = chain.submit(user, {"type": "image", "prompt": "a lighthouse", "count": count})
    assert chain.work(created) == 200
    assert chain.doc(created["id"])["status"] == "draft"
    return chain.doc(created["id"]) | {"id": created["id"]}


def video_from(image_id: Any, **more: Any) -> dict[str, Any]:
    return {"type": "video", "prompt": "slowly closer", "image": image_id, **more}


def test_the_video_starts_from_the_chosen_image_of_the_draft(
    chain: Chain, bucket: Bucket, tmp_path: Path
) -> None:
    chain.ledger.grant("alice", 50)
    image = make_image(chain, "alice", count=2)
    plain = chain.submit("alice", {"type": "video", "prompt": "waves", "duration_seconds": 4})
    body = video_from(image["id"], image_index=1, aspect_ratio="9:16", duration_seconds=4)

    video = chain.submit("alice", body)

    chosen = image["media"][1]
    assert video["request"]["source_image"] == {
        "creation_id": image["id"],
        "index": 1,
        "uri": chosen["uri"],
        "mime_type": "image/png",
    }
    assert video["cost"] == plain["cost"]  # the price of any video this long
    assert "source_image" not in plain["request"]
    assert chain.work(video) == 200
    made = chain.doc(video["id"])
    assert made["status"] == "draft", made.get("error")
    [item] = made["media"]
    clip = download(bucket, item["uri"], tmp_path)
    found = probe(clip)
    assert (found.width, found.height) == (180, 320)
    assert found.duration_seconds == pytest.approx(4, abs=0.1)
    frame = first_frame(clip)
    # Named 0.png and 1.png in the bucket, so they are two files here too.
    pictures = [Image.open(download(bucket, m["uri"], tmp_path)) for m in image["media"]]
    assert picture_difference(frame, pictures[1]) < SAME_PICTURE
    assert picture_difference(frame, pictures[0]) > 2 * SAME_PICTURE


def test_image_index_defaults_to_the_first_image(chain: Chain) -> None:
    chain.ledger.grant("alice", 50)
    image = make_image(chain, "alice", count=2)
    video = chain.submit("alice", video_from(image["id"]))
    assert video["request"]["source_image"]["index"] == 0
    assert video["request"]["source_image"]["uri"] == image["media"][0]["uri"]


def test_requests_naming_an_image_are_checked_like_reel_clips(chain: Chain) -> None:
    api, auth, ledger = chain.api, chain.auth, chain.ledger
    ledger.grant("alice", 50)
    ledger.grant("bob", 50)
    mine = make_image(chain, "alice", count=2)["id"]
    theirs = make_image(chain, "bob")["id"]
    video = chain.submit("alice", {"type": "video", "prompt": "x", "duration_seconds": 4})
    assert chain.work(video) == 200
    pending = chain.submit("alice", {"type": "image", "prompt": "x"})["id"]
    balance = ledger.balance("alice")
    cases: list[tuple[dict[str, Any], int, str]] = [
        (video_from(theirs), 404, "image"),
        (video_from("no-such-creation"), 404, "image"),
        (video_from(video["id"]), 400, "image"),
        (video_from(pending), 400, "image"),
        (video_from(mine, image_index=2), 400, "image_index"),
        (video_from(mine, image_index=4), 400, "image_index"),
        (video_from(mine, image_index=-1), 400, "image_index"),
        (video_from(mine, image_index="1"), 400, "image_index"),
        (video_from("a/b"), 400, "image"),
        (video_from(7), 400, "image"),
        ({"type": "image", "prompt": "x", "image": mine}, 400, "image"),
        ({"type": "image", "prompt": "x", "image_index": 0}, 400, "image_index"),
        ({"type": "video", "prompt": "x", "image_index": 0}, 400, "image_index"),
        # The body's own rules first: a bad field is a 400 whatever the image.
        (video_from(theirs, duration_seconds=9), 400, "duration_seconds"),
    ]
    for body, status, field in cases:
        response = api.post("/v1/creations", json=body, headers=auth("alice"))
        assert response.status_code == status, (body, response.json)
        error = (response.json or {})["error"]
        assert error["message"].startswith(f"{field}:"), response.json
        assert error["code"] == ("not_found" if status == 404 else "invalid_request")
    assert ledger.balance("alice") == balance


def test_a_video_whose_image_was_deleted_fails_as_source_image_missing_and_is_refunded(
    chain: Chain,
) -> None:
    chain.ledger.grant("alice", 50)
    image = make_image(chain, "alice")
    video = chain.submit("alice", video_from(image["id"], duration_seconds=4))
    deleted = chain.api.delete(f"/v1/creations/{image['id']}", headers=chain.auth("alice"))
    assert deleted.status_code == 204
    balance = chain.ledger.balance("alice")

    assert chain.work(video) == 200  # acked: a permanent failure

    failed = chain.doc(video["id"])
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "source_image_missing"
    assert image["id"] in failed["error"]["message"]
    assert chain.settle(video["id"]) == 200
    assert chain.ledger.balance("alice") == balance + video["cost"]
    assert chain.doc(video["id"])["refunded"] is True


def test_a_replay_answers_the_video_it_made_after_its_image_was_deleted(chain: Chain) -> None:
    chain.ledger.grant("alice", 50)
    image = make_image(chain, "alice")
    body = video_from(image["id"], duration_seconds=4)
    headers = {**chain.auth("alice"), "Idempotency-Key": "video-from-image-1"}
    first = chain.api.post("/v1/creations", json=body, headers=headers)
    assert first.status_code == 202, first.json
    balance = chain.ledger.balance("alice")
    deleted = chain.api.delete(f"/v1/creations/{image['id']}", headers=chain.auth("alice"))
    assert deleted.status_code == 204

    replay = chain.api.post("/v1/creations", json=body, headers=headers)

    assert replay.status_code == 202, replay.json
    assert (replay.json or {})["id"] == (first.json or {})["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert chain.ledger.balance("alice") == balance  # nothing debited again
    unkeyed = chain.api.post("/v1/creations", json=body, headers=chain.auth("alice"))
    assert unkeyed.status_code == 404  # without the key, the image is checked as it is now
