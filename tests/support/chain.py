"""Driving the event functions in-process, as the platform drives them: submit over the API,
push jobs and status events as Pub/Sub push subscriptions do, read back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from google.cloud import firestore

from shared.core.settings import Settings
from shared.money.ledger import Ledger
from tests.support.contract import ContractClient
from tests.support.events import push_body, status_event_of, topic_path
from tools.stack.chain import default_wiring

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


def assert_every_ledger_balances(db: firestore.Client) -> None:
    """Every user's balance is the sum of their ledger, and never negative."""
    for user in db.collection("users").stream():
        tokens = (user.to_dict() or {}).get("tokens", 0)
        entries = [e.to_dict() or {} for e in user.reference.collection("ledger").stream()]
        assert tokens >= 0, f"{user.id} has a negative balance"
        assert tokens == sum(int(e["amount"]) for e in entries), (
            f"{user.id}: balance {tokens} != sum of ledger {entries}"
        )


def settle(
    functions: dict[str, FlaskClient], db: firestore.Client, settings: Settings, creation_id: str
) -> int:
    """Push the refund function the status event of the creation as it now is (the one its
    last move announced); the status."""
    event = status_event_of(creation_id, doc(db, creation_id))
    return deliver(functions, "refund", settings.status_topic, event)


def kinds(ledger: Ledger, user: str) -> list[str]:
    return sorted(e["kind"] for e in ledger.entries(user))


@dataclass
class Chain:
    """The API and some event functions (functions-framework apps), on the emulators."""

    api: ContractClient
    auth: Auth
    ledger: Ledger
    db: firestore.Client
    settings: Settings
    functions: dict[str, FlaskClient]

    def submit(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        """`POST /v1/creations`; the `202` answer."""
        return submit(self.api, self.auth, user, body)

    def topic_of(self, function: str) -> str:
        """The topic whose push subscription feeds `function`, as the stack wires it."""
        (topic,) = [p.topic for p in default_wiring(self.settings).pushes if p.function == function]
        return topic

    def deliver(
        self,
        function: str,
        payload: dict[str, Any],
        *,
        message_id: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> int:
        """Push `payload` to `function` from its topic's push subscription; the status."""
        return deliver(
            self.functions,
            function,
            self.topic_of(function),
            payload,
            message_id=message_id,
            attributes=attributes,
        )

    def work(self, created: dict[str, Any], function: str = "generate", **kwargs: Any) -> int:
        """Deliver the job of the creation `created` (a `202` answer) to its worker."""
        return self.deliver(function, job_of(created), **kwargs)

    def doc(self, creation_id: str) -> dict[str, Any]:
        return doc(self.db, creation_id)

    def settle(self, creation_id: str) -> int:
        """The status event of the creation's last move, to `refund`; the status."""
        return settle(self.functions, self.db, self.settings, creation_id)

    def kinds(self, user: str) -> list[str]:
        """The kinds of the user's ledger entries, sorted."""
        return kinds(self.ledger, user)
