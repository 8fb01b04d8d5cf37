"""terraform/firestore.rules, loaded into the Firestore emulator and exercised as clients would.

Runs in a project of its own (`demo-rules`): the other tests use the server client library,
whose emulator requests carry `Authorization: Bearer owner` and bypass rules, in `demo-test`.
Clients here talk REST with emulator ID tokens (unsigned JWTs, which the emulator accepts).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from shared.store import paths
from tests.support.terraform import TERRAFORM_DIR
from tools.stack.emulators import EmulatorSet, wipe_firestore

RULES_PROJECT = "demo-rules"
RULES_FILE = TERRAFORM_DIR / "firestore.rules"
TIMEOUT = 10
OWNER = {"Authorization": "Bearer owner"}  # the emulator's admin: bypasses rules

pytestmark = pytest.mark.integration


def id_token(uid: str) -> str:
    """A Firebase ID token as the emulator accepts it: a JWT with alg none, unsigned."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    now = int(time.time())
    claims = {
        "iss": f"https://securetoken.google.com/{RULES_PROJECT}",
        "aud": RULES_PROJECT,
        "sub": uid,
        "user_id": uid,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


class Client:
    """One caller of the Firestore REST API: a signed-in user, or nobody."""

    def __init__(self, base: str, uid: str | None) -> None:
        self._base = base
        self._headers = {"Authorization": f"Bearer {id_token(uid)}"} if uid else {}

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self._base}/{path}", headers=self._headers, timeout=TIMEOUT)

    def list(self, collection_path: str) -> requests.Response:
        return requests.get(
            f"{self._base}/{collection_path}", headers=self._headers, timeout=TIMEOUT
        )

    def query(
        self,
        collection: str,
        where: dict[str, Any] | None = None,
        *,
        all_descendants: bool = False,
    ) -> requests.Response:
        """runQuery on `collection` (a collection group with `all_descendants`)."""
        source = {"collectionId": collection, "allDescendants": all_descendants}
        structured: dict[str, Any] = {"from": [source]}
        if where is not None:
            structured["where"] = {
                "fieldFilter": {
                    "field": {"fieldPath": where["field"]},
                    "op": "EQUAL",
                    "value": {"stringValue": where["value"]},
                }
            }
        return requests.post(
            f"{self._base}:runQuery",
            json={"structuredQuery": structured},
            headers=self._headers,
            timeout=TIMEOUT,
        )

    def create(self, collection: str, doc_id: str) -> requests.Response:
        return requests.post(
            f"{self._base}/{collection}",
            params={"documentId": doc_id},
            json={"fields": {"user_id": {"stringValue": "x"}}},
            headers=self._headers,
            timeout=TIMEOUT,
        )

    def update(self, path: str, fields: dict[str, Any]) -> requests.Response:
        return requests.patch(
            f"{self._base}/{path}",
            params=[("updateMask.fieldPaths", name) for name in fields],
            json={"fields": fields},
            headers=self._headers,
            timeout=TIMEOUT,
        )

    def delete(self, path: str) -> requests.Response:
        return requests.delete(f"{self._base}/{path}", headers=self._headers, timeout=TIMEOUT)


def documents_url(host: str) -> str:
    return f"http://{host}/v1/projects/{RULES_PROJECT}/databases/(default)/documents"


def put_document(host: str, path: str, fields: dict[str, Any]) -> None:
    response = requests.patch(
        f"{documents_url(host)}/{path}", json={"fields": fields}, headers=OWNER, timeout=TIMEOUT
    )
    response.raise_for_status()


def string(value: str) -> dict[str, str]:
    return {"stringValue": value}


