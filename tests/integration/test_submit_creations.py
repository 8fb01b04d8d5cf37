"""`POST /v1/creations` through the real app on the emulators: debit, document, message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from google.cloud import firestore

from shared.core.settings import Settings
from shared.money.ledger import Ledger
from tests.support.contract import ContractClient

Auth = Callable[[str], dict[str, str]]


def test_image_request_is_accepted_debited_stored_and_enqueued(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    topic_messages: Callable[..., list[Any]],
) -> None:
    # GIVEN alice holds 10 tokens
    ledger.grant("alice", 10)
    # WHEN she asks for two images
    response = api.post(
        "/v1/creations",
        json={"type": "image", "prompt": "a fox", "count": 2},
        headers=auth("alice"),
    )
    # THEN it is accepted and pending, and the cost is debited once
    assert response.status_code == 202
    body = response.json
    assert body is not None
    assert body["status"] == "pending"
    assert body["cost"] == 2 * stack.pricing.image_tokens_per_image
    assert body["balance"] == 10 - body["cost"]
    assert response.headers["Location"] == f"/v1/creations/{body['id']}"
    assert ledger.balance("alice") == body["balance"]
    document = db.collection("creations").document(body["id"]).get().to_dict()
    assert document is not None
    assert document["user_id"] == "alice"
    assert document["status"] == "pending"
    assert document["request"]["count"] == 2
    debits = [e for e in ledger.entries("alice") if e["kind"] == "debit"]
    assert [(e["id"], e["amount"], e["creation_id"]) for e in debits] == [
        (f"debit:{body['id']}", -body["cost"], body["id"])
    ]
    # AND one job message names the creation
    messages = topic_messages(stack.generate_topic)
    assert len(messages) == 1
    payload = json.loads(messages[0].message.data)
    assert payload == {"creation_id": body["id"], "user_id": "alice", "type": "image"}
    assert messages[0].message.attributes["creation_id"] == body["id"]


def test_video_cost_is_per_second(
    api: ContractClient, auth: Auth, ledger: Ledger, stack: Settings
) -> None:
    ledger.grant("bob", 100)
    response = api.post(
        "/v1/creations",
        json={"type": "video", "prompt": "waves", "duration_seconds": 5},
        headers=auth("bob"),
    )
    assert response.status_code == 202
    assert response.json is not None
    assert response.json["cost"] == 5 * stack.pricing.video_tokens_per_second
    assert ledger.balance("bob") == 100 - response.json["cost"]


def test_insufficient_tokens_debits_nothing_and_creates_nothing(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    topic_messages: Callable[..., list[Any]],
    stack: Settings,
) -> None:
    ledger.grant("carol", 3)
    response = api.post(
        "/v1/creations", json={"type": "video", "prompt": "a long one"}, headers=auth("carol")
    )
    assert response.status_code == 402
    assert response.json is not None
    assert response.json["error"]["code"] == "insufficient_tokens"
    assert ledger.balance("carol") == 3
    assert [e["kind"] for e in ledger.entries("carol")] == ["grant"]
    assert list(db.collection("creations").stream()) == []
    assert topic_messages(stack.generate_topic, expected=0) == []


def test_a_user_with_no_balance_document_gets_402(api: ContractClient, auth: Auth) -> None:
    response = api.post(
        "/v1/creations", json={"type": "image", "prompt": "x"}, headers=auth("newcomer")
    )
    assert response.status_code == 402


def test_balance_reports_the_users_tokens(api: ContractClient, auth: Auth, ledger: Ledger) -> None:
    assert api.get("/v1/balance", headers=auth("dave")).json == {"tokens": 0}
    ledger.grant("dave", 7)
    assert api.get("/v1/balance", headers=auth("dave")).json == {"tokens": 7}
