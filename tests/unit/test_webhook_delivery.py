"""The webhooks function's handler on in-memory parts: a fake sender and clock, a stub
resolver. Nothing is sent anywhere (unit tests have no network)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.core.settings import Settings
from shared.creations.model import Creation, Job
from shared.creations.status_events import StatusEvent
from shared.store import paths
from shared.store.documents import Batch
from shared.webhooks.delivery import WebhookDelivery, WebhookNotDelivered
from shared.webhooks.exhausted import PubSubExhaustedEvents
from shared.webhooks.model import RECORD_FIELDS
from shared.webhooks.records import Attempt, fields_for
from shared.webhooks.sender import SendOutcome, verdict_of
from shared.webhooks.signing import WebhookSecretMissing, WebhookSigner, signer_from
from shared.webhooks.targets import WebhookTarget
from tests.support import seeds
from tests.support.fakes import SETTINGS, Clock
from tests.support.memory_store import MemoryDocuments

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "https://hooks.example.com/in?token=receiver-secret"
PUBLIC = ("93.184.215.14",)
START = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)
WINDOW = 3600.0


@dataclass
class FakeSender:
    """Answers with `script` in turn (then its last item), keeping what it was asked to send."""

    script: list[SendOutcome] = field(default_factory=lambda: [SendOutcome("delivered", 200)])
    sent: list[tuple[WebhookTarget, bytes, dict[str, str]]] = field(default_factory=list)

    def send(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> SendOutcome:
        self.sent.append((target, body, headers))
        return self.script[min(len(self.sent), len(self.script)) - 1]


class FakeLinks:
    def api_view(self, creation: Creation) -> dict[str, Any]:
        view = creation.to_api()
        for index, item in enumerate(view["media"]):
            item["url"] = f"https://storage.example/{creation.id}/{index}?sig=fresh"
        return view


class BrokenLinks(FakeLinks):
    """Media links whose signing fails (the signing service refuses, say)."""

    def api_view(self, creation: Creation) -> dict[str, Any]:
        raise RuntimeError("signBlob denied for sa@example.iam")


@dataclass
class FakeExhausted:
    published: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def publish(self, message: Any, attributes: Any) -> None:
        self.published.append((dict(message), dict(attributes)))


class Resolver:
    """A stub resolver whose answer a test can change (DNS moving under a name)."""

    def __init__(self, addresses: Sequence[str] = PUBLIC) -> None:
        self.addresses = list(addresses)

    def __call__(self, host: str, port: int) -> list[str]:
        if not self.addresses:
            raise OSError("Name or service not known")
        return self.addresses


@dataclass
class World:
    store: MemoryDocuments
    clock: Clock
    sender: FakeSender
    exhausted: FakeExhausted
    resolver: Resolver
    delivery: WebhookDelivery

    def webhook(self, creation_id: str) -> dict[str, Any]:
        (found,) = self.store.read(paths.creation(creation_id))
        record: dict[str, Any] = found.get("webhook")
        return record


def world(
    *,
    secret: str | None = SECRET,
    sender: FakeSender | None = None,
    start: dt.datetime = START,
    links: FakeLinks | None = None,
) -> World:
    settings = SETTINGS.model_copy(
        update={
            "webhook_secret": SecretStr(secret) if secret else None,
            "webhook_retry_seconds": WINDOW,
        }
    )
    store = MemoryDocuments()
    clock = Clock(start)
    fakes = (sender or FakeSender(), FakeExhausted(), Resolver())
    delivery = WebhookDelivery(
        store,
        settings,
        signer=signer_from(secret),
        sender=fakes[0],
        media_links=links or FakeLinks(),
        exhausted=fakes[1],
        resolver=fakes[2],
        clock=clock,
    )
    return World(store, clock, *fakes, delivery)


def creation_in(
    w: World,
    status: str = "draft",
    *,
    events: Sequence[str] = ("completed", "failed", "canceled"),
    url: str = URL,
) -> tuple[str, StatusEvent]:
    creation_id = seeds.new_creation(w.store, "alice")
    seeds.update(
        w.store,
        paths.creation(creation_id),
        {"webhook": {"url": url, "events": list(events), "status": "pending", "attempts": 0}},
    )
    if status != "pending":
        seeds.move(w.store, creation_id, "processing")
    if status not in ("pending", "processing"):
        fields = {"media": [{"uri": f"gs://b/media/alice/{creation_id}/0.png"}]}
        seeds.move(w.store, creation_id, status, fields if status == "draft" else None)  # type: ignore[arg-type]
    job = Job(creation_id=creation_id, user_id="alice", type="image", webhook_events=events)  # type: ignore[arg-type]
    announced = "processing" if status == "processing" else status
    return creation_id, StatusEvent.of(job, announced, attempt=1)  # type: ignore[arg-type]


def deliver(w: World, event: StatusEvent, **kwargs: Any) -> str:
    return w.delivery.on_status_event(event, event_id="m1", **kwargs)


def test_a_draft_is_posted_signed_with_the_creation_as_the_api_shows_it() -> None:
    w = world()
    creation_id, event = creation_in(w)
    assert deliver(w, event) == "delivered"
    [(target, body, headers)] = w.sender.sent
    assert target.host == "hooks.example.com" and [str(a) for a in target.addresses] == list(PUBLIC)
    assert headers["webhook-id"] == f"evt_{creation_id}_completed"
    assert headers["webhook-timestamp"] == str(int(START.timestamp()))
    assert "authorization" not in {name.lower() for name in headers}
    payload = json.loads(body)
    assert payload["type"] == "creation.completed"
    assert payload["data"]["id"] == creation_id and payload["data"]["status"] == "draft"
    assert payload["data"]["media"][0]["url"].endswith("?sig=fresh")
    (stored,) = w.store.read(paths.creation(creation_id))
    assert payload["timestamp"] == stored.get("completed_at").isoformat().replace("+00:00", "Z")
    signature = Webhook(SECRET).sign(headers["webhook-id"], START, body.decode())
    assert headers["webhook-signature"] == signature
    record = w.webhook(creation_id)
    assert record["status"] == "delivered" and record["attempts"] == 1
    assert record["event"] == "creation.completed" and record["delivered_at"] == START
    assert record["last_response"] == {"status_code": 200, "at": START}
    assert record["done"] == ["creation.completed"]
    assert (stored.get("status"), record["url"]) == ("draft", URL)


def test_a_receiver_verifies_the_signature_with_standardwebhooks() -> None:
    w = world(start=dt.datetime.now(dt.UTC))
    creation_id, event = creation_in(w)
    assert deliver(w, event) == "delivered"
    [(_target, body, headers)] = w.sender.sent
    assert Webhook(SECRET).verify(body, headers)["data"]["id"] == creation_id
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify(body, headers)


def test_a_repeated_event_sends_nothing_once_done() -> None:
    w = world()
    _creation_id, event = creation_in(w)
    assert deliver(w, event) == "delivered"
    assert deliver(w, event) == "already_done"
    assert len(w.sender.sent) == 1


@pytest.mark.parametrize("code", [500, 503, 408, 429, 302])
def test_a_retryable_answer_is_recorded_and_redelivered_then_delivered(code: int) -> None:
    w = world(
        sender=FakeSender([SendOutcome(verdict_of(code), code), SendOutcome("delivered", 204)])
    )
    creation_id, event = creation_in(w)
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event)
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("retrying", 1)
    assert record["last_response"] == {"status_code": code, "at": START}
    assert "done" not in record
    w.clock.advance(30)
    assert deliver(w, event) == "delivered"
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("delivered", 2)
    assert record["delivered_at"] == START + dt.timedelta(seconds=30)
    assert record["first_attempt_at"] == START
    # Both attempts carried the same id; each its own timestamp.
    ids = [headers["webhook-id"] for _t, _b, headers in w.sender.sent]
    stamps = [headers["webhook-timestamp"] for _t, _b, headers in w.sender.sent]
    assert ids[0] == ids[1] and stamps[0] != stamps[1]


@pytest.mark.parametrize("code", [410, 400, 404, 422])
def test_a_receiver_that_refuses_stops_the_retries(code: int) -> None:
    w = world(sender=FakeSender([SendOutcome(verdict_of(code), code)]))
    creation_id, event = creation_in(w)
    assert deliver(w, event) == "stopped"
    record = w.webhook(creation_id)
    assert (record["status"], record["done"]) == ("stopped", ["creation.completed"])
    assert deliver(w, event) == "already_done"
    assert len(w.sender.sent) == 1


def test_no_answer_at_all_is_retried_with_the_error_recorded() -> None:
    w = world(sender=FakeSender([SendOutcome("retry", error="ReadTimeoutError: timed out")]))
    creation_id, event = creation_in(w)
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event)
    assert w.webhook(creation_id)["last_response"] == {
        "error": "ReadTimeoutError: timed out",
        "at": START,
    }


def test_the_event_is_given_up_after_the_window_and_published_for_an_operator() -> None:
    w = world(sender=FakeSender([SendOutcome("retry", 503)]))
    creation_id, event = creation_in(w)
    for _ in range(3):
        with pytest.raises(WebhookNotDelivered):
            deliver(w, event)
        w.clock.advance(WINDOW / 3)
    assert deliver(w, event) == "exhausted"
    assert len(w.sender.sent) == 3  # nothing sent once the window is over
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("exhausted", 3)
    assert record["done"] == ["creation.completed"]
    [(message, attributes)] = w.exhausted.published
    assert message["webhook_id"] == f"evt_{creation_id}_completed"
    assert message["attempts"] == 3 and message["last_response"]["status_code"] == 503
    # The message is the status event itself (so it can be published back to replay it).
    assert StatusEvent.model_validate(message) == event.model_copy(update={"trace": None})
    assert attributes["webhook"] == "1" and attributes["status"] == "draft"
    assert deliver(w, event) == "already_done"

    # An operator's replay tries it afresh, with a window of its own.
    w.sender.script = [SendOutcome("delivered", 200)]
    assert deliver(w, event, replay=True) == "delivered"
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("delivered", 1)
    assert deliver(w, event, replay=True) == "already_done"  # a delivered event is not resent


def test_a_replay_that_fails_is_retried_until_delivered() -> None:
    w = world(sender=FakeSender([SendOutcome("retry", 503)]))
    creation_id, event = creation_in(w)
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event)
    w.clock.advance(WINDOW + 1)
    assert deliver(w, event) == "exhausted"
    replayed_at = w.clock.now
    # The receiver is still down for the replay's first attempt.
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event, replay=True)
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("retrying", 1)
    assert record["first_attempt_at"] == replayed_at  # a window of its own
    assert "creation.completed" not in record["done"]  # under way again
    # Pub/Sub redelivers the replay (its attribute still set), with its usual backoff.
    w.clock.advance(60)
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event, replay=True)
    w.sender.script = [SendOutcome("delivered", 200)]
    w.clock.advance(60)
    assert deliver(w, event, replay=True) == "delivered"
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("delivered", 3)
    assert record["done"] == ["creation.completed"]
    assert len(w.sender.sent) == 4
    assert deliver(w, event, replay=True) == "already_done"


def test_a_replay_that_keeps_failing_is_exhausted_again() -> None:
    w = world(sender=FakeSender([SendOutcome("retry", 503)]))
    creation_id, event = creation_in(w)
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event)
    w.clock.advance(WINDOW + 1)
    assert deliver(w, event) == "exhausted"
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event, replay=True)
    w.clock.advance(WINDOW / 2)
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event, replay=True)
    w.clock.advance(WINDOW / 2)
    assert deliver(w, event, replay=True) == "exhausted"
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("exhausted", 2)
    assert record["done"] == ["creation.completed"]
    assert [m["attempts"] for m, _a in w.exhausted.published] == [1, 2]


class FakePublisherClient:
    """The two calls `BoundedPublisher` makes of a Pub/Sub publisher client."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.api = self

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"

    def publish(self, *, topic: str, messages: list[Any], **_options: Any) -> Any:
        self.messages.extend(messages)
        return SimpleNamespace(message_ids=[str(len(self.messages))])


