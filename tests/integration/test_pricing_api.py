"""The price list and the estimate through the real `submit` app on the emulators: the list is
the deployment's table, an estimate is what the submit of the same body then debits, and an
estimate (accepted or refused) debits and writes nothing. Every answer is checked against
docs/openapi.yaml."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import firestore

from shared.core.settings import Settings, load_settings
from shared.money.ledger import Ledger
from tests.support.contract import ContractClient, HttpContractClient

Auth = Callable[[str], dict[str, str]]
Client = ContractClient | HttpContractClient

BODIES = [
    pytest.param({"type": "image", "prompt": "a fox"}, id="image, default count"),
    pytest.param({"type": "image", "prompt": "a fox", "count": 3}, id="three images"),
    pytest.param(
        {"type": "image", "prompt": "a fox", "count": 2, "model": "gemini-2.5-flash-image"},
        id="two images of another model",
    ),
    pytest.param({"type": "video", "prompt": "a river"}, id="video, default duration"),
    pytest.param(
        {
            "type": "video",
            "prompt": "a river",
            "duration_seconds": 5,
            "model": "veo-3.0-generate-001",
        },
        id="five seconds of another model",
    ),
    pytest.param(
        {"type": "image", "prompt": "a fox", "webhook": {"url": "https://93.184.216.34/hook"}},
        id="with a webhook",
    ),
]


def everything_in(db: firestore.Client) -> dict[str, Any]:
    """Every document of the database, by path (subcollections included)."""
    found: dict[str, Any] = {}

    def walk(collections: Iterator[Any]) -> None:
        for collection in collections:
            for document in collection.list_documents():
                snapshot = document.get()
                if snapshot.exists:
                    found[document.path] = snapshot.to_dict()
                walk(document.collections())

    walk(db.collections())
    return found


def json_of(response: Any) -> dict[str, Any]:
    body = response.json() if callable(response.json) else response.json
    assert isinstance(body, dict), body
    return body


@pytest.fixture
def priced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A deployment with its own prices, one model priced apart (read on the app's first call)."""
    monkeypatch.setenv(
        "PRICING",
        '{"image_tokens_per_image": 2, "video_tokens_per_second": 3, "reel_tokens": 7,'
        ' "model_unit_tokens": {"gemini-2.5-flash-image": 5, "veo-3.0-generate-001": 4}}',
    )
    load_settings.cache_clear()
    yield
    load_settings.cache_clear()


