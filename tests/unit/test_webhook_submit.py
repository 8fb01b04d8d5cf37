"""Submitting with a webhook, on the in-memory store and a stub resolver (no name is resolved
and nothing is sent): the body's `webhook` checked, refused with a 400 naming the field and
debiting nothing, stored on the creation with an empty delivery record, its events on the job,
and shown on every answer. (The HTTP path on the emulators: tests/integration.)"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

import flask
import pytest

from shared.core.errors import InvalidRequest
from shared.core.settings import Settings
from shared.creations.model import Creation
from shared.creations.reading import CreationReader
from shared.intake.actions import CreationActions
from shared.intake.api import SubmitApi
from shared.intake.auth import FirebaseTokenVerifier
from shared.intake.parsing import checked_webhook, parse_reel_body, parse_webhook
from shared.intake.submission import Unconfirmed
from shared.store import paths
from shared.webhooks import WebhookBody
from shared.wiring import submissions
from tests.support.fakes import (
    SETTINGS,
    OneUser,
    RecordingAnnouncer,
    RecordingMediaStore,
    RecordingPublisher,
    StubResolver,
    UnsignedMediaLinks,
)
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import IMAGE

USER = "u"
HOOK = "https://hooks.example.com/in?source=creations"
PUBLIC = "93.184.215.14"  # a stub's answer: nothing is ever sent to it


class World:
    def __init__(self, resolver: StubResolver, settings: Settings = SETTINGS) -> None:
        self.store = MemoryDocuments()
        self.publisher = RecordingPublisher()
        self.resolver = resolver
        self.announcer = RecordingAnnouncer()
        service = submissions(self.store, settings, self.publisher, self.announcer)
        self.service = service
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
                announcer=self.announcer,
            ),
            media_links=UnsignedMediaLinks(),
            resolver=resolver,
        )

    def call(
        self, method: str, path: str, body: Any = None, key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": "Bearer t"} | ({"Idempotency-Key": key} if key else {})
        with flask.Flask(__name__).test_request_context(
            path, method=method, json=body, headers=headers
        ):
            response = self.api(flask.request)
        return response.status_code, cast(dict[str, Any], response.get_json())

    def post(self, webhook: Any, key: str | None = None) -> tuple[int, dict[str, Any]]:
        body = {"type": "image", "prompt": "a lighthouse", "webhook": webhook}
        return self.call("POST", "/v1/creations", body, key)

    def balance(self) -> int:
        return int(self.call("GET", "/v1/balance")[1]["tokens"])


def message(answer: tuple[int, dict[str, Any]]) -> str:
    status, body = answer
    assert status == 400, body
    assert body["error"]["code"] == "invalid_request"
    return str(body["error"]["message"])


# --- the body -------------------------------------------------------------------------------


def test_a_webhook_asks_for_the_final_events_unless_it_names_others() -> None:
    assert parse_webhook({"type": "image", "webhook": {"url": HOOK}}) == WebhookBody(
        url=HOOK, events=["completed", "failed", "canceled"]
    )
    named = parse_webhook({"webhook": {"url": HOOK, "events": ["processing", "failed", "failed"]}})
    assert named is not None
    assert named.events == ["processing", "failed"]  # each once
    assert parse_webhook({"type": "image"}) is None
    assert parse_webhook({"webhook": None}) is None
    reel = parse_reel_body({"clips": ["a", "b"], "webhook": {"url": HOOK}})
    assert reel.webhook == WebhookBody(url=HOOK)


@pytest.mark.parametrize(
    ("webhook", "says"),
    [
        ({"url": HOOK, "events": ["done"]}, "webhook.events.0: "),
        ({"url": HOOK, "events": []}, "webhook.events: "),
        ({"url": HOOK, "events": "completed"}, "webhook.events: "),
        ({"events": ["completed"]}, "webhook.url: is required"),
        ({"url": ""}, "webhook.url: "),
        ({"url": HOOK, "secret": "s"}, "webhook.secret: unknown field"),
        ("https://hooks.example.com/in", "webhook: "),
    ],
)
def test_a_malformed_webhook_is_a_400_naming_its_field(webhook: Any, says: str) -> None:
    world = World(StubResolver(PUBLIC))
    assert message(world.post(webhook)).startswith(says)
    assert world.resolver.asked == []  # refused before any name was looked up
    with pytest.raises(InvalidRequest, match=f"^{says}"):
        parse_reel_body({"clips": ["a", "b"], "webhook": webhook})


# --- the address ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "addresses", "says"),
    [
        ("http://hooks.example.com/in", [PUBLIC], "webhook.url: must be an https URL"),
        (
            HOOK,
            ["10.0.0.1"],
            "webhook.url: its host resolves to a private address (10.0.0.1)",
        ),
        (HOOK, [PUBLIC, "127.0.0.1"], "webhook.url: its host resolves to a loopback address"),
        ("https://169.254.169.254/computeMetadata/v1/", [], "webhook.url: its host resolves to"),
        ("https://metadata.google.internal/", [PUBLIC], "webhook.url: must not name the metadata"),
        ("https://user:pw@hooks.example.com/", [PUBLIC], "webhook.url: must not carry credentials"),
        (HOOK, [], "webhook.url: its host hooks.example.com does not resolve"),
    ],
)
def test_an_unsafe_webhook_is_a_400_that_debits_and_queues_nothing(
    url: str, addresses: list[str], says: str
) -> None:
    world = World(StubResolver(*addresses))
    assert message(world.post({"url": url})).startswith(says)
    assert world.balance() == 30
    assert world.publisher.jobs == []
    assert world.store.read_collection("creations") == []


def test_the_local_switch_allows_http_to_loopback_and_nothing_else() -> None:
    local = World(
        StubResolver("127.0.0.1"), SETTINGS.model_copy(update={"webhook_allow_loopback": True})
    )
    status, body = local.post({"url": "http://127.0.0.1:8099/hook"})
    assert status == 202, body
    assert body["webhook"]["url"] == "http://127.0.0.1:8099/hook"
    assert message(local.post({"url": "http://10.0.0.1/hook"})).startswith(
        "webhook.url: its host resolves to a private address (10.0.0.1)"
    )
    assert message(local.post({"url": "http://169.254.169.254/"})).startswith(
        "webhook.url: its host resolves to the metadata server"
    )
    local.resolver.addresses = [PUBLIC]
    assert message(local.post({"url": "http://hooks.example.com/in"})) == (
        "webhook.url: must be an https URL"
    )
    # Off (the default, and production's): loopback is refused like any private address.
    default = World(StubResolver(PUBLIC))
    assert message(default.post({"url": "http://127.0.0.1:8099/hook"})).startswith(
        "webhook.url: its host resolves to a loopback address"
    )


def test_checked_webhook_resolves_the_host_and_port_it_will_send_to() -> None:
    resolver = StubResolver(PUBLIC)
    hook = WebhookBody(url="https://hooks.example.com:8443/in")
    assert checked_webhook(hook, resolver=resolver, allow_loopback=False) == hook
    assert checked_webhook(None, resolver=resolver, allow_loopback=False) is None
    assert resolver.asked == [("hooks.example.com", 8443)]


# --- stored, queued, shown ------------------------------------------------------------------


def test_a_webhook_is_stored_with_an_empty_record_and_its_events_go_on_the_job() -> None:
    world = World(StubResolver(PUBLIC))
    status, body = world.post({"url": HOOK, "events": ["processing", "completed"]})
    assert status == 202, body
    stored = world.store.creation(body["id"])
    assert stored["webhook"] == {
        "url": HOOK,
        "events": ["processing", "completed"],
        "status": "pending",
        "attempts": 0,
    }
    (job,) = world.publisher.jobs
    assert job.webhook_events == ("processing", "completed")
    assert body["webhook"] == {
        "url": HOOK,
        "events": ["processing", "completed"],
        "status": "pending",
        "attempts": 0,
    }
    assert world.resolver.asked == [("hooks.example.com", 443)]
    # GET, the list and cancel show it too.
    assert world.call("GET", f"/v1/creations/{body['id']}")[1]["webhook"] == body["webhook"]
    (listed,) = world.call("GET", "/v1/creations")[1]["items"]
    assert listed["webhook"] == body["webhook"]
    status, canceled = world.call("POST", f"/v1/creations/{body['id']}:cancel")
    assert status == 200, canceled
    assert canceled["webhook"] == body["webhook"]
    (told,) = world.announcer.events
    assert (told.status, told.webhook) == ("canceled", False)  # not among the events asked for


def test_a_creation_without_a_webhook_shows_null_and_its_job_names_no_events() -> None:
    world = World(StubResolver())
    status, body = world.call("POST", "/v1/creations", {"type": "image", "prompt": "a fox"})
    assert status == 202, body
    assert body["webhook"] is None
    assert "webhook" not in world.store.creation(body["id"])
    assert world.publisher.jobs[0].webhook_events == ()
    assert world.resolver.asked == []


def test_a_replay_answers_without_resolving_and_another_webhook_is_a_conflict() -> None:
    world = World(StubResolver(PUBLIC))
    first = world.post({"url": HOOK}, key="k1")
    assert first[0] == 202
    world.resolver.addresses = ["10.0.0.1"]  # the name moved since: the replay is what was made
    replay = world.post({"url": HOOK}, key="k1")
    assert replay == (202, first[1])
    assert len(world.resolver.asked) == 1
    status, body = world.post({"url": "https://other.example.com/in"}, key="k1")
    assert (status, body["error"]["code"]) == (409, "conflict")
    status, body = world.post({"url": HOOK, "events": ["failed"]}, key="k1")
    assert (status, body["error"]["code"]) == (409, "conflict")
    assert world.balance() == 30 - first[1]["cost"]


def test_the_delivery_record_is_shown_without_the_deliverers_bookkeeping() -> None:
    at = dt.datetime(2026, 12, 2, 3, 4, 5, tzinfo=dt.UTC)
    creation = Creation(
        id="c1",
        user_id=USER,
        type="image",
        status="draft",
        cost=3,
        webhook={
            "url": HOOK,
            "events": ["completed", "failed", "bogus"],
            "status": "delivered",
            "event": "creation.completed",
            "attempts": 2,
            "last_response": {"status_code": 204, "at": at},
            "delivered_at": at,
            "done": ["completed"],
        },
    )
    assert creation.to_api()["webhook"] == {
        "url": HOOK,
        "events": ["completed", "failed"],
        "status": "delivered",
        "event": "creation.completed",
        "attempts": 2,
        "last_response": {"status_code": 204, "at": "2026-12-02T03:04:05Z"},
        "delivered_at": "2026-12-02T03:04:05Z",
    }
    assert creation.job.webhook_events == ("completed", "failed")
    odd = creation.model_copy(update={"webhook": {"url": HOOK, "status": "?", "attempts": True}})
    assert odd.to_api()["webhook"] == {
        "url": HOOK,
        "events": [],
        "status": "pending",
        "attempts": 0,
    }
    assert creation.model_copy(update={"webhook": None}).to_api()["webhook"] is None
    assert creation.model_copy(update={"webhook": None}).job.webhook_events == ()


def test_a_stored_creation_reads_back_with_its_webhook() -> None:
    world = World(StubResolver(PUBLIC))
    status, body = world.post({"url": HOOK})
    assert status == 202, body
    (snapshot,) = world.store.read(paths.creation(body["id"]))
    assert Creation.of(snapshot).job.webhook_events == ("completed", "failed", "canceled")


def test_a_cancel_asked_for_is_announced_as_the_webhooks() -> None:
    world = World(StubResolver(PUBLIC))
    status, body = world.post({"url": HOOK})  # the default: the final events
    assert status == 202, body
    assert world.call("POST", f"/v1/creations/{body['id']}:cancel")[0] == 200
    (told,) = world.announcer.events
    assert (told.status, told.webhook, told.attributes().get("webhook")) == ("canceled", True, "1")


def test_an_unconfirmed_debit_queues_a_job_that_names_the_webhooks_events() -> None:
    """Firestore stopped answering after the commit: the job is published from what submit
    knows, not from the document, and still says what the webhook asks for."""
    world = World(StubResolver(PUBLIC))
    world.store.lose_next_commit_answer(then_unavailable=1)
    hook = WebhookBody(url=HOOK, events=["processing", "failed"])
    with pytest.raises(Unconfirmed) as caught:
        world.service.submit(
            user_id=USER, request=IMAGE, idempotency_key=None, fingerprint="f", webhook=hook
        )
    (job,) = world.publisher.jobs
    assert (job.creation_id, job.webhook_events) == (
        caught.value.creation_id,
        ("processing", "failed"),
    )
    assert world.store.creation(job.creation_id)["webhook"]["events"] == ["processing", "failed"]
