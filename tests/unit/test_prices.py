"""The price list clients read and the estimate, on the in-memory store: the list is the
deployment's table (its own prices included), an estimate is `creation_cost` of the request a
submit would make, and an estimate writes nothing and is refused as the submit is. (Over HTTP
on the emulators: tests/integration/test_pricing_api.py.)"""

from __future__ import annotations

from typing import Any, cast

import flask
import pytest

from shared.core.settings import Pricing, Settings
from shared.creations.reading import CreationReader
from shared.intake.actions import CreationActions
from shared.intake.api import SubmitApi
from shared.intake.auth import FirebaseTokenVerifier
from shared.intake.parsing import parse_creation_request
from shared.intake.prices import estimate, price_list, price_list_etag
from shared.money.pricing import creation_cost
from shared.wiring import submissions
from tests.support.fakes import (
    OneUser,
    RecordingAnnouncer,
    RecordingMediaStore,
    RecordingPublisher,
    StubResolver,
    UnsignedMediaLinks,
)
from tests.support.memory_store import MemoryDocuments

USER = "u"
PUBLIC = "93.184.215.14"  # a stub resolver's answer: nothing is ever sent to it

PRICED = Settings(
    pricing=Pricing(
        image_tokens_per_image=2,
        video_tokens_per_second=3,
        reel_tokens=7,
        model_unit_tokens={"gemini-2.5-flash-image": 5},
    )
)


class World:
    """The submit API on the in-memory store, USER holding 30 tokens."""

    def __init__(self, resolver: StubResolver, settings: Settings) -> None:
        self.store = MemoryDocuments()
        self.publisher = RecordingPublisher()
        self.resolver = resolver
        announcer = RecordingAnnouncer()
        service = submissions(self.store, settings, self.publisher, announcer)
        service.ledger.grant(USER, 30)
        self.api = SubmitApi(
            settings=settings,
            verifier=cast(FirebaseTokenVerifier, OneUser()),
            ledger=service.ledger,
            creations=CreationReader(self.store),
            submissions=service,
            actions=CreationActions(
                self.store,
                settings,
                refunds=service.refunds,
                media=RecordingMediaStore(),
                announcer=announcer,
            ),
            media_links=UnsignedMediaLinks(),
            resolver=resolver,
        )

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"Authorization": "Bearer t"} | ({"Idempotency-Key": key} if key else {})
        with flask.Flask(__name__).test_request_context(
            path, method=method, json=body, headers=headers
        ):
            response = self.api(flask.request)
        return response.status_code, response.get_json(silent=True), dict(response.headers)


def test_the_list_names_every_allowed_model_at_its_unit_price() -> None:
    listed = price_list(PRICED)
    assert listed["models"] == [
        {
            "model": "gemini-2.5-flash-image",
            "type": "image",
            "unit": "image",
            "unit_tokens": 5,
            "default": False,
        },
        {
            "model": "imagen-4.0-generate-001",
            "type": "image",
            "unit": "image",
            "unit_tokens": 2,
            "default": True,
        },
        {
            "model": "veo-3.0-fast-generate-001",
            "type": "video",
            "unit": "second",
            "unit_tokens": 3,
            "default": True,
        },
        {
            "model": "veo-3.0-generate-001",
            "type": "video",
            "unit": "second",
            "unit_tokens": 3,
            "default": False,
        },
    ]
    assert listed["reel"] == {"tokens": 7}
    assert listed["defaults"] == {
        "image": "imagen-4.0-generate-001",
        "video": "veo-3.0-fast-generate-001",
    }
    assert listed["limits"] == {
        "count": {"min": 1, "max": 4, "default": 1},
        "duration_seconds": {"min": 4, "max": 8, "default": 8},
        "clips": {"min": 2, "max": 20},
    }


def test_the_tag_is_stable_and_changes_with_the_prices() -> None:
    assert price_list_etag(price_list(PRICED)) == price_list_etag(price_list(PRICED))
    assert price_list_etag(price_list(PRICED)) != price_list_etag(price_list(Settings()))


@pytest.mark.parametrize(
    "body",
    [
        {"type": "image", "prompt": "x"},
        {"type": "image", "prompt": "x", "count": 4, "model": "gemini-2.5-flash-image"},
        {"type": "video", "prompt": "x"},
        {"type": "video", "prompt": "x", "duration_seconds": 5},
    ],
)
def test_a_cost_computed_from_the_list_is_the_debit(body: dict[str, object]) -> None:
    # What a client computes from the list alone is what `creation_cost` charges.
    listed = price_list(PRICED)
    kind = str(body["type"])
    model = body.get("model", listed["defaults"][kind])
    unit = next(m["unit_tokens"] for m in listed["models"] if m["model"] == model)
    size_field = "count" if kind == "image" else "duration_seconds"
    size = body.get(size_field, listed["limits"][size_field]["default"])
    request = parse_creation_request(body, PRICED)
    assert unit * size == creation_cost(request, PRICED)


def test_an_estimate_says_whether_the_balance_covers_it() -> None:
    video = parse_creation_request({"type": "video", "prompt": "x"}, PRICED)
    assert estimate(video, 24, PRICED).view() == {"cost": 24, "balance": 24, "enough": True}
    assert estimate(video, 23, PRICED).view() == {"cost": 24, "balance": 23, "enough": False}


def test_an_estimate_through_the_api_writes_nothing_and_checks_the_webhook() -> None:
    world = World(StubResolver(PUBLIC), PRICED)
    commits = world.store.commits
    body = {"type": "image", "prompt": "x", "count": 3, "webhook": {"url": "https://h.example"}}
    status, answer, _ = world.call("POST", "/v1/creations:estimate", body, key="k")
    assert (status, answer) == (200, {"cost": 6, "balance": 30, "enough": True})
    assert world.store.commits == commits
    assert world.resolver.asked == [("h.example", 443)]
    assert world.publisher.sent == []


def test_an_estimate_refuses_an_unsafe_webhook_as_a_submit_does() -> None:
    world = World(StubResolver("10.0.0.1"), PRICED)
    body = {"type": "image", "prompt": "x", "webhook": {"url": "https://h.example"}}
    estimated = world.call("POST", "/v1/creations:estimate", body)[:2]
    submitted = world.call("POST", "/v1/creations", body)[:2]
    assert estimated == submitted
    assert estimated[0] == 400
    assert estimated[1]["error"]["message"].startswith("webhook.url:")


def test_the_api_answers_the_list_cacheable_and_a_304_for_its_tag() -> None:
    world = World(StubResolver(PUBLIC), PRICED)
    status, listed, headers = world.call("GET", "/v1/pricing")
    assert (status, listed) == (200, price_list(PRICED))
    assert headers["Cache-Control"] == "private, max-age=300"
    assert headers["ETag"] == f'"{price_list_etag(price_list(PRICED))}"'
    with flask.Flask(__name__).test_request_context(
        "/v1/pricing", headers={"Authorization": "Bearer t", "If-None-Match": headers["ETag"]}
    ):
        unchanged = world.api(flask.request)
    assert unchanged.status_code == 304
    assert unchanged.get_data() == b""
