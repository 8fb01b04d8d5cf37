"""Signed webhooks on the running local stack: every function its own functions-framework
process, the webhooks function fed by its own subscription to the status stream, receivers on
127.0.0.1 started here (nothing is ever sent anywhere else).

Each creation is submitted with a webhook through the HTTP API; the chain runs it: generate
makes the draft or the failure and announces it, the webhooks function signs and POSTs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client as StorageClient
from standardwebhooks.webhooks import Webhook

from shared.core.clients import publisher_client
from shared.creations.model import Job
from shared.creations.status_events import StatusEvent
from shared.media.storage import split_gs_uri
from shared.work.status_publisher import PubSubStatusAnnouncer
from tests.support.stack import RunningStack, start_stack
from tests.support.webhook_receiver import Received, Receiver, receiving
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.waiting import wait_until

WAIT = 60.0


@pytest.fixture(scope="module")
def chain(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningStack]:
    # INFO: the test reads the webhooks function's log for an event it dropped.
    running = start_stack(
        emulators, base_env, signer, tmp_path_factory.mktemp("webhooks"), {"LOG_LEVEL": "INFO"}
    )
    try:
        yield running
    finally:
        running.stack.stop()


def with_webhook(
    chain: RunningStack,
    user: str,
    url: str,
    *,
    prompt: str = "a lighthouse",
    events: Sequence[str] = ("completed", "failed", "canceled"),
) -> str:
    """An image creation submitted with a webhook, through the HTTP API."""
    chain.ledger.grant(user, 5)
    created = chain.submit(
        user, {"type": "image", "prompt": prompt, "webhook": {"url": url, "events": list(events)}}
    )
    assert created["webhook"]["status"] == "pending"
    return str(created["id"])


def record_when(chain: RunningStack, creation_id: str, status: str) -> dict[str, Any]:
    """The creation's webhook record once its status is `status`."""
    done = chain.wait(
        creation_id, lambda d: (d.get("webhook") or {}).get("status") == status, status, WAIT
    )
    record: dict[str, Any] = done["webhook"]
    return record


def verified(chain: RunningStack, request: Received) -> dict[str, Any]:
    """The event, after checking its signature as a receiver would."""
    payload: dict[str, Any] = Webhook(chain.webhook_secret).verify(request.body, request.headers)
    return payload


def test_a_draft_is_posted_signed_with_a_media_url_that_downloads(
    chain: RunningStack, tmp_path: Path
) -> None:
    with receiving() as receiver:
        creation_id = with_webhook(chain, "wanda", f"{receiver.url}/hooks?token=t0k3n")
        record = record_when(chain, creation_id, "delivered")
    [request] = receiver.received
    assert request.path == "/hooks?token=t0k3n"
    assert request.headers["webhook-id"] == f"evt_{creation_id}_completed"
    assert "authorization" not in request.headers
    event = verified(chain, request)
    assert event["type"] == "creation.completed"
    assert event["data"]["id"] == creation_id and event["data"]["status"] == "draft"
    [item] = event["data"]["media"]
    downloaded = requests.get(item["url"], timeout=10)  # no credentials
    assert downloaded.status_code == 200
    storage = StorageClient(
        project=chain.settings.gcp_project,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": chain.settings.storage_emulator_host},
    )
    bucket, name = split_gs_uri(item["uri"])
    assert downloaded.content == storage.bucket(bucket).blob(name).download_as_bytes()
    assert (record["attempts"], record["event"]) == (1, "creation.completed")
    assert record["last_response"]["status_code"] == 200
    assert record["delivered_at"] is not None and record["done"] == ["creation.completed"]
    assert chain.doc(creation_id)["status"] == "draft"


def test_a_receiver_down_at_first_gets_the_event_later_exactly_once(chain: RunningStack) -> None:
    with receiving(Receiver(script=[503, 503, 200])) as receiver:
        creation_id = with_webhook(chain, "walt", f"{receiver.url}/in")
        record = record_when(chain, creation_id, "delivered")
        assert record["attempts"] == 3
        assert record["last_response"]["status_code"] == 200
        assert record["delivered_at"] is not None
        # One id on every attempt, and one attempt answered 2xx for it.
        ids = {r.headers["webhook-id"] for r in receiver.received}
        assert ids == {f"evt_{creation_id}_completed"}
        assert len(receiver.answered_2xx()) == 1
        assert len(receiver.received) == 3
        for request in receiver.received:
            assert verified(chain, request)["type"] == "creation.completed"
        # A repeated announcement of the same move sends nothing more (`webhook.done`).
        republish_status(chain, creation_id, "walt", "draft")
        wait_until(
            lambda: "already" in webhooks_log(chain, creation_id) or None,
            WAIT,
            "the repeat seen by the webhooks function",
        )
        assert len(receiver.received) == 3


def test_a_410_stops_the_retries(chain: RunningStack) -> None:
    with receiving(Receiver(script=[410, 200])) as receiver:
        creation_id = with_webhook(chain, "wes", f"{receiver.url}/gone")
        record = record_when(chain, creation_id, "stopped")
        assert (record["attempts"], record["last_response"]["status_code"]) == (1, 410)
        assert record["done"] == ["creation.completed"]
        assert "delivered_at" not in record
        assert len(receiver.received) == 1 and receiver.answered_2xx() == []


def test_a_failed_creation_is_posted_as_creation_failed(chain: RunningStack) -> None:
    with receiving() as receiver:
        creation_id = with_webhook(chain, "wren", receiver.url, prompt="fog [fail:permanent]")
        record_when(chain, creation_id, "delivered")
    [request] = receiver.received
    event = verified(chain, request)
    assert event["type"] == "creation.failed"
    assert event["data"]["status"] == "failed" and event["data"]["error"]["code"]
    assert request.headers["webhook-id"] == f"evt_{creation_id}_failed"


def republish_status(chain: RunningStack, creation_id: str, user: str, status: str) -> None:
    """The status event of a move again, as a redelivered worker would announce it."""
    job = Job(creation_id=creation_id, user_id=user, type="image", webhook_events=("completed",))
    announcer = PubSubStatusAnnouncer(publisher_client(chain.settings), chain.settings)
    assert announcer.announce(StatusEvent.of(job, status, attempt=1))  # type: ignore[arg-type]


def webhooks_log(chain: RunningStack, creation_id: str) -> str:
    """The webhooks function's log lines about `creation_id`."""
    log = chain.stack.processes["webhooks"].log_path
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(line for line in lines if creation_id in line and _is_json(line))


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