def test_the_exhausted_message_writes_every_time_in_rfc3339() -> None:
    w = world(sender=FakeSender([SendOutcome("retry", 503)]))
    _creation_id, event = creation_in(w)
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event)
    w.clock.advance(WINDOW + 31)
    assert deliver(w, event) == "exhausted"
    [(message, attributes)] = w.exhausted.published
    client = FakePublisherClient()
    PubSubExhaustedEvents(client, SETTINGS).publish(message, attributes)
    [sent] = client.messages
    data = json.loads(sent.data)
    assert data["first_attempt_at"] == "2026-12-02T12:00:00Z"
    assert data["exhausted_at"] == "2026-12-02T13:00:31Z"
    assert data["last_response"] == {"status_code": 503, "at": "2026-12-02T12:00:00Z"}
    assert dict(sent.attributes) == attributes


def test_a_url_refused_at_delivery_stops_without_sending() -> None:
    w = world()
    creation_id, event = creation_in(w)
    w.resolver.addresses = ["10.0.0.7"]  # DNS changed since submit
    assert deliver(w, event) == "stopped"
    assert w.sender.sent == []
    record = w.webhook(creation_id)
    assert record["status"] == "stopped"
    assert record["last_response"]["error"] == (
        "the URL was refused: its host resolves to a private address (10.0.0.7)"
    )