@pytest.fixture(scope="module")
def firestore_host(emulators: EmulatorSet) -> str:
    host = emulators.env()["FIRESTORE_EMULATOR_HOST"]
    response = requests.put(
        f"http://{host}/emulator/v1/projects/{RULES_PROJECT}:securityRules",
        json={"rules": {"files": [{"name": "firestore.rules", "content": RULES_FILE.read_text()}]}},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, f"the emulator rejected the rules: {response.text}"
    return host


@pytest.fixture
def seeded(firestore_host: str) -> Iterator[str]:
    """alice and bob, each with a balance, a ledger entry, a creation, an idempotency key."""
    wipe_firestore(firestore_host, RULES_PROJECT)
    for uid in ("alice", "bob"):
        put_document(firestore_host, f"{paths.USERS}/{uid}", {"tokens": {"integerValue": "5"}})
        put_document(
            firestore_host,
            f"{paths.USERS}/{uid}/{paths.LEDGER}/grant:{uid}",
            {"kind": string("grant"), "amount": {"integerValue": "5"}},
        )
        put_document(
            firestore_host,
            f"{paths.CREATIONS}/{uid}-c1",
            {"user_id": string(uid), "status": string("pending"), "type": string("image")},
        )
        put_document(
            firestore_host,
            f"{paths.IDEMPOTENCY_KEYS}/{uid}-key",
            {"user_id": string(uid), "creation_id": string(f"{uid}-c1")},
        )
    yield firestore_host
    wipe_firestore(firestore_host, RULES_PROJECT)


@pytest.fixture
def client(seeded: str) -> Callable[[str | None], Client]:
    return lambda uid: Client(documents_url(seeded), uid)


ALLOWED, DENIED = 200, 403


def statuses(responses: dict[str, requests.Response]) -> dict[str, int]:
    return {name: response.status_code for name, response in responses.items()}


def test_a_user_reads_only_their_own_documents(client: Callable[[str | None], Client]) -> None:
    alice = client("alice")
    got = statuses(
        {
            "own creation": alice.get(f"{paths.CREATIONS}/alice-c1"),
            "own user": alice.get(f"{paths.USERS}/alice"),
            "own ledger entry": alice.get(f"{paths.USERS}/alice/{paths.LEDGER}/grant:alice"),
            "other's creation": alice.get(f"{paths.CREATIONS}/bob-c1"),
            "other's user": alice.get(f"{paths.USERS}/bob"),
            "other's ledger entry": alice.get(f"{paths.USERS}/bob/{paths.LEDGER}/grant:bob"),
        }
    )
    assert got == {
        "own creation": ALLOWED,
        "own user": ALLOWED,
        "own ledger entry": ALLOWED,
        "other's creation": DENIED,
        "other's user": DENIED,
        "other's ledger entry": DENIED,
    }
    body = alice.get(f"{paths.CREATIONS}/alice-c1").json()
    assert body["fields"]["user_id"] == string("alice")


def test_a_user_lists_only_their_own_creations_and_ledger(
    client: Callable[[str | None], Client],
) -> None:
    alice = client("alice")
    own = alice.query(paths.CREATIONS, {"field": "user_id", "value": "alice"})
    assert own.status_code == ALLOWED, own.text
    found = [row["document"]["name"].rsplit("/", 1)[1] for row in own.json() if "document" in row]
    assert found == ["alice-c1"]

    got = statuses(
        {
            "others' creations": alice.query(paths.CREATIONS, {"field": "user_id", "value": "bob"}),
            "all creations": alice.query(paths.CREATIONS),
            "creations by status": alice.query(
                paths.CREATIONS, {"field": "status", "value": "pending"}
            ),
            "all creations (list)": alice.list(paths.CREATIONS),
            "own ledger": alice.list(f"{paths.USERS}/alice/{paths.LEDGER}"),
            "other's ledger": alice.list(f"{paths.USERS}/bob/{paths.LEDGER}"),
            "every ledger (collection group)": alice.query(paths.LEDGER, all_descendants=True),
            "all users": alice.list(paths.USERS),
        }
    )
    assert got == {
        "others' creations": DENIED,
        "all creations": DENIED,
        "creations by status": DENIED,
        "all creations (list)": DENIED,
        "own ledger": ALLOWED,
        "other's ledger": DENIED,
        "every ledger (collection group)": DENIED,
        "all users": DENIED,
    }


def test_a_user_writes_nothing_not_even_their_own(client: Callable[[str | None], Client]) -> None:
    alice = client("alice")
    tokens = {"tokens": {"integerValue": "1000000"}}
    got = statuses(
        {
            "create creation": alice.create(paths.CREATIONS, "alice-c2"),
            "update own creation": alice.update(
                f"{paths.CREATIONS}/alice-c1", {"status": string("draft")}
            ),
            "delete own creation": alice.delete(f"{paths.CREATIONS}/alice-c1"),
            "update own balance": alice.update(f"{paths.USERS}/alice", tokens),
            "create own user": alice.create(paths.USERS, "alice-2"),
            "delete own user": alice.delete(f"{paths.USERS}/alice"),
            "create ledger entry": alice.create(f"{paths.USERS}/alice/{paths.LEDGER}", "grant:x"),
            "update ledger entry": alice.update(
                f"{paths.USERS}/alice/{paths.LEDGER}/grant:alice", {"amount": {"integerValue": "9"}}
            ),
            "delete ledger entry": alice.delete(f"{paths.USERS}/alice/{paths.LEDGER}/grant:alice"),
            "create idempotency key": alice.create(paths.IDEMPOTENCY_KEYS, "k2"),
        }
    )
    assert got == dict.fromkeys(got, DENIED)
    # Nothing changed underneath.
    assert alice.get(f"{paths.CREATIONS}/alice-c1").json()["fields"]["status"] == string("pending")
    assert alice.get(f"{paths.USERS}/alice").json()["fields"]["tokens"] == {"integerValue": "5"}


def test_idempotency_keys_are_not_readable(client: Callable[[str | None], Client]) -> None:
    alice = client("alice")
    got = statuses(
        {
            "own key": alice.get(f"{paths.IDEMPOTENCY_KEYS}/alice-key"),
            "own keys (query)": alice.query(
                paths.IDEMPOTENCY_KEYS, {"field": "user_id", "value": "alice"}
            ),
            "all keys": alice.list(paths.IDEMPOTENCY_KEYS),
        }
    )
    assert got == dict.fromkeys(got, DENIED)


def test_signed_out_callers_get_nothing(client: Callable[[str | None], Client]) -> None:
    nobody = client(None)
    got = statuses(
        {
            "creation": nobody.get(f"{paths.CREATIONS}/alice-c1"),
            "user": nobody.get(f"{paths.USERS}/alice"),
            "ledger": nobody.list(f"{paths.USERS}/alice/{paths.LEDGER}"),
            "creations query": nobody.query(
                paths.CREATIONS, {"field": "user_id", "value": "alice"}
            ),
            "create creation": nobody.create(paths.CREATIONS, "x"),
        }
    )
    assert got == dict.fromkeys(got, DENIED)
