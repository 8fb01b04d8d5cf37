"""Media a client can download: the API's answers carry signed URLs that a plain GET serves
(from the Cloud Storage emulator), only for the caller's own media, and gone once deleted."""

from __future__ import annotations

from collections.abc import Callable

import requests
from google.cloud.storage import Bucket

from shared.media.storage import split_gs_uri
from tests.support.chain import Chain

OFFLINE_PNG = b"\x89PNG\r\n\x1a\n"


def test_a_draft_is_downloaded_through_its_url_with_no_credentials(
    load_chain: Callable[..., Chain], bucket: Bucket
) -> None:
    chain = load_chain("generate", OFFLINE_IMAGE_LONG_SIDE_PX="64")
    chain.ledger.grant("alice", 5)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    assert created["media"] == []
    assert chain.work(created) == 200
    answer = chain.api.get(f"/v1/creations/{created['id']}", headers=chain.auth("alice"))
    assert answer.status_code == 200
    [item] = (answer.json or {})["media"]
    assert item["url_expires_at"].endswith("Z")
    downloaded = requests.get(item["url"], timeout=10)  # no token, no credentials
    assert downloaded.status_code == 200
    _bucket, name = split_gs_uri(item["uri"])
    assert downloaded.content == bucket.blob(name).download_as_bytes()
    assert downloaded.content.startswith(OFFLINE_PNG)
    assert len(downloaded.content) == item["bytes"]
    listed = chain.api.get("/v1/creations", headers=chain.auth("alice")).json or {}
    assert [i["url"] is not None for i in listed["items"][0]["media"]] == [True]

    # Another user is never answered this creation, so never given its URLs.
    assert (
        chain.api.get(f"/v1/creations/{created['id']}", headers=chain.auth("bob")).status_code
        == 404
    )
    # Once deleted, its objects are gone, and with them what the URL served.
    deleted = chain.api.delete(f"/v1/creations/{created['id']}", headers=chain.auth("alice"))
    assert deleted.status_code == 204
    assert requests.get(item["url"], timeout=10).status_code == 404
