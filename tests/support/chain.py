"""Driving the event functions in-process: submit, deliver jobs, settle refunds, read back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from google.cloud import firestore

from shared.money.ledger import Ledger
from tests.support.contract import ContractClient
from tests.support.events import firestore_update, push_body, topic_path

PROJECT = "demo-test"  # the integration fixtures' project
Auth = Callable[[str], dict[str, str]]


def submit(api: ContractClient, auth: Auth, user: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/creations", json=body, headers=auth(user))
    assert response.status_code == 202, response.json
    created: dict[str, Any] = response.json or {}
    return created


def job_of(created: dict[str, Any]) -> dict[str, Any]:
    return {"creation_id": created["id"], "user_id": created["user_id"], "type": created["type"]}


def deliver(
    functions: dict[str, FlaskClient],
    target: str,
    topic: str,
    payload: dict[str, Any],
    *,
    message_id: str | None = None,
    attributes: dict[str, str] | None = None,
) -> int:
    """Push `payload` to `target` as the Pub/Sub subscription on `topic` would; its status."""
    body = push_body(
        PROJECT, f"{topic}-push", payload, message_id=message_id, attributes=attributes
    )
    return functions[target].post(topic_path(PROJECT, topic), json=body).status_code


def doc(db: firestore.Client, creation_id: str) -> dict[str, Any]:
    return db.collection("creations").document(creation_id).get().to_dict() or {}


def settle(functions: dict[str, FlaskClient], db: firestore.Client, creation_id: str) -> int:
    """Send the refund function the update event Eventarc sends after the last write."""
    headers, body = firestore_update(
        PROJECT, f"creations/{creation_id}", None, doc(db, creation_id)
    )
    return functions["refund"].post("/", data=body, headers=headers).status_code


def kinds(ledger: Ledger, user: str) -> list[str]:
    return sorted(e["kind"] for e in ledger.entries(user))
