"""One trace per creation: parsing the incoming ids, binding them, carrying them in Pub/Sub
attributes and on the document, and every log line naming the bound trace in the field Cloud
Logging groups by. (tests/integration/test_trace_e2e.py follows one creation through the
running stack's logs.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import flask
import pytest
from cloudevents.http import CloudEvent

from shared.core import tracing
from shared.core.events import pubsub_message
from shared.core.handling import event_handler
from shared.core.log import JsonLineHandler, log_time
from shared.core.settings import Settings
from shared.creations.claims import ClaimStore
from shared.creations.model import Job
from shared.intake.api.app import SubmitApi
from shared.money.refunds import Refunds
from shared.store import paths
from shared.work.jobs import PubSubJobPublisher
from shared.work.phases import JobPhases, phase, timing_job
from shared.work.sweeper import Sweeper
from shared.work.worker import GenerationWorker
from tests.support.events import push_body
from tests.support.fakes import (
    SETTINGS,
    Clock,
    RecordingAnnouncer,
    RecordingMediaStore,
    ScriptedProvider,
)
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import new_creation, update

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "0af7651916cd43dd8448eb211c80319c"
PROJECT = "demo-trace"

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def json_logs() -> Iterator[Lines]:
    """The JSON lines the suite's handler writes while the test runs, at DEBUG and above (the
    suite's and this test's own lines only)."""
    stream = io.StringIO()
    handler = JsonLineHandler(project=PROJECT, stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    def ours(line: dict[str, Any]) -> bool:
        name = line["logging.googleapis.com/labels"].get("python_logger", "")
        return "message" in line and name.startswith(("shared.", "test."))

    try:
        yield lambda: [
            line for line in map(json.loads, stream.getvalue().splitlines()) if ours(line)
        ]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def trace_field(trace_id: str) -> str:
    return f"projects/{PROJECT}/traces/{trace_id}"


# --- parsing --------------------------------------------------------------------------------


def test_a_w3c_traceparent_gives_its_trace_span_and_sampling() -> None:
    parsed = tracing.parse_traceparent(f"00-{TRACE}-00f067aa0ba902b7-01")
    assert parsed == tracing.Trace(TRACE, "00f067aa0ba902b7", sampled=True)
    unsampled = tracing.parse_traceparent(f" 00-{TRACE}-00f067aa0ba902b7-00 ")
    assert unsampled == tracing.Trace(TRACE, "00f067aa0ba902b7", sampled=False)
    # A later version may add fields; version 00 may not.
    assert tracing.parse_traceparent(f"01-{TRACE}-00f067aa0ba902b7-01-more") is not None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{TRACE}-00f067aa0ba902b7-01",  # the forbidden version
        f"00-{TRACE.upper()}-00f067aa0ba902b7-01",  # hex must be lowercase
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",  # too short
        f"00-{TRACE}-00f067aa0ba902b7-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE}-00f067aa0ba902b7",
    ],
)
def test_a_malformed_traceparent_is_no_trace(value: str | None) -> None:
    assert tracing.parse_traceparent(value) is None


def test_an_x_cloud_trace_context_gives_its_trace_and_decimal_span() -> None:
    parsed = tracing.parse_cloud_trace_context(f"{TRACE.upper()}/1;o=1")
    assert parsed == tracing.Trace(TRACE, "0000000000000001", sampled=True)
    assert tracing.parse_cloud_trace_context(TRACE) == tracing.Trace(TRACE)
    assert tracing.parse_cloud_trace_context(f"{TRACE}/0;o=0") == tracing.Trace(TRACE)
    too_big = tracing.parse_cloud_trace_context(f"{TRACE}/{2**64}")
    assert too_big == tracing.Trace(TRACE)  # a span id out of range is dropped, not the trace


@pytest.mark.parametrize("value", ["", "xyz/1;o=1", f"{'0' * 32}/1;o=1", f"{TRACE}x", "12/3"])
def test_a_malformed_x_cloud_trace_context_is_no_trace(value: str) -> None:
    assert tracing.parse_cloud_trace_context(value) is None


def test_headers_prefer_traceparent_then_the_cloud_header_then_a_new_trace() -> None:
    both = {
        "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01",
        "X-Cloud-Trace-Context": f"{OTHER}/1;o=1",
    }
    assert tracing.from_headers(both).id == TRACE
    broken = {**both, "traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}
    assert tracing.from_headers(broken).id == OTHER
    assert tracing.from_headers({"x-cloud-trace-context": OTHER}).id == OTHER
    fresh = {tracing.from_headers({}).id for _ in range(20)}
    assert len(fresh) == 20
    assert all(tracing.is_trace_id(trace_id) for trace_id in fresh)


def test_stored_ids_are_checked() -> None:
    assert tracing.from_id(TRACE) == tracing.Trace(TRACE)
    for odd in (None, 7, "", "0" * 32, TRACE.upper(), TRACE + "0"):
        assert tracing.from_id(odd) is None
    assert tracing.from_document({"trace": TRACE}) == tracing.Trace(TRACE)
    assert tracing.from_document({}) is None
    assert tracing.from_document(None) is None


# --- binding --------------------------------------------------------------------------------


def test_bound_sets_the_trace_for_its_block_and_restores_the_one_before() -> None:
    assert tracing.current() is None
    with tracing.bound(tracing.Trace(TRACE)):
        assert tracing.current_id() == TRACE
        with tracing.bound(None):
            assert tracing.current() is None
        with pytest.raises(RuntimeError), tracing.bound(tracing.Trace(OTHER)):
            raise RuntimeError
        assert tracing.current_id() == TRACE
    assert tracing.current() is None


def test_adopt_sets_the_trace_for_the_rest_of_the_innermost_block_only() -> None:
    assert not tracing.adopt(tracing.Trace(TRACE))  # outside any block: nothing changes
    assert tracing.current() is None
    with tracing.bound(None):
        assert not tracing.adopt(None)
        with tracing.bound(None):
            assert tracing.adopt(tracing.Trace(TRACE))
            assert tracing.current_id() == TRACE
        assert tracing.current() is None
    assert tracing.current() is None


# --- how it travels -------------------------------------------------------------------------


def test_attributes_carry_the_current_trace_and_read_back_without_the_span() -> None:
    assert tracing.attributes() == {}
    sent = tracing.Trace(TRACE, "00f067aa0ba902b7", sampled=True)
    with tracing.bound(sent):
        attributes = tracing.attributes()
    assert attributes == {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
    assert tracing.from_attributes(attributes) == tracing.Trace(TRACE, sampled=True)
    # Without a span of its own, a message gets a fresh, valid parent id.
    made = tracing.attributes(tracing.Trace(OTHER))["traceparent"]
    assert re.fullmatch(rf"00-{OTHER}-[0-9a-f]{{16}}-00", made)
    assert tracing.parse_traceparent(made) is not None
    assert tracing.from_attributes({}) is None
    assert tracing.from_attributes({"traceparent": "nonsense"}) is None
    assert tracing.from_attributes(None) is None


class _CapturingApi:
    """The GAPIC publisher the suite's publishes call (shared.work.publishing)."""

    def __init__(self) -> None:
        self.attributes: dict[str, str] = {}

    def publish(self, *, messages: list[Any], **_request: Any) -> Any:
        self.attributes = dict(messages[0].attributes)
        return type("Answer", (), {"message_ids": ["message-1"]})()