def test_a_host_that_stopped_resolving_is_retried() -> None:
    w = world()
    creation_id, event = creation_in(w)
    w.resolver.addresses = []
    with pytest.raises(WebhookNotDelivered):
        deliver(w, event)
    assert w.sender.sent == []
    error = w.webhook(creation_id)["last_response"]["error"]
    assert error.startswith("the URL's host hooks.example.com does not resolve"), error
    w.resolver.addresses = list(PUBLIC)
    assert deliver(w, event) == "delivered"


def test_no_secret_is_an_error_and_a_retrying_attempt_that_exhausts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world(secret=None)
    creation_id, event = creation_in(w)
    with (
        caplog.at_level("INFO", logger="shared.webhooks.delivery"),
        pytest.raises(WebhookSecretMissing),
    ):
        deliver(w, event)
    assert w.sender.sent == []
    assert any(r.levelname == "ERROR" and "WEBHOOK_SECRET" in r.message for r in caplog.records)
    record = w.webhook(creation_id)
    # Recorded as an attempt, so the retry window starts and the event is given up in time.
    assert (record["status"], record["attempts"]) == ("retrying", 1)
    assert record["first_attempt_at"] == START
    assert "WEBHOOK_SECRET" in record["last_response"]["error"]
    for _ in range(2):
        w.clock.advance(WINDOW / 3)
        with pytest.raises(WebhookSecretMissing):
            deliver(w, event)
    w.clock.advance(WINDOW / 3)
    assert deliver(w, event) == "exhausted"
    [(message, _attributes)] = w.exhausted.published
    assert message["attempts"] == 3 and "WEBHOOK_SECRET" in message["last_response"]["error"]
    assert w.webhook(creation_id)["status"] == "exhausted"
    with pytest.raises(WebhookSecretMissing):
        WebhookSigner("whsec_not base64!")
    assert signer_from("whsec_not base64!") is None


