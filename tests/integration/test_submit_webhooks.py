"""Webhooks at submit, through the real `submit` app on the emulators: a `webhook` body field is
checked (a refusal is a `400` that debits nothing), stored on the creation with an empty
delivery record, named on the job, shown on every answer (each checked against
docs/openapi.yaml), and a worker announces `processing` for a webhook that asks for it.

No name is resolved and nothing is sent: every URL here is an IP literal, and the only one ever
accepted is a loopback one (with the local switch on).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.pubsub_v1 import SubscriberClient
from google.cloud.pubsub_v1.types import ReceivedMessage

from shared.core.settings import Settings, load_settings
from shared.money.ledger import Ledger
from tests.support.chain import PROJECT, Chain
from tests.support.contract import ContractClient
from tools.stack.waiting import wait_until

Auth = Callable[[str], dict[str, str]]
Pull = Callable[[str, int], list[ReceivedMessage]]

# Nobody listens on the discard port; nothing here delivers to it anyway (no webhooks function).
LOCAL_HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def local_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """`WEBHOOK_ALLOW_LOOPBACK=true`, as the local stack sets it (read on the app's first call)."""
    monkeypatch.setenv("WEBHOOK_ALLOW_LOOPBACK", "true")
    load_settings.cache_clear()


@pytest.fixture
def messages_on(stack: Settings) -> Iterator[Pull]:
    """Subscribe to the generate, stitch and status topics now; pull what arrived since."""
    subscriber = SubscriberClient()
    subscriptions: dict[str, str] = {}
    for topic in (stack.generate_topic, stack.stitch_topic, stack.status_topic):
        name = subscriber.subscription_path(PROJECT, f"test-wh-{topic}-{uuid.uuid4().hex[:8]}")
        subscriber.create_subscription(name=name, topic=subscriber.topic_path(PROJECT, topic))
        subscriptions[topic] = name

    def pull(topic: str, expected: int) -> list[ReceivedMessage]:
        received: list[ReceivedMessage] = []

        def enough() -> bool:
            response = subscriber.pull(
                subscription=subscriptions[topic], max_messages=50, timeout=10
            )
            received.extend(response.received_messages)
            if response.received_messages:
                subscriber.acknowledge(
                    subscription=subscriptions[topic],
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
            return len(received) >= expected

        wait_until(enough, 30, f"{expected} message(s) on {topic}")
        return received

    yield pull
    for name in subscriptions.values():
        subscriber.delete_subscription(subscription=name)


def json_of(response: Any) -> dict[str, Any]:
    """An answer's JSON body (every answer of the API has one)."""
    body = response.json
    assert isinstance(body, dict), body
    return body


def post(api: ContractClient, auth: Auth, body: dict[str, Any], **headers: str) -> Any:
    return api.post("/v1/creations", json=body, headers={**auth("alice"), **headers})


def test_a_webhook_is_stored_named_on_the_job_and_shown_on_every_answer(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    stack: Settings,
    local_switch: None,
    messages_on: Pull,
) -> None:
    ledger.grant("alice", 20)
    webhook = {"url": LOCAL_HOOK, "events": ["processing", "completed"]}
    body = {"type": "image", "prompt": "a lighthouse", "webhook": webhook}
    response = post(api, auth, body, **{"Idempotency-Key": "wh-1"})
    assert response.status_code == 202, response.json
    created = response.json
    record = {**webhook, "status": "pending", "attempts": 0}
    assert created["webhook"] == record
    document = db.collection("creations").document(created["id"]).get().to_dict()
    assert document is not None
    assert document["webhook"] == record
    (job,) = messages_on(stack.generate_topic, 1)
    assert json.loads(job.message.data)["webhook_events"] == ["processing", "completed"]
    # GET, the list and the replay show it too.
    got = api.get(f"/v1/creations/{created['id']}", headers=auth("alice"))
    assert json_of(got)["webhook"] == record
    listed = api.get("/v1/creations", headers=auth("alice"))
    assert [item["webhook"] for item in json_of(listed)["items"]] == [record]
    replay = post(api, auth, body, **{"Idempotency-Key": "wh-1"})
    assert (replay.status_code, replay.json["id"]) == (202, created["id"])
    assert replay.json["webhook"] == record
    # The same key with another webhook is another request.
    other = {**body, "webhook": {"url": "http://127.0.0.1:10/hook"}}
    conflict = post(api, auth, other, **{"Idempotency-Key": "wh-1"})
    assert (conflict.status_code, conflict.json["error"]["code"]) == (409, "conflict")
    assert ledger.balance("alice") == 20 - created["cost"]


def test_a_creation_without_a_webhook_shows_null(
    api: ContractClient, auth: Auth, ledger: Ledger, db: firestore.Client
) -> None:
    ledger.grant("alice", 5)
    response = post(api, auth, {"type": "image", "prompt": "a fox"})
    assert response.status_code == 202, response.json
    assert response.json["webhook"] is None
    document = db.collection("creations").document(response.json["id"]).get().to_dict()
    assert document is not None
    assert "webhook" not in document
    canceled = api.post(f"/v1/creations/{response.json['id']}:cancel", headers=auth("alice"))
    assert (canceled.status_code, json_of(canceled)["webhook"]) == (200, None)


@pytest.mark.parametrize(
    ("webhook", "says"),
    [
        (
            {"url": "https://10.0.0.1/hook"},
            "webhook.url: its host resolves to a private address (10.0.0.1)",
        ),
        ({"url": LOCAL_HOOK}, "webhook.url: its host resolves to a loopback address (127.0.0.1)"),
        (
            {"url": "https://169.254.169.254/"},
            "webhook.url: its host resolves to the metadata server",
        ),
        ({"url": "https://[fe80::1]/"}, "webhook.url: its host resolves to a link-local address"),
        ({"url": "ftp://192.0.2.1/"}, "webhook.url: must be an https URL"),
        ({"url": "https://u:p@10.0.0.1/"}, "webhook.url: must not carry credentials"),
        ({"url": "https://10.0.0.1/", "events": ["done"]}, "webhook.events.0: "),
        ({"url": "https://10.0.0.1/", "events": []}, "webhook.events: "),
        ({"url": "https://10.0.0.1/", "secret": "x"}, "webhook.secret: unknown field"),
    ],
)
def test_an_unsafe_or_malformed_webhook_is_a_400_that_debits_nothing(
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    webhook: dict[str, Any],
    says: str,
) -> None:
    ledger.grant("alice", 5)
    response = post(api, auth, {"type": "image", "prompt": "a fox", "webhook": webhook})
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_request"
    assert response.json["error"]["message"].startswith(says), response.json
    assert ledger.balance("alice") == 5
    assert [e["kind"] for e in ledger.entries("alice")] == ["grant"]
    assert list(db.collection("creations").stream()) == []


def test_the_local_switch_allows_http_to_loopback_and_nothing_else(
    api: ContractClient, auth: Auth, ledger: Ledger, local_switch: None
) -> None:
    ledger.grant("alice", 10)
    allowed = post(api, auth, {"type": "image", "prompt": "a", "webhook": {"url": LOCAL_HOOK}})
    assert allowed.status_code == 202, allowed.json
    assert allowed.json["webhook"]["url"] == LOCAL_HOOK
    balance = ledger.balance("alice")
    for url, says in [
        ("http://10.0.0.1/hook", "webhook.url: its host resolves to a private address"),
        ("http://192.168.1.20:8080/", "webhook.url: its host resolves to a private address"),
        ("http://169.254.169.254/", "webhook.url: its host resolves to the metadata server"),
        ("http://192.0.2.1/", "webhook.url: its host resolves to"),
    ]:
        refused = post(api, auth, {"type": "image", "prompt": "a", "webhook": {"url": url}})
        assert refused.status_code == 400, (url, refused.json)
        assert refused.json["error"]["message"].startswith(says), refused.json
    assert ledger.balance("alice") == balance


@pytest.fixture
def chain(load_chain: Callable[..., Chain]) -> Chain:
    return load_chain(
        "generate", "stitch", OFFLINE_VIDEO_LONG_SIDE_PX="320", WEBHOOK_ALLOW_LOOPBACK="true"
    )


def status_events(pull: Pull, topic: str, expected: int) -> list[tuple[str, str, dict[str, str]]]:
    return [
        (
            json.loads(m.message.data)["creation_id"],
            json.loads(m.message.data)["status"],
            dict(m.message.attributes),
        )
        for m in pull(topic, expected)
    ]


def test_a_worker_announces_processing_only_for_a_webhook_that_asks(
    chain: Chain, stack: Settings, messages_on: Pull
) -> None:
    chain.ledger.grant("alice", 20)
    asks = chain.submit(
        "alice",
        {"type": "image", "prompt": "a", "webhook": {"url": LOCAL_HOOK, "events": ["processing"]}},
    )
    finals = chain.submit("alice", {"type": "image", "prompt": "b", "webhook": {"url": LOCAL_HOOK}})
    assert chain.work(asks) == 200
    assert chain.work(finals) == 200
    told = status_events(messages_on, stack.status_topic, 3)
    by_move = {(cid, status): attributes for cid, status, attributes in told}
    assert set(by_move) == {
        (asks["id"], "processing"),
        (asks["id"], "draft"),
        (finals["id"], "draft"),
    }
    assert by_move[(asks["id"], "processing")].get("webhook") == "1"
    assert by_move[(asks["id"], "processing")]["attempt"] == "1"
    assert "webhook" not in by_move[(asks["id"], "draft")]  # `completed` was not asked for
    assert by_move[(finals["id"], "draft")].get("webhook") == "1"


def test_a_reel_takes_a_webhook(chain: Chain, stack: Settings, messages_on: Pull) -> None:
    chain.ledger.grant("alice", 100)
    clips = []
    for _ in range(2):
        clip = chain.submit("alice", {"type": "video", "prompt": "waves", "duration_seconds": 4})
        assert chain.work(clip) == 200
        clips.append(clip["id"])
    webhook = {"url": LOCAL_HOOK, "events": ["completed", "failed"]}
    response = chain.api.post(
        "/v1/reels", json={"clips": clips, "webhook": webhook}, headers=chain.auth("alice")
    )
    assert response.status_code == 202, response.json
    reel = json_of(response)
    assert reel["webhook"] == {**webhook, "status": "pending", "attempts": 0}
    assert chain.doc(reel["id"])["webhook"] == reel["webhook"]
    (job,) = messages_on(stack.stitch_topic, 1)
    assert json.loads(job.message.data)["webhook_events"] == ["completed", "failed"]
    refused = chain.api.post(
        "/v1/reels",
        json={"clips": clips, "webhook": {"url": "http://10.1.2.3/"}},
        headers=chain.auth("alice"),
    )
    assert refused.status_code == 400, refused.json
    assert json_of(refused)["error"]["message"].startswith(
        "webhook.url: its host resolves to a private"
    )