class _CapturingClient:
    def __init__(self) -> None:
        self.api = _CapturingApi()

    @property
    def attributes(self) -> dict[str, str]:
        return self.api.attributes

    def topic_path(self, project: str, topic: str) -> str:
        return f"projects/{project}/topics/{topic}"


def test_a_job_message_carries_the_trace_bound_at_publish() -> None:
    client = _CapturingClient()
    publisher = PubSubJobPublisher(cast(Any, client), SETTINGS)
    job = Job(creation_id="c1", user_id="u", type="image")
    with tracing.bound(tracing.Trace(TRACE)):
        publisher.publish(job, topic="t")
    assert client.attributes["creation_id"] == "c1"
    assert tracing.from_attributes(client.attributes) == tracing.Trace(TRACE)
    publisher.publish(job, topic="t")
    assert "traceparent" not in client.attributes


def test_a_new_creation_keeps_the_given_then_the_current_trace_or_gets_one(
    store: MemoryDocuments,
) -> None:
    with tracing.bound(tracing.Trace(TRACE)):
        under_request = store.creation(new_creation(store, "u"))
    assert under_request["trace"] == TRACE
    alone = {store.creation(new_creation(store, "u"))["trace"] for _ in range(3)}
    assert len(alone) == 3
    assert all(tracing.is_trace_id(t) for t in alone)


