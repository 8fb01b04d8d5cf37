"""The webhook sender against receivers on 127.0.0.1: what it sends, how it reads answers,
that it follows no redirect and gives up on a receiver that does not answer in time."""

from __future__ import annotations

import ipaddress

import pytest

from shared.webhooks.sender import DirectSender
from shared.webhooks.targets import WebhookTarget, check_target, system_resolver
from tests.support.webhook_receiver import Receiver, receiving

HEADERS = {"webhook-id": "evt_c1_completed", "webhook-timestamp": "1", "webhook-signature": "v1,x"}


def target(url: str) -> WebhookTarget:
    return check_target(url, resolver=system_resolver, allow_loopback=True)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (410, "stop"),
        (400, "stop"),
        (429, "retry"),
        (408, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_each_answer_maps_to_its_verdict(status: int, verdict: str) -> None:
    with receiving(Receiver(script=[status])) as receiver:
        outcome = DirectSender(timeout_seconds=5).send(
            target(f"{receiver.url}/hook?k=v"), b'{"a":1}', HEADERS
        )
    assert (outcome.verdict, outcome.status_code) == (verdict, status)
    [got] = receiver.received
    assert got.path == "/hook?k=v" and got.body == b'{"a":1}'
    assert got.headers["webhook-id"] == "evt_c1_completed"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert "authorization" not in got.headers and "cookie" not in got.headers


def test_it_connects_to_the_checked_address_not_to_a_new_lookup() -> None:
    with receiving() as receiver:
        # The name says one thing; the checked address is where it goes.
        checked = WebhookTarget(
            url=f"http://hooks.invalid:{receiver.port}/",
            scheme="http",
            host="hooks.invalid",
            port=receiver.port,
            target="/",
            addresses=(ipaddress.ip_address("127.0.0.1"),),
        )
        outcome = DirectSender(timeout_seconds=5).send(checked, b"{}", HEADERS)
    assert outcome.verdict == "delivered"
    assert receiver.received[0].headers["host"] == f"hooks.invalid:{receiver.port}"


def test_a_redirect_is_not_followed() -> None:
    with (
        receiving() as elsewhere,
        receiving(Receiver(script=[302], location=f"{elsewhere.url}/stolen")) as receiver,
    ):
        outcome = DirectSender(timeout_seconds=5).send(target(receiver.url), b"{}", HEADERS)
    assert (outcome.verdict, outcome.status_code) == ("retry", 302)
    assert len(receiver.received) == 1
    assert elsewhere.received == []


def test_a_receiver_that_does_not_answer_in_time_is_retried() -> None:
    with receiving(Receiver(hold=True)) as receiver:
        outcome = DirectSender(timeout_seconds=0.5).send(
            target(f"{receiver.url}/slow?token=secret"), b"{}", HEADERS
        )
        receiver.release()
    assert outcome.verdict == "retry" and outcome.status_code is None
    assert outcome.error is not None and "timed out" in outcome.error.lower()
    assert "secret" not in outcome.error


def test_a_refused_connection_is_retried() -> None:
    with receiving() as receiver:
        url = receiver.url
    outcome = DirectSender(timeout_seconds=2).send(target(url), b"{}", HEADERS)
    assert outcome.verdict == "retry" and outcome.status_code is None and outcome.error
