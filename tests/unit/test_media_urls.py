"""Download links for media, signed offline with a key made for the test (no network)."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client as StorageClient

from shared.core.settings import Settings
from shared.creations.model import Creation
from shared.media.urls import SignedMediaUrls, signing_from

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
EMULATOR = "http://127.0.0.1:9"  # never contacted: signing is local


def links(ttl: int = 900) -> SignedMediaUrls:
    settings = Settings(storage_emulator_host=EMULATOR, gcp_project="demo-p")
    client = StorageClient(project="demo-p", credentials=AnonymousCredentials())
    return SignedMediaUrls(client, "media-bucket", ttl, signing_from(settings), clock=lambda: NOW)


def creation(*uris: str) -> Creation:
    data: dict[str, Any] = {
        "id": "c1",
        "user_id": "alice",
        "type": "image",
        "status": "draft",
        "cost": 1,
        "media": [{"uri": uri, "content_type": "image/png", "bytes": 3} for uri in uris],
    }
    return Creation.model_validate(data)


def test_each_media_item_gets_a_signed_url_that_names_its_object_and_expires() -> None:
    view = links(ttl=600).api_view(creation("gs://media-bucket/media/alice/c1/1-ab/0.png"))
    [item] = view["media"]
    url = urllib.parse.urlsplit(item["url"])
    query = urllib.parse.parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}" == EMULATOR
    assert url.path == "/media-bucket/media/alice/c1/1-ab/0.png"
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == ["600"]
    assert query["X-Goog-Signature"][0]
    assert item["url_expires_at"] == "2026-12-02T12:10:00Z"
    assert item["uri"] == "gs://media-bucket/media/alice/c1/1-ab/0.png"  # kept as stored


def test_only_the_media_buckets_objects_are_signed() -> None:
    view = links().api_view(creation("gs://someone-elses/x.png", "not a uri"))
    assert all("url" not in item for item in view["media"])


def test_a_creation_without_media_is_answered_as_it_is() -> None:
    assert links().api_view(creation()) == creation().to_api()