def test_an_error_building_the_event_is_a_retrying_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world(links=BrokenLinks())
    creation_id, event = creation_in(w)
    with (
        caplog.at_level("INFO", logger="shared.webhooks.delivery"),
        pytest.raises(WebhookNotDelivered),
    ):
        deliver(w, event)
    assert w.sender.sent == []
    assert any(r.levelname == "ERROR" and r.exc_info for r in caplog.records)
    record = w.webhook(creation_id)
    assert (record["status"], record["attempts"]) == ("retrying", 1)
    assert record["first_attempt_at"] == START
    error = record["last_response"]["error"]
    assert "RuntimeError" in error and "sa@example.iam" not in error  # no detail to the user
    w.clock.advance(WINDOW)
    assert deliver(w, event) == "exhausted"
    assert len(w.exhausted.published) == 1


def test_odd_events_are_ignored() -> None:
    w = world()
    creation_id, event = creation_in(w)
    assert deliver(w, event.model_copy(update={"webhook": False})) == "not_asked"
    assert deliver(w, event.model_copy(update={"user_id": "mallory"})) == "ignored"
    assert deliver(w, event.model_copy(update={"type": "video"})) == "ignored"
    assert deliver(w, event.model_copy(update={"status": "failed"})) == "ignored"
    assert deliver(w, event.model_copy(update={"status": "deleting"})) == "ignored"
    assert deliver(w, event.model_copy(update={"creation_id": "0" * 20})) == "ignored"
    assert w.sender.sent == []
    assert w.webhook(creation_id)["status"] == "pending"