def test_price_list_is_the_deployments_table(
    http_api: HttpContractClient, auth: Auth, stack: Settings
) -> None:
    # WHEN alice asks for the price list over HTTP
    response = http_api.get("/v1/pricing", headers=auth("alice"))
    # THEN it lists every allowed model at its unit price, the reel price and the limits
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, max-age=300"
    listed = json_of(response)
    assert {m["model"]: (m["type"], m["unit"]) for m in listed["models"]} == {
        model: (kind, "image" if kind == "image" else "second")
        for model, kind in stack.allowed_models.items()
    }
    assert listed["reel"] == {"tokens": stack.pricing.reel_tokens}
    assert listed["defaults"] == {
        "image": stack.default_image_model,
        "video": stack.default_video_model,
    }
    assert listed["limits"]["count"] == {"min": 1, "max": 4, "default": 1}
    assert listed["limits"]["duration_seconds"] == {"min": 4, "max": 8, "default": 8}
    # AND the same tag again is a 304
    again = http_api.get(
        "/v1/pricing", headers={**auth("alice"), "If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.headers["ETag"] == response.headers["ETag"]


def test_price_list_needs_a_token(http_api: HttpContractClient) -> None:
    assert http_api.get("/v1/pricing").status_code == 401


@pytest.mark.parametrize("body", BODIES)
def test_estimate_is_what_the_submit_then_debits(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger, body: dict[str, Any]
) -> None:
    # GIVEN alice holds 20 tokens
    ledger.grant("alice", 20)
    # WHEN she asks what a body costs, then submits it
    estimate = http_api.post("/v1/creations:estimate", json=body, headers=auth("alice"))
    assert estimate.status_code == 200, estimate.text
    submitted = http_api.post("/v1/creations", json=body, headers=auth("alice"))
    # THEN the submit debits exactly the estimate
    assert submitted.status_code == 202, submitted.text
    assert json_of(estimate) == {"cost": json_of(submitted)["cost"], "balance": 20, "enough": True}
    assert ledger.balance("alice") == 20 - json_of(estimate)["cost"]


@pytest.mark.usefixtures("priced", "local_switch")
@pytest.mark.parametrize("body", BODIES)
def test_estimate_follows_a_deployments_own_prices(
    api: ContractClient, auth: Auth, ledger: Ledger, body: dict[str, Any]
) -> None:
    # GIVEN a deployment with its own prices, and alice with 40 tokens
    ledger.grant("alice", 40)
    listed = json_of(api.get("/v1/pricing", headers=auth("alice")))
    unit = {m["model"]: m["unit_tokens"] for m in listed["models"]}
    # WHEN she asks what a body costs, then submits it
    estimate = json_of(api.post("/v1/creations:estimate", json=body, headers=auth("alice")))
    submitted = json_of(api.post("/v1/creations", json=body, headers=auth("alice")))
    # THEN the estimate, the submit's debit and the price list all agree
    model = submitted["request"]["model"]
    size = submitted["request"].get("count") or submitted["request"]["duration_seconds"]
    assert estimate["cost"] == submitted["cost"] == unit[model] * size
    assert listed["reel"] == {"tokens": 7}


@pytest.fixture
def local_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOW_LOOPBACK", "true")
    load_settings.cache_clear()


def test_estimate_debits_and_writes_nothing(
    http_api: HttpContractClient, auth: Auth, ledger: Ledger, db: firestore.Client
) -> None:
    # GIVEN bob holds 3 tokens (too few for a video), and the database as it stands
    ledger.grant("bob", 3)
    before = everything_in(db)
    # WHEN he estimates a video (under an Idempotency-Key, which an estimate ignores) and a reel
    video = http_api.post(
        "/v1/creations:estimate",
        json={"type": "video", "prompt": "a storm"},
        headers={**auth("bob"), "Idempotency-Key": "estimate-1"},
    )
    # THEN he hears the cost is beyond him, and nothing at all was written
    assert video.status_code == 200
    assert json_of(video) == {"cost": 8, "balance": 3, "enough": False}
    assert everything_in(db) == before
    # AND the key is free for a real submit (which the balance then refuses)
    refused = http_api.post(
        "/v1/creations",
        json={"type": "video", "prompt": "a storm"},
        headers={**auth("bob"), "Idempotency-Key": "estimate-1"},
    )
    assert refused.status_code == 402
    assert ledger.balance("bob") == 3


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/v1/creations", {"type": "image", "prompt": ""}, id="empty prompt"),
        pytest.param("/v1/creations", {"type": "image", "prompt": "x", "count": 9}, id="count"),
        pytest.param(
            "/v1/creations", {"type": "image", "prompt": "x", "model": "nope"}, id="unknown model"
        ),
        pytest.param(
            "/v1/creations", {"type": "video", "prompt": "x", "count": 2}, id="count on a video"
        ),
        pytest.param(
            "/v1/creations",
            {"type": "video", "prompt": "x", "image": "no-such-image"},
            id="unknown image (404)",
        ),
        pytest.param(
            "/v1/creations",
            {"type": "image", "prompt": "x", "webhook": {"url": "https://10.0.0.1/hook"}},
            id="private webhook",
        ),
        pytest.param(
            "/v1/creations",
            {"type": "image", "prompt": "x", "webhook": {"url": "http://127.0.0.1:9/hook"}},
            id="loopback webhook",
        ),
        pytest.param("/v1/reels", {"clips": ["only-one"]}, id="one clip"),
        pytest.param("/v1/reels", {"clips": ["nope-1", "nope-2"]}, id="unknown clips (404)"),
        pytest.param("/v1/creations", [1, 2], id="not an object"),
    ],
)
def test_a_bad_body_is_refused_as_its_submit_is(
    http_api: HttpContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    path: str,
    body: Any,
) -> None:
    # GIVEN carol holds 10 tokens
    ledger.grant("carol", 10)
    before = everything_in(db)
    # WHEN she estimates a bad body, and submits it
    estimate = http_api.post(f"{path}:estimate", json=body, headers=auth("carol"))
    submitted = http_api.post(path, json=body, headers=auth("carol"))
    # THEN both are the same refusal, naming the same field, and nothing was written
    assert estimate.status_code in (400, 404)
    assert (estimate.status_code, json_of(estimate)) == (
        submitted.status_code,
        json_of(submitted),
    )
    assert everything_in(db) == before


def test_estimate_route_is_not_an_id(http_api: HttpContractClient, auth: Auth) -> None:
    # `GET /v1/creations:estimate` is a 405 of the estimate, never a read of creation "estimate"
    response = http_api.get("/v1/creations:estimate", headers=auth("alice"))
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
