"""Every error code of the contract, through the real app; none of them changes a balance."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest
from functions_framework import create_app
from google.cloud import firestore
from google.cloud.pubsub_v1 import PublisherClient

from shared.core.settings import Settings
from shared.money.ledger import Ledger
from tests.support.chain import PROJECT
from tests.support.contract import ContractClient
from tests.support.paths import SUBMIT_SOURCE
from tools.stack.devauth import DevSigner, new_signer
from tools.stack.processes import free_port

Auth = Callable[[str], dict[str, str]]
IMAGE = {"type": "image", "prompt": "a lighthouse"}


def error_of(response: object) -> str:
    body = response.json  # type: ignore[attr-defined]
    assert isinstance(body, dict)
    return str(body["error"]["code"])


def test_invalid_json_is_400(api: ContractClient, auth: Auth, ledger: Ledger) -> None:
    ledger.grant("alice", 5)
    response = api.post(
        "/v1/creations",
        data=b'{"type": "image",',
        headers=auth("alice"),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert error_of(response) == "invalid_json"
    assert ledger.balance("alice") == 5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "image"}, "prompt"),
        ({"type": "image", "prompt": "x", "count": 9}, "count"),
        ({"type": "video", "prompt": "x", "duration_seconds": 12}, "duration_seconds"),
        ({"type": "image", "prompt": "x", "colour": "red"}, "colour"),
        ({"type": "image", "prompt": "x", "model": "not-allowed"}, "model"),
        ([1, 2, 3], "body"),
    ],
)
def test_invalid_request_is_400_naming_the_field(
    api: ContractClient, auth: Auth, ledger: Ledger, body: object, field: str
) -> None:
    ledger.grant("alice", 5)
    response = api.post("/v1/creations", json=body, headers=auth("alice"))
    assert response.status_code == 400
    assert error_of(response) == "invalid_request"
    assert response.json is not None
    assert response.json["error"]["message"].startswith(f"{field}:")
    assert ledger.balance("alice") == 5


@pytest.mark.parametrize(
    "query", ["status=done", "limit=0", "limit=101", "limit=abc", "cursor=garbage", "sort=asc"]
)
def test_invalid_list_query_is_400(api: ContractClient, auth: Auth, query: str) -> None:
    response = api.get(f"/v1/creations?{query}", headers=auth("alice"))
    assert response.status_code == 400
    assert error_of(response) == "invalid_request"


def test_invalid_idempotency_key_is_400(api: ContractClient, auth: Auth, ledger: Ledger) -> None:
    ledger.grant("alice", 5)
    response = api.post(
        "/v1/creations", json=IMAGE, headers={**auth("alice"), "Idempotency-Key": "k" * 256}
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json["error"]["message"]  # type: ignore[index]
    assert ledger.balance("alice") == 5


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "auth_time": now,
    }
    claims.update(overrides)
    return claims


def _bad_tokens(signer: DevSigner) -> dict[str, str | None]:
    stranger = new_signer("stranger")
    forged = DevSigner(signer.kid, stranger.private_key_pem, stranger.certificate_pem)
    return {
        "missing": None,
        "malformed": "Bearer abc.def",
        "not bearer": f"Token {signer.mint('alice', PROJECT)}",
        "expired": "Bearer " + signer.mint("alice", PROJECT, issued_at=time.time() - 7200),
        "wrong signature": "Bearer " + forged.mint("alice", PROJECT),
        "wrong audience": "Bearer " + signer.mint("alice", PROJECT, audience="other-project"),
        "wrong issuer": "Bearer " + signer.mint("alice", PROJECT, issuer="https://example.com"),
        "unsigned": "Bearer "
        + jwt.encode(_claims(), key="", algorithm="none", headers={"kid": signer.kid}),
        "hmac": "Bearer "
        + jwt.encode(_claims(), "k" * 32, algorithm="HS256", headers={"kid": signer.kid}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "malformed",
        "not bearer",
        "expired",
        "wrong signature",
        "wrong audience",
        "wrong issuer",
        "unsigned",
        "hmac",
    ],
)
def test_bad_tokens_are_401_on_every_call(
    api: ContractClient, signer: DevSigner, ledger: Ledger, case: str
) -> None:
    ledger.grant("alice", 5)
    header = _bad_tokens(signer)[case]
    headers = {} if header is None else {"Authorization": header}
    calls = [
        ("POST", "/v1/creations"),
        ("GET", "/v1/creations"),
        ("GET", "/v1/creations/abc"),
        ("DELETE", "/v1/creations/abc"),
        ("POST", "/v1/creations/abc:cancel"),
        ("GET", "/v1/balance"),
    ]
    for method, path in calls:
        kwargs = {"json": IMAGE} if method == "POST" and path == "/v1/creations" else {}
        response = api.open(method, path, headers=headers, **kwargs)
        assert response.status_code == 401, (case, method, path)
        assert error_of(response) == "unauthenticated"
    assert ledger.balance("alice") == 5


def test_unknown_creation_is_404(api: ContractClient, auth: Auth) -> None:
    for method, path in [
        ("GET", "/v1/creations/nope"),
        ("DELETE", "/v1/creations/nope"),
        ("POST", "/v1/creations/nope:cancel"),
    ]:
        response = api.open(method, path, headers=auth("alice"))
        assert response.status_code == 404
        assert error_of(response) == "not_found"


def test_unknown_path_is_404(api: ContractClient, auth: Auth) -> None:
    response = api.get("/v2/anything", headers=auth("alice"))
    assert response.status_code == 404
    assert error_of(response) == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/creations", "GET, POST"),
        ("PATCH", "/v1/creations/abc", "DELETE, GET"),
        ("GET", "/v1/creations/abc:cancel", "POST"),
        ("POST", "/v1/balance", "GET"),
    ],
)
def test_wrong_method_is_405_with_allow(
    api: ContractClient, auth: Auth, method: str, path: str, allowed: str
) -> None:
    response = api.open(method, path, headers=auth("alice"))
    assert response.status_code == 405
    assert error_of(response) == "method_not_allowed"
    assert set(response.headers["Allow"].split(", ")) >= set(allowed.split(", "))


def test_body_over_64_kib_is_413(api: ContractClient, auth: Auth, ledger: Ledger) -> None:
    ledger.grant("alice", 5)
    body = b'{"type": "image", "prompt": "' + b"x" * (64 * 1024) + b'"}'
    response = api.post(
        "/v1/creations", data=body, headers=auth("alice"), content_type="application/json"
    )
    assert response.status_code == 413
    assert error_of(response) == "payload_too_large"
    assert ledger.balance("alice") == 5


def test_body_that_is_not_json_media_type_is_415(
    api: ContractClient, auth: Auth, ledger: Ledger
) -> None:
    ledger.grant("alice", 5)
    response = api.post(
        "/v1/creations",
        data=b"type=image&prompt=x",
        headers=auth("alice"),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415
    assert error_of(response) == "unsupported_media_type"
    assert ledger.balance("alice") == 5


def test_queue_down_at_publish_is_503_refunded_and_the_creation_failed(
    api: ContractClient, auth: Auth, ledger: Ledger, db: firestore.Client, stack: Settings
) -> None:
    # GIVEN alice holds 5 tokens and the job topic is gone
    ledger.grant("alice", 5)
    publisher = PublisherClient()
    publisher.delete_topic(topic=publisher.topic_path(PROJECT, stack.generate_topic))
    # WHEN she asks for an image
    response = api.post("/v1/creations", json=IMAGE, headers=auth("alice"))
    # THEN she is told the queue is down and her tokens are back
    assert response.status_code == 503
    assert error_of(response) == "queue_unavailable"
    assert response.json is not None
    assert response.json["refunded"] is True
    assert response.headers["Retry-After"].isdigit()
    assert ledger.balance("alice") == 5
    # AND the creation ended failed and refunded, with a debit and a refund in the ledger
    creations = [doc.to_dict() or {} for doc in db.collection("creations").stream()]
    assert len(creations) == 1
    assert creations[0]["status"] == "failed"
    assert creations[0]["error"]["code"] == "queue_unavailable"
    assert creations[0]["refunded"] is True
    assert sorted(e["kind"] for e in ledger.entries("alice")) == ["debit", "grant", "refund"]


def test_store_unavailable_is_503_busy_and_debits_nothing(
    auth: Auth,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    openapi_spec: object,
) -> None:
    # GIVEN alice holds 5 tokens, but the function cannot reach Firestore
    ledger.grant("alice", 5)
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("STORE_TIMEOUT_SECONDS", "1")
    from shared.core.settings import load_settings

    load_settings.cache_clear()
    client = ContractClient(create_app("submit", str(SUBMIT_SOURCE)).test_client(), openapi_spec)  # type: ignore[arg-type]
    # WHEN she asks for an image and her balance
    for method, path in [("POST", "/v1/creations"), ("GET", "/v1/balance")]:
        kwargs = {"json": IMAGE} if method == "POST" else {}
        response = client.open(method, path, headers=auth("alice"), **kwargs)
        # THEN the answer is a retryable 503 busy, never a 500
        assert response.status_code == 503, response.json
        assert error_of(response) == "busy"
        assert int(response.headers["Retry-After"]) >= 1
    monkeypatch.undo()
    load_settings.cache_clear()
    assert ledger.balance("alice") == 5