def test_an_event_the_webhook_did_not_ask_for_is_not_sent() -> None:
    w = world()
    _creation_id, event = creation_in(w, events=("failed",))
    assert deliver(w, event.model_copy(update={"webhook": True})) == "ignored"
    assert w.sender.sent == []


def test_processing_is_sent_when_asked_and_dropped_once_the_creation_is_final() -> None:
    w = world()
    creation_id, processing = creation_in(w, "processing", events=("processing", "completed"))
    assert deliver(w, processing) == "delivered"
    assert json.loads(w.sender.sent[0][1])["type"] == "creation.processing"
    seeds.move(w.store, creation_id, "draft", {"media": []})
    draft = processing.model_copy(update={"status": "draft"})
    assert deliver(w, draft) == "delivered"
    record = w.webhook(creation_id)
    assert record["done"] == ["creation.processing", "creation.completed"]
    assert record["event"] == "creation.completed"
    # A late processing redelivery of another creation, now final, sends nothing.
    _other, late = creation_in(w, "draft", events=("processing", "completed"))
    assert deliver(w, late.model_copy(update={"status": "processing"})) == "ignored"
    assert len(w.sender.sent) == 2


def test_a_processing_event_superseded_while_retrying_finishes_its_record() -> None:
    w = world(sender=FakeSender([SendOutcome("retry", 503)]))
    creation_id, processing = creation_in(w, "processing", events=("processing",))
    with pytest.raises(WebhookNotDelivered):
        deliver(w, processing)
    seeds.move(w.store, creation_id, "draft", {"media": []})
    w.clock.advance(60)
    assert deliver(w, processing) == "stopped"
    assert len(w.sender.sent) == 1  # nothing more is sent
    record = w.webhook(creation_id)
    assert (record["status"], record["event"], record["attempts"]) == (
        "stopped",
        "creation.processing",
        1,
    )
    assert record["last_response"] == {
        "error": "superseded: the creation is draft",
        "at": START + dt.timedelta(seconds=60),
    }
    assert record["done"] == ["creation.processing"]
    assert deliver(w, processing) == "ignored"  # finished: a repeat changes nothing
    assert w.webhook(creation_id) == record


