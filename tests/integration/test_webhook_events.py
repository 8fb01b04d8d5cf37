"""The webhooks function's app (functions-framework, in process) on the emulators, fed status
events as its push subscription would: what it sends, what it records, what it acks and what
it has redelivered. Receivers listen on 127.0.0.1 only."""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.chain import Chain, job_of
from tests.support.webhook_receiver import Receiver, receiving

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler, logger = Lines(), logging.getLogger("shared")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def chain(load_chain: Callable[..., Chain]) -> Chain:
    return load_chain(
        "generate",
        "webhooks",
        OFFLINE_IMAGE_LONG_SIDE_PX="64",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_LOOPBACK="true",
    )


def draft_with_webhook(chain: Chain, url: str) -> dict[str, Any]:
    """A draft of alice's whose document carries a webhook asking for `completed`."""
    chain.ledger.grant("alice", 5)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    assert chain.work(created) == 200
    webhook = {"url": url, "events": ["completed"], "status": "pending", "attempts": 0}
    chain.db.document(f"creations/{created['id']}").update({"webhook": webhook})
    return created


def draft_event(created: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**job_of(created), "status": "draft", "attempt": 1, "webhook": True, **fields}


def test_a_status_event_is_signed_sent_recorded_and_not_sent_twice(
    chain: Chain, lines: Lines
) -> None:
    with receiving() as receiver:
        created = draft_with_webhook(chain, f"{receiver.url}/in?k=1")
        assert chain.deliver("webhooks", draft_event(created)) == 200
        assert chain.deliver("webhooks", draft_event(created)) == 200  # a repeat
    [request] = receiver.received
    event = Webhook(SECRET).verify(request.body, request.headers)
    assert event["type"] == "creation.completed" and event["data"]["id"] == created["id"]
    assert event["data"]["media"][0]["url"].startswith("http")
    record = chain.doc(created["id"])["webhook"]
    assert (record["status"], record["attempts"], record["done"]) == (
        "delivered",
        1,
        ["creation.completed"],
    )
    assert any("finished already" in line for line in lines.messages)


def test_a_503_is_recorded_and_answered_500_so_pubsub_redelivers(chain: Chain) -> None:
    with receiving(Receiver(script=[503, 200])) as receiver:
        created = draft_with_webhook(chain, receiver.url)
        assert chain.deliver("webhooks", draft_event(created)) == 500
        record = chain.doc(created["id"])["webhook"]
        assert (record["status"], record["last_response"]["status_code"]) == ("retrying", 503)
        assert chain.deliver("webhooks", draft_event(created)) == 200
    assert chain.doc(created["id"])["webhook"]["status"] == "delivered"
    assert len(receiver.received) == 2


@pytest.mark.parametrize(
    "fields",
    [{"webhook": False}, {"user_id": "mallory"}, {"status": "failed"}, {"type": "video"}],
    ids=["not-asked", "another-owner", "another-status", "another-type"],
)
def test_an_event_that_is_not_the_creations_sends_nothing_and_is_acked(
    chain: Chain, fields: dict[str, Any]
) -> None:
    with receiving() as receiver:
        created = draft_with_webhook(chain, receiver.url)
        assert chain.deliver("webhooks", draft_event(created, **fields)) == 200
    assert receiver.received == []
    assert chain.doc(created["id"])["webhook"]["status"] == "pending"


def test_a_malformed_message_is_acked_with_one_line(chain: Chain, lines: Lines) -> None:
    assert chain.deliver("webhooks", {"creation_id": 5}) == 200
    dropped = [line for line in lines.messages if "event dropped" in line]
    assert len(dropped) == 1 and "not a status event" in dropped[0]
