"""The Google clients as the suite builds them, and the one publish they share (no network)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from google.api_core import exceptions as gexc
from google.cloud.pubsub_v1 import PublisherClient

from shared.core.clients import storage_client
from shared.core.errors import QueueUnavailable
from shared.core.settings import Settings
from shared.work.publishing import BoundedPublisher


def test_the_storage_client_does_not_read_proxy_settings_on_every_call() -> None:
    client = storage_client(Settings(storage_emulator_host="http://127.0.0.1:1"))
    assert client._http.trust_env is False


class FakeApi:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail

    def publish(self, **request: Any) -> Any:
        self.calls.append(request)
        if self.fail is not None:
            raise self.fail
        return type("Answer", (), {"message_ids": ["m-1"]})()


class FakePublisherClient:
    def __init__(self, api: FakeApi) -> None:
        self.api = api

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"


def publisher(api: FakeApi) -> BoundedPublisher:
    client = cast(PublisherClient, FakePublisherClient(api))
    return BoundedPublisher(client, Settings(gcp_project="p", publish_timeout_seconds=2))


def test_one_message_is_one_publish_call_with_a_bounded_wait() -> None:
    api = FakeApi()
    assert publisher(api).publish("t", b"{}", {"a": "1"}) == "m-1"
    [call] = api.calls
    assert call["topic"] == "projects/p/topics/t"
    [message] = call["messages"]
    assert (message.data, dict(message.attributes)) == (b"{}", {"a": "1"})
    assert call["timeout"] == 2


def test_a_failed_publish_is_queue_unavailable() -> None:
    with pytest.raises(QueueUnavailable, match="could not publish to t: ServiceUnavailable"):
        publisher(FakeApi(fail=gexc.ServiceUnavailable("down"))).publish("t", b"{}", {})