def test_a_superseded_processing_event_leaves_the_final_events_record() -> None:
    w = world()
    creation_id, draft = creation_in(w, "draft", events=("processing", "completed"))
    assert deliver(w, draft) == "delivered"
    record = w.webhook(creation_id)
    assert deliver(w, draft.model_copy(update={"status": "processing"})) == "ignored"
    assert w.webhook(creation_id) == record and len(w.sender.sent) == 1


def test_a_processing_attempt_finishing_late_leaves_the_final_events_record() -> None:
    record = {"event": "creation.completed", "status": "retrying", "attempts": 2, "done": []}
    late = Attempt(
        event="creation.processing",
        status="delivered",
        number=1,
        first_attempt_at=START,
        at=START,
        status_code=200,
    )
    assert fields_for(record, late) == {"done": ["creation.processing"]}
    assert fields_for(record, dataclasses.replace(late, status="retrying")) == {}
    done = {**record, "done": ["creation.processing"]}
    assert fields_for(done, late) == {}


def test_a_creation_deleted_meanwhile_is_left_deleted() -> None:
    w = world()
    creation_id, event = creation_in(w)
    (found,) = w.store.read(paths.creation(creation_id))
    batch = Batch()
    batch.delete(found)
    w.store.commit(batch)
    assert deliver(w, event) == "ignored"
    assert w.store.read(paths.creation(creation_id))[0].exists is False


def test_verdicts() -> None:
    assert [verdict_of(c) for c in (200, 204, 299)] == ["delivered"] * 3
    assert [verdict_of(c) for c in (400, 401, 404, 410, 499)] == ["stop"] * 5
    assert [verdict_of(c) for c in (100, 301, 302, 408, 429, 500, 503)] == ["retry"] * 7


def test_settings_defaults_match_the_promise() -> None:
    assert Settings().webhook_retry_seconds == 86400
    assert Settings().webhook_timeout_seconds == 10


def test_the_record_writes_only_its_declared_fields() -> None:
    attempt = Attempt(
        event="creation.completed",
        status="delivered",
        number=1,
        first_attempt_at=START,
        at=START,
        status_code=200,
    )
    assert set(fields_for({}, attempt)) <= set(RECORD_FIELDS)
    assert set(fields_for({}, attempt)) == set(RECORD_FIELDS)  # a delivery writes them all


def test_one_log_line_per_attempt_names_the_delivery_never_the_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = world(sender=FakeSender([SendOutcome("retry", 503), SendOutcome("delivered", 200)]))
    creation_id, event = creation_in(w, url="https://user:pw@hooks.example.com/in?token=s3cr3t")
    with caplog.at_level("INFO", logger="shared.webhooks.delivery"):
        w.resolver.addresses = list(PUBLIC)
        # Credentials in the URL are refused at delivery (submit refuses them first).
        assert deliver(w, event) == "stopped"
    lines = [r for r in caplog.records if r.name == "shared.webhooks.delivery"]
    assert len(lines) == 1
    fields = lines[0].json_fields  # type: ignore[attr-defined]
    assert fields["creation_id"] == creation_id and fields["event_id"] == "m1"
    assert fields["webhook_id"] == f"evt_{creation_id}_completed"
    assert fields["outcome"] == "stopped"
    assert fields["receiver"] == "https://hooks.example.com/in"
    text = caplog.text + repr([r.__dict__ for r in lines])
    assert "s3cr3t" not in text and "pw@" not in text

    caplog.clear()
    w2 = world(sender=FakeSender([SendOutcome("retry", 503)]))
    _other, second = creation_in(w2)
    with (
        caplog.at_level("INFO", logger="shared.webhooks.delivery"),
        pytest.raises(WebhookNotDelivered),
    ):
        deliver(w2, second)
    [line] = [r for r in caplog.records if r.name == "shared.webhooks.delivery"]
    assert line.json_fields["status_code"] == 503  # type: ignore[attr-defined]
    assert "receiver-secret" not in caplog.text + repr(line.__dict__)
