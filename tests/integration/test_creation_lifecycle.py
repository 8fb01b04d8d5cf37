"""Idempotency, ownership, cancel, delete and listing, through the real app on the emulators."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from functions_framework import create_app
from google.cloud import firestore
from google.cloud.storage import Bucket
from openapi_core import OpenAPI

from shared.core.settings import Settings, load_settings
from shared.creations.model import Status
from shared.creations.reading import CreationReader
from shared.media.storage import media_prefix
from shared.money.ledger import Ledger
from shared.money.refunds import Refunds
from shared.store.documents import Documents
from tests.support.contract import ContractClient
from tests.support.paths import SUBMIT_SOURCE
from tests.support.seeds import move

Auth = Callable[[str], dict[str, str]]
IMAGE = {"type": "image", "prompt": "a lighthouse at dusk"}


def submit(
    api: ContractClient,
    auth: Auth,
    user: str,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    headers = auth(user) if key is None else {**auth(user), "Idempotency-Key": key}
    response = api.post("/v1/creations", json=body or IMAGE, headers=headers)
    assert response.status_code == 202, response.json
    accepted: dict[str, Any] = response.json or {}
    return accepted


# --- idempotency ----------------------------------------------------------------------------


def test_same_key_and_body_returns_the_same_creation_and_debits_once(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    topic_messages: Callable[..., list[Any]],
    stack: Settings,
) -> None:
    ledger.grant("alice", 10)
    first = submit(api, auth, "alice", key="order-1")
    response = api.post(
        "/v1/creations",
        json=dict(reversed(IMAGE.items())),
        headers={**auth("alice"), "Idempotency-Key": "order-1"},
    )
    assert response.status_code == 202
    assert response.json is not None
    assert response.json["id"] == first["id"]
    assert response.headers["Idempotent-Replayed"] == "true"
    assert ledger.balance("alice") == 10 - first["cost"]
    assert [e["kind"] for e in ledger.entries("alice")].count("debit") == 1
    assert len(list(db.collection("creations").stream())) == 1
    assert len(topic_messages(stack.generate_topic)) == 1


def test_same_key_with_another_body_is_409_and_debits_nothing(
    api: ContractClient, auth: Auth, ledger: Ledger
) -> None:
    ledger.grant("alice", 10)
    submit(api, auth, "alice", key="order-2")
    response = api.post(
        "/v1/creations",
        json={**IMAGE, "prompt": "something else"},
        headers={**auth("alice"), "Idempotency-Key": "order-2"},
    )
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["error"]["code"] == "conflict"
    assert ledger.balance("alice") == 9


def test_a_replay_answers_what_was_made_even_if_its_body_would_be_refused_now(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    openapi_spec: OpenAPI,
) -> None:
    """The key is looked up before the body is checked against today's settings."""
    ledger.grant("alice", 10)
    body = {**IMAGE, "model": "gemini-2.5-flash-image"}
    first = submit(api, auth, "alice", body, key="order-4")
    withdrawn = {"imagen-4.0-generate-001": "image", "veo-3.0-fast-generate-001": "video"}
    monkeypatch.setenv("ALLOWED_MODELS", json.dumps(withdrawn))
    load_settings.cache_clear()
    today = ContractClient(create_app("submit", str(SUBMIT_SOURCE)).test_client(), openapi_spec)
    headers = {**auth("alice"), "Idempotency-Key": "order-4"}
    replay = today.post("/v1/creations", json=body, headers=headers)
    assert replay.status_code == 202, replay.json
    assert (replay.json or {})["id"] == first["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    fresh = today.post("/v1/creations", json=body, headers=auth("alice"))
    assert fresh.status_code == 400  # the same body without the key is checked, and refused
    assert ledger.balance("alice") == 9


def test_keys_are_per_user(api: ContractClient, auth: Auth, ledger: Ledger) -> None:
    ledger.grant("alice", 10)
    ledger.grant("bob", 10)
    mine = submit(api, auth, "alice", key="shared-key")
    theirs = submit(api, auth, "bob", key="shared-key")
    assert mine["id"] != theirs["id"]
    assert ledger.balance("alice") == ledger.balance("bob") == 9


# --- ownership ------------------------------------------------------------------------------


def test_another_users_creation_is_404_on_get_delete_and_cancel(
    api: ContractClient, auth: Auth, ledger: Ledger, creations: CreationReader
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    for method, path in [
        ("GET", f"/v1/creations/{created['id']}"),
        ("DELETE", f"/v1/creations/{created['id']}"),
        ("POST", f"/v1/creations/{created['id']}:cancel"),
    ]:
        response = api.open(method, path, headers=auth("mallory"))
        assert response.status_code == 404, (method, path)
        assert response.json is not None
        assert response.json["error"]["code"] == "not_found"
    still = creations.get_owned("alice", created["id"])
    assert still.status == "pending"
    assert ledger.balance("alice") == 9


def test_owner_reads_their_creation(api: ContractClient, auth: Auth, ledger: Ledger) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    response = api.get(f"/v1/creations/{created['id']}", headers=auth("alice"))
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["id"] == created["id"]
    assert "balance" not in response.json


# --- cancel ---------------------------------------------------------------------------------


def test_cancel_of_pending_refunds_once_and_a_second_cancel_is_409(
    api: ContractClient, auth: Auth, ledger: Ledger
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    response = api.post(f"/v1/creations/{created['id']}:cancel", headers=auth("alice"))
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["status"] == "canceled"
    assert response.json["refunded"] is True
    assert response.json["completed_at"] is not None
    assert ledger.balance("alice") == 10
    again = api.post(f"/v1/creations/{created['id']}:cancel", headers=auth("alice"))
    assert again.status_code == 409
    assert ledger.balance("alice") == 10
    assert sorted(e["kind"] for e in ledger.entries("alice")) == ["debit", "grant", "refund"]


@pytest.mark.parametrize("status", ["processing", "draft", "failed"])
def test_cancel_outside_pending_is_409_and_refunds_nothing(
    api: ContractClient, auth: Auth, ledger: Ledger, documents: Documents, status: Status
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    move(documents, created["id"], "processing")
    if status != "processing":
        move(documents, created["id"], status)
    response = api.post(f"/v1/creations/{created['id']}:cancel", headers=auth("alice"))
    assert response.status_code == 409
    assert ledger.balance("alice") == 9


def test_refund_is_applied_once_however_often_it_is_asked(
    api: ContractClient, auth: Auth, ledger: Ledger, documents: Documents, refunds: Refunds
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    move(documents, created["id"], "failed", fields={"error": {"code": "x", "message": "x"}})
    results = [refunds.refund(created["id"]).result for _ in range(3)]
    assert results == ["refunded", "already_refunded", "already_refunded"]
    assert ledger.balance("alice") == 10


def test_a_draft_is_never_refunded(
    api: ContractClient, auth: Auth, ledger: Ledger, documents: Documents, refunds: Refunds
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    move(documents, created["id"], "processing")
    move(documents, created["id"], "draft", fields={"progress": 100})
    assert refunds.refund(created["id"]).result == "not_refundable"
    assert ledger.balance("alice") == 9
    with pytest.raises(Exception, match="cannot become"):
        move(documents, created["id"], "processing")


# --- delete ---------------------------------------------------------------------------------


def test_delete_of_a_draft_removes_document_and_media(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    documents: Documents,
    bucket: Bucket,
    db: firestore.Client,
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    name = media_prefix("alice", created["id"]) + "image-0.png"
    bucket.blob(name).upload_from_string(b"\x89PNG fake", content_type="image/png")
    bucket.blob("media/alice/other/keep.png").upload_from_string(b"keep")
    move(documents, created["id"], "processing")
    move(
        documents,
        created["id"],
        "draft",
        fields={
            "progress": 100,
            "media": [
                {"uri": f"gs://{bucket.name}/{name}", "content_type": "image/png", "bytes": 9}
            ],
        },
    )
    response = api.delete(f"/v1/creations/{created['id']}", headers=auth("alice"))
    assert response.status_code == 204
    assert not bucket.blob(name).exists()
    assert bucket.blob("media/alice/other/keep.png").exists()
    assert not db.collection("creations").document(created["id"]).get().exists
    assert api.get(f"/v1/creations/{created['id']}", headers=auth("alice")).status_code == 404
    assert ledger.balance("alice") == 9  # a draft's tokens stay spent


def test_delete_while_pending_is_409(api: ContractClient, auth: Auth, ledger: Ledger) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    response = api.delete(f"/v1/creations/{created['id']}", headers=auth("alice"))
    assert response.status_code == 409
    assert response.json is not None
    assert response.json["error"]["code"] == "conflict"


def test_delete_of_an_unrefunded_failure_refunds_it_first(
    api: ContractClient, auth: Auth, ledger: Ledger, documents: Documents
) -> None:
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice")
    move(documents, created["id"], "failed", fields={"error": {"code": "x", "message": "x"}})
    assert api.delete(f"/v1/creations/{created['id']}", headers=auth("alice")).status_code == 204
    assert ledger.balance("alice") == 10


# --- list -----------------------------------------------------------------------------------


def test_list_is_newest_first_own_only_and_pages_without_gaps(
    api: ContractClient, auth: Auth, ledger: Ledger, documents: Documents
) -> None:
    ledger.grant("alice", 20)
    ledger.grant("bob", 5)
    made = [submit(api, auth, "alice", {**IMAGE, "prompt": f"p{i}"})["id"] for i in range(5)]
    submit(api, auth, "bob")
    move(documents, made[1], "canceled")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"/v1/creations?{query}", headers=auth("alice")).json
        assert page is not None
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        assert all(item["user_id"] == "alice" for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    canceled = api.get("/v1/creations?status=canceled", headers=auth("alice")).json
    assert canceled is not None
    assert [item["id"] for item in canceled["items"]] == [made[1]]
    assert canceled["next_cursor"] is None
