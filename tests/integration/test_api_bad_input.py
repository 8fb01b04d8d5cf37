"""Hostile and odd input over real HTTP: always a clear 4xx in the contract's shape, never a 500,
and never a change to anyone's balance. Found by review (defect 5) and by the fuzzing of
tests/integration/test_api_fuzz.py; each case here failed before its fix."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from shared.money.ledger import Ledger
from tests.support.contract import ContractClient, HttpContractClient

Auth = Callable[[str], dict[str, str]]
IMAGE = {"type": "image", "prompt": "a lighthouse"}
JSON = {"Content-Type": "application/json"}


def error_of(response: object) -> tuple[int, str, str]:
    body = response.json()  # type: ignore[attr-defined]
    return response.status_code, body["error"]["code"], body["error"]["message"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 30_000, id="30000 open brackets"),
        pytest.param(b"[" * 30_000 + b"]" * 30_000, id="30000 nested lists"),
        pytest.param(
            b'{"type": "image", "prompt": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", id="deep field"
        ),
    ],
)
def test_deeply_nested_body_is_400_invalid_json(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger, body: bytes
) -> None:
    # GIVEN alice holds 5 tokens
    ledger.grant("alice", 5)
    # WHEN she sends a body nested deeper than any request of the contract
    for path in ("/v1/creations", "/v1/reels"):
        response = http_api.post(path, data=body, headers={**auth("alice"), **JSON})
        # THEN it is refused as JSON the API does not take, not a 500
        status, code, _ = error_of(response)
        assert (status, code) == (400, "invalid_json"), response.text
    assert ledger.balance("alice") == 5


@pytest.mark.parametrize(
    "limit",
    [
        pytest.param("\N{SUPERSCRIPT TWO}", id="superscript two"),
        pytest.param("\N{ARABIC-INDIC DIGIT THREE}", id="arabic-indic three"),
        pytest.param("\N{FULLWIDTH DIGIT ONE}\N{FULLWIDTH DIGIT ZERO}", id="fullwidth ten"),
        pytest.param("9" * 5_000, id="5000 digits"),
        pytest.param("+5", id="plus sign"),
        pytest.param("5 ", id="trailing space"),
    ],
)
def test_limit_that_is_not_plain_digits_is_400(
    http_api: HttpContractClient, auth: Auth, limit: str
) -> None:
    # `int()` takes any Unicode digit and refuses over 4300 of them; the query takes 1-100
    # written in ASCII digits only.
    response = http_api.get("/v1/creations", params={"limit": limit}, headers=auth("alice"))
    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_request"), response.text
    assert message.startswith("limit:")


def test_leading_zeros_in_limit_are_still_a_number(
    http_api: HttpContractClient, auth: Auth
) -> None:
    response = http_api.get("/v1/creations", params={"limit": "005"}, headers=auth("alice"))
    assert response.status_code == 200, response.text


SURROGATE = "\\ud800"  # as JSON writes it: a lone high surrogate, not a character


@pytest.mark.parametrize(
    ("path", "template", "field"),
    [
        ("/v1/creations", '{"type": "image", "prompt": "a %s cat"}', "prompt"),
        (
            "/v1/creations",
            '{"type": "image", "prompt": "x", "negative_prompt": "%s"}',
            "negative_prompt",
        ),
        ("/v1/creations", '{"type": "image", "prompt": "x", "model": "%s"}', "model"),
        ("/v1/creations", '{"type": "video", "prompt": "%s"}', "prompt"),
        ("/v1/creations", '{"type": "image", "prompt": "x", "%s": 1}', "body"),
        ("/v1/reels", '{"clips": ["a", "b"], "title": "%s"}', "title"),
        ("/v1/reels", '{"clips": ["a", "%s"]}', "clips[1]"),
    ],
)
def test_lone_surrogate_in_a_string_is_400_naming_the_field(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger, path: str, template: str, field: str
) -> None:
    # GIVEN alice holds 20 tokens
    ledger.grant("alice", 20)
    # WHEN a string of her body holds half a UTF-16 pair (valid JSON syntax, but no text:
    # Firestore, like any UTF-8 store, cannot hold it)
    body = (template % SURROGATE).encode()
    response = http_api.post(path, data=body, headers={**auth("alice"), **JSON})
    # THEN it is refused naming the field, and nothing was debited
    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_request"), response.text
    assert message.startswith(f"{field}:"), message
    assert ledger.balance("alice") == 20


def test_surrogate_pair_is_one_character_and_accepted(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger
) -> None:
    ledger.grant("alice", 5)
    body = b'{"type": "image", "prompt": "a \\ud83d\\ude00 cat"}'
    response = http_api.post("/v1/creations", data=body, headers={**auth("alice"), **JSON})
    assert response.status_code == 202, response.text
    assert response.json()["request"]["prompt"] == "a \N{GRINNING FACE} cat"


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(b"\xff\xfe", id="latin-1 bytes"),
        pytest.param("ключ".encode(), id="utf-8 bytes"),
        pytest.param(b"k" * 256, id="256 characters"),
    ],
)
def test_odd_idempotency_key_is_400(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger, key: bytes
) -> None:
    ledger.grant("alice", 5)
    response = http_api.post(
        "/v1/creations", json=IMAGE, headers={**auth("alice"), "Idempotency-Key": key}
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "invalid_request"), response.text
    assert message.startswith("Idempotency-Key:")
    assert ledger.balance("alice") == 5


@pytest.mark.parametrize("key", [b"a\x01b", b"a\x7fb", b"a\x00b"], ids=["SOH", "DEL", "NUL"])
def test_control_character_in_idempotency_key_is_400_from_http_or_app(
    submit_url: str, api: ContractClient, auth: Auth, ledger: Ledger, key: bytes
) -> None:
    # A control character is not allowed in an HTTP field value (RFC 9110 5.5): the HTTP server
    # (gunicorn here, Google's front end in production) refuses the request before the app
    # sees it, in its own words. Nothing is debited either way.
    ledger.grant("alice", 5)
    headers: dict[str, str | bytes] = {**auth("alice"), "Idempotency-Key": key}
    over_http = requests.post(f"{submit_url}/v1/creations", json=IMAGE, headers=headers, timeout=30)
    assert over_http.status_code == 400, over_http.text
    # AND should a front end pass one on, the app refuses it in the contract's shape.
    in_process = api.post(
        "/v1/creations", json=IMAGE, headers={**headers, "Idempotency-Key": key.decode("latin-1")}
    )
    assert in_process.status_code == 400
    assert in_process.json is not None
    assert in_process.json["error"]["code"] == "invalid_request"
    assert in_process.json["error"]["message"].startswith("Idempotency-Key:")
    assert ledger.balance("alice") == 5


@pytest.mark.parametrize(
    "key", ['a "quoted" key/with\\slashes', "__reserved__", "..", "k" * 255, "~!@#$%^&*()"]
)
def test_any_printable_ascii_idempotency_key_works_and_replays(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger, key: str
) -> None:
    ledger.grant("alice", 5)
    headers = {**auth("alice"), "Idempotency-Key": key}
    first = http_api.post("/v1/creations", json=IMAGE, headers=headers)
    again = http_api.post("/v1/creations", json=IMAGE, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202), (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert ledger.balance("alice") == 4


@pytest.mark.parametrize(
    "creation_id",
    [
        pytest.param("__reserved__", id="firestore-reserved id"),
        pytest.param("__x__", id="short firestore-reserved id"),
        pytest.param("%2e%2e", id="dot dot"),
        pytest.param("a%2Fb", id="encoded slash"),
        pytest.param("%00", id="NUL"),
        pytest.param("%ff", id="not utf-8"),
        pytest.param("%F0%9F%98%80", id="emoji"),
        pytest.param("%ED%A0%80", id="encoded surrogate"),
        pytest.param("a" * 129, id="129 characters"),
        pytest.param("a%20b", id="space"),
    ],
)
def test_odd_creation_id_is_404_on_every_call(
    http_api: HttpContractClient, auth: Auth, creation_id: str
) -> None:
    # An id no creation can have is simply not found: not a 400, not a 500, not a 503.
    for method, path in [
        ("GET", f"/v1/creations/{creation_id}"),
        ("DELETE", f"/v1/creations/{creation_id}"),
        ("POST", f"/v1/creations/{creation_id}:cancel"),
    ]:
        response = http_api.open(method, path, headers=auth("alice"))
        status, code, _ = error_of(response)
        assert (status, code) == (404, "not_found"), (method, path, response.text)


def test_firestore_reserved_clip_id_is_404_naming_the_clip(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger
) -> None:
    ledger.grant("alice", 5)
    response = http_api.post("/v1/reels", json={"clips": ["__a__", "__b__"]}, headers=auth("alice"))
    status, code, message = error_of(response)
    assert (status, code) == (404, "not_found"), response.text
    assert message.startswith("clips[0]:"), message
    assert ledger.balance("alice") == 5


@pytest.mark.parametrize(
    "path",
    [
        "/v1/creations/a%0Ab",
        "/v1/creations/a%0Ab:cancel",
        "/v1/creations/%0A",
        "/robots.txt",
        "/favicon.ico",
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE", "POST"])
def test_path_the_framework_routes_itself_is_404_json(
    submit_url: str, auth: Auth, method: str, path: str
) -> None:
    # functions-framework's own URL map answers these before `submit` sees them (a newline
    # does not match its `<path:path>`); the answer must still be the contract's 404.
    response = requests.request(method, f"{submit_url}{path}", headers=auth("alice"), timeout=30)
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"] == "application/json", response.text
    assert response.json()["error"]["code"] == "not_found"
    assert response.headers["Cache-Control"] == "no-store"