# --- log lines ------------------------------------------------------------------------------


def test_every_line_has_a_time_and_the_bound_trace(json_logs: Lines) -> None:
    logger = logging.getLogger("test.tracing")
    before = dt.datetime.now(dt.UTC)
    logger.info("untraced")
    with tracing.bound(tracing.Trace(TRACE, "00f067aa0ba902b7", sampled=True)):
        logger.info("traced", extra={"json_fields": {"creation_id": "c1"}})
        logger.info("explicit", extra={"trace": "projects/x/traces/y"})
    untraced, traced, explicit = json_logs()
    assert untraced["logging.googleapis.com/trace"] == ""
    assert traced["logging.googleapis.com/trace"] == trace_field(TRACE)
    assert traced["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert traced["logging.googleapis.com/trace_sampled"] is True
    assert (traced["message"], traced["creation_id"], traced["severity"]) == (
        "traced",
        "c1",
        "INFO",
    )
    assert explicit["logging.googleapis.com/trace"] == "projects/x/traces/y"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", traced["time"])
    written = dt.datetime.fromisoformat(traced["time"].replace("Z", "+00:00"))
    assert before - dt.timedelta(seconds=1) <= written <= dt.datetime.now(dt.UTC)


def test_log_time_is_utc_rfc_3339_with_microseconds() -> None:
    assert log_time(0.25) == "1970-01-01T00:00:00.250000Z"


def test_in_a_request_the_bound_trace_beats_the_one_its_headers_name(json_logs: Lines) -> None:
    app = flask.Flask(__name__)
    headers = {"traceparent": f"00-{OTHER}-00f067aa0ba902b7-01"}
    logger = logging.getLogger("test.tracing")
    with app.test_request_context("/", headers=headers):
        logger.info("inferred")  # Cloud Logging's handler reads the header itself
        with tracing.bound(tracing.Trace(TRACE)):
            logger.info("bound")
        with tracing.bound(tracing.from_headers(flask.request.headers)):
            logger.info("agreeing")
    inferred, bound, agreeing = json_logs()
    assert inferred["logging.googleapis.com/trace"] == trace_field(OTHER)
    assert bound["logging.googleapis.com/trace"] == trace_field(TRACE)
    assert bound["logging.googleapis.com/spanId"] == ""  # not the request's span: another trace
    assert {k: v for k, v in agreeing.items() if k.startswith("logging.googleapis.com/")} == {
        k: v for k, v in inferred.items() if k.startswith("logging.googleapis.com/")
    } | {"logging.googleapis.com/sourceLocation": agreeing["logging.googleapis.com/sourceLocation"]}


def test_the_api_answers_under_the_request_trace_and_names_it_back(json_logs: Lines) -> None:
    # No route matches, so nothing past the router is reached: only the answer's framing.
    api = SubmitApi(
        settings=SETTINGS,
        verifier=cast(Any, None),
        ledger=cast(Any, None),
        creations=cast(Any, None),
        submissions=cast(Any, None),
        actions=cast(Any, None),
        media_links=cast(Any, None),
        resolver=cast(Any, None),
    )
    app = flask.Flask(__name__)
    sent = f"00-{TRACE}-00f067aa0ba902b7-01"
    with app.test_request_context("/v2/nothing", headers={"traceparent": sent}):
        answered = api(flask.request)
    with app.test_request_context("/v2/nothing"):
        fresh = api(flask.request)
    assert answered.status_code == 404
    assert answered.headers["traceparent"] == sent
    made = tracing.parse_traceparent(fresh.headers["traceparent"])
    assert made is not None
    assert made.id != TRACE
    first, second = json_logs()
    assert first["logging.googleapis.com/trace"] == trace_field(TRACE)
    assert second["logging.googleapis.com/trace"] == trace_field(made.id)
    assert tracing.current() is None


# --- event functions -------------------------------------------------------------------------


def pubsub_event(attributes: dict[str, str]) -> CloudEvent:
    body = push_body(PROJECT, "s", {"creation_id": "c1"}, attributes=attributes)
    return CloudEvent(
        {
            "type": "google.cloud.pubsub.topic.v1.messagePublished",
            "source": "//pubsub.googleapis.com/projects/p/topics/t",
            "id": "event-1",
        },
        body,
    )


def test_an_event_is_handled_under_its_messages_trace(json_logs: Lines) -> None:
    seen: list[str | None] = []

    @event_handler
    def handler(event: CloudEvent) -> None:
        pubsub_message(event)
        seen.append(tracing.current_id())
        logging.getLogger("test.tracing").info("working")

    handler(pubsub_event(tracing.attributes(tracing.Trace(TRACE))))
    handler(pubsub_event({}))
    assert seen == [TRACE, None]
    working, handled, untraced_working, untraced_handled = json_logs()
    assert [working["message"], handled["message"]] == ["working", "event handled"]
    assert handled["event_id"] == "event-1"
    assert isinstance(handled["duration_ms"], float)
    for line in (working, handled):
        assert line["logging.googleapis.com/trace"] == trace_field(TRACE)
    for line in (untraced_working, untraced_handled):
        assert line["logging.googleapis.com/trace"] == ""
    assert tracing.current() is None


def test_a_malformed_event_is_refused_under_no_trace(json_logs: Lines) -> None:
    @event_handler
    def handler(event: CloudEvent) -> None:
        pubsub_message(event)

    handler(
        CloudEvent(
            {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "s", "id": "e"},
            {"message": {"attributes": "not a map"}},
        )
    )
    (dropped,) = json_logs()
    assert dropped["message"].startswith("event dropped")
    assert dropped["logging.googleapis.com/trace"] == ""


# --- the worker's phases ----------------------------------------------------------------------


def test_phases_add_up_and_finish_is_what_follows_the_last() -> None:
    now = [0.0]
    with timing_job(lambda: now[0]) as timed:
        with phase("claim"):
            now[0] += 0.002
        with phase("provider"):
            now[0] += 0.010
        with phase("provider"):
            now[0] += 0.005
        now[0] += 0.003
    assert timed.fields() == {
        "claim_ms": 2.0,
        "provider_ms": 15.0,
        "finish_ms": 3.0,
        "total_ms": 20.0,
    }
    with phase("outside"):  # no job timed: nothing to record, nothing fails
        pass
    assert JobPhases(lambda: 1.0).fields() == {"total_ms": 0.0}


def worker(store: MemoryDocuments, provider: ScriptedProvider | None = None) -> GenerationWorker:
    settings = Settings(store_max_attempts=5, max_generation_attempts=3, lease_seconds=60)
    return GenerationWorker(
        claims=ClaimStore(store, settings, clock=Clock()),
        provider=provider or ScriptedProvider(),
        uploader=RecordingMediaStore(),
        settings=settings,
        announcer=RecordingAnnouncer(),
    )


def job_of(store: MemoryDocuments, creation_id: str) -> Job:
    (found,) = store.read(paths.creation(creation_id))
    return Job.of(found)


def test_a_job_logs_one_line_with_each_phase_under_its_creations_trace(
    store: MemoryDocuments, json_logs: Lines
) -> None:
    with tracing.bound(tracing.Trace(TRACE)):
        creation_id = new_creation(store, "u")
    # The message carried no trace: the worker takes the one the creation was made under.
    assert worker(store).handle(job_of(store, creation_id), event_id="e").kind == "draft"
    lines = json_logs()
    assert {line["logging.googleapis.com/trace"] for line in lines} == {trace_field(TRACE)}
    (done,) = [line for line in lines if line["message"].startswith("job done")]
    assert done == done | {
        "message": "job done: draft",
        "outcome": "draft",
        "creation_id": creation_id,
        "attempt": "1",
        "type": "image",
    }
    # A draft's line also says how long it took from submit (the dashboard's time to draft).
    assert isinstance(done.pop("since_created_ms"), float)
    phases = {key: value for key, value in done.items() if key.endswith("_ms")}
    assert set(phases) == {"claim_ms", "provider_ms", "upload_ms", "finish_ms", "total_ms"}
    assert all(isinstance(value, float) and value >= 0 for value in phases.values())
    assert sum(v for k, v in phases.items() if k != "total_ms") <= phases["total_ms"] + 0.5
    assert tracing.current() is None


def test_the_messages_trace_wins_and_a_failed_job_still_logs_its_line(
    store: MemoryDocuments, json_logs: Lines
) -> None:
    creation_id = new_creation(store, "u")  # a trace of its own
    failing = ScriptedProvider(fail_with=[RuntimeError("boom")])
    with tracing.bound(tracing.Trace(OTHER)), pytest.raises(RuntimeError):
        worker(store, failing).handle(job_of(store, creation_id), event_id="e")
    (done,) = [line for line in json_logs() if line["message"].startswith("job done")]
    assert (done["outcome"], done["detail"]) == ("retried", "RuntimeError")
    assert done["logging.googleapis.com/trace"] == trace_field(OTHER)
    assert {"claim_ms", "provider_ms", "finish_ms", "total_ms"} <= set(done)


def test_a_skipped_job_logs_its_line_too(store: MemoryDocuments, json_logs: Lines) -> None:
    creation_id = new_creation(store, "u")
    update(store, paths.creation(creation_id), {"user_id": "someone-else"})
    outcome = worker(store).handle(
        Job(creation_id=creation_id, user_id="u", type="image"), event_id="e"
    )
    assert outcome.kind == "skipped"
    # Its one line says why (docs/contract.md: one line for an event with nothing to do).
    (done,) = [
        line
        for line in json_logs()
        if line["logging.googleapis.com/labels"]["python_logger"] == "shared.work.worker"
    ]
    assert done["message"] == "job skipped: not_this_job"
    assert (done["outcome"], done["detail"], done["severity"]) == (
        "skipped",
        "not_this_job",
        "INFO",
    )
    assert done["logging.googleapis.com/trace"] == ""
    assert "claim_ms" in done


def test_a_misrouted_job_is_skipped_with_a_warning(
    store: MemoryDocuments, json_logs: Lines
) -> None:
    creation_id = new_creation(store, "u")
    videos_only = dataclasses.replace(worker(store), makes=frozenset({"video"}))
    assert videos_only.handle(job_of(store, creation_id), event_id="e").kind == "skipped"
    (done,) = json_logs()
    assert (done["message"], done["severity"]) == ("job skipped: not_for_this_worker", "WARNING")
    assert store.creation(creation_id)["status"] == "pending"


# --- the sweeper -----------------------------------------------------------------------------


class _TracePublisher:
    def __init__(self) -> None:
        self.traces: list[str | None] = []

    def publish(self, job: Job, *, topic: str) -> str:
        self.traces.append(tracing.current_id())
        return "m"


def test_the_sweeper_requeues_each_creation_under_its_own_trace(
    clock: Clock, refunds: Refunds
) -> None:
    store = MemoryDocuments(clock)  # server times from the clock the sweeper compares with
    ids = []
    for trace_id in (TRACE, OTHER):
        with tracing.bound(tracing.Trace(trace_id)):
            ids.append(new_creation(store, "u"))
    clock.advance(SETTINGS.sweep_pending_after_seconds + 1)
    publisher = _TracePublisher()
    sweeper = Sweeper(
        store,
        SETTINGS,
        claims=ClaimStore(store, SETTINGS, clock=clock),
        refunds=Refunds(store, SETTINGS, refunds.ledger),
        publisher=publisher,
        announcer=RecordingAnnouncer(),
        clock=clock,
    )
    assert sorted(sweeper.sweep().requeued) == sorted(ids)
    assert sorted(t or "" for t in publisher.traces) == sorted([TRACE, OTHER])
    assert tracing.current() is None
