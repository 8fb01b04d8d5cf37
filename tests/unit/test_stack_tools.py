"""The local-stack tooling's helpers: ports, env building, stack file, process groups.

No emulators and no network: the process tests use tiny shell/Python children on loopback.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from google.events.cloud.firestore import DocumentEventData

from shared.core.settings import Settings
from shared.creations.status_events import WEBHOOK_FILTER
from tools.stack import chain, cli, demo, dev, emulators, topology, triggers
from tools.stack.chain import FUNCTIONS
from tools.stack.emulators import emulator_env
from tools.stack.logfiles import log_tail
from tools.stack.processes import (
    REPO_ROOT,
    StackError,
    answers_200,
    answers_anything,
    answers_ok,
    port_in_use_message,
)
from tools.stack.topology import ensure_resources, tap_subscription_name
from tools.stack.waiting import wait_for, wait_until

# --- ports ---------------------------------------------------------------------------------


def test_port_message_without_hint() -> None:
    assert (
        port_in_use_message(1, "x")
        == "port 1 is already in use (wanted by x); stop whatever holds it"
    )


DEFAULT_PORTS = dev.Ports(
    firestore=8090,
    pubsub=8091,
    gcs=8092,
    submit=8080,
    generate=8081,
    refund=8082,
    dead_letter=8083,
    sweep=8084,
    stitch=8085,
    router=8086,
    webhooks=8087,
)


def test_read_ports_defaults() -> None:
    assert dev.read_ports({}) == DEFAULT_PORTS


def test_read_ports_overrides() -> None:
    ports = dev.read_ports(
        {
            "FIRESTORE_PORT": "9000",
            "SUBMIT_PORT": " 9001 ",
            "GCS_PORT": "",
            "SWEEP_PORT": "9002",
            "TRIGGER_ROUTER_PORT": "9003",
        }
    )
    assert ports == dataclasses.replace(
        DEFAULT_PORTS, firestore=9000, submit=9001, sweep=9002, router=9003
    )


def test_ports_by_function_and_in_the_stack_file() -> None:
    assert DEFAULT_PORTS.functions() == {
        "submit": 8080,
        "generate": 8081,
        "refund": 8082,
        "dead_letter": 8083,
        "sweep": 8084,
        "stitch": 8085,
        "webhooks": 8087,
    }
    assert set(DEFAULT_PORTS.functions()) == set(FUNCTIONS)
    assert DEFAULT_PORTS.all()["router"] == 8086
    assert len(DEFAULT_PORTS.all()) == len(dev.DEFAULT_PORTS)


def test_read_sources_overrides_each_function_by_its_name(tmp_path: Path) -> None:
    stub = tmp_path / "stub.py"
    assert dev.read_sources({}) == {}
    assert dev.read_sources(
        {"REFUND_SOURCE": str(stub), "DEAD_LETTER_SOURCE": str(stub), "SUBMIT_SOURCE": " "}
    ) == {"refund": stub, "dead_letter": stub}
    assert set(dev.SOURCE_OVERRIDES.values()) == set(FUNCTIONS)


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1", "80.5"])
def test_read_ports_rejects_non_ports(value: str) -> None:
    with pytest.raises(dev.DevError, match="PUBSUB_PORT"):
        dev.read_ports({"PUBSUB_PORT": value})


@pytest.mark.parametrize("name", ["GCS_PORT", "TRIGGER_ROUTER_PORT", "GENERATE_PORT"])
def test_read_ports_rejects_duplicates(name: str) -> None:
    with pytest.raises(dev.DevError, match="must differ"):
        dev.read_ports({name: "8080"})


# --- readiness predicates and logs ------------------------------------------------------------


def test_readiness_predicates() -> None:
    assert answers_ok(200, b"Ok\n")
    assert not answers_ok(200, b"<html>")
    assert not answers_ok(404, b"Ok")
    assert answers_200(200, b"{}")
    assert not answers_200(500, b"")
    assert answers_anything(401, b"")


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert log_tail(log) == ""
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(100)) + b"\xff bad\n")
    assert log_tail(log, 3).splitlines() == ["line 98", "line 99", "\ufffd bad"]


# --- environment -----------------------------------------------------------------------------


def test_emulator_env_storage_has_scheme() -> None:
    # google-cloud-storage uses STORAGE_EMULATOR_HOST verbatim as the endpoint.
    assert emulator_env(1, 2, 3) == {
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:2",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:3",
    }


def test_stack_env_covers_exported_names_and_matches_emulator_env() -> None:
    ports = dataclasses.replace(DEFAULT_PORTS, firestore=1, pubsub=2, gcs=3, submit=4)
    env = dev.stack_env(ports=ports, project="p", media_bucket="b", webhook_secret="whsec_AA")
    assert tuple(env) == dev.EXPORTED_ENV
    assert env["WEBHOOK_SECRET"] == "whsec_AA"
    assert emulator_env(1, 2, 3).items() <= env.items()
    assert env["GOOGLE_CLOUD_PROJECT"] == env["GCP_PROJECT"] == "p"
    assert env["SUBMIT_URL"] == "http://127.0.0.1:4"


def test_the_webhook_secret_is_made_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "webhook-secret"
    secret = dev.load_or_create_webhook_secret(path)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert dev.load_or_create_webhook_secret(path) == secret
    assert path.stat().st_mode & 0o077 == 0


def test_function_env_overlays_stack_and_passes_the_rest_through() -> None:
    base = {"LOG_LEVEL": "DEBUG", "GCP_PROJECT": "outer", "PYTHONPATH": "/elsewhere"}
    env = dev.function_env(base, {"GCP_PROJECT": "inner"}, "file:///certs.json")
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["GCP_PROJECT"] == "inner"
    assert env["AUTH_CERTS_URL"] == "file:///certs.json"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/elsewhere"]
    assert base["GCP_PROJECT"] == "outer"  # the caller's mapping is not modified


def test_export_lines_quote_for_the_shell() -> None:
    lines = cli.export_lines({"GCP_PROJECT": "it's", "SUBMIT_URL": "http://x", "OTHER": "no"})
    assert lines == ["export GCP_PROJECT='it'\"'\"'s'", "export SUBMIT_URL=http://x"]


# --- the stack file ----------------------------------------------------------------------------


def test_read_stack(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    assert cli.read_stack(path) is None
    path.write_text(json.dumps({"pid": os.getpid(), "project": "p"}))
    assert cli.read_stack(path) == {"pid": os.getpid(), "project": "p"}
    with pytest.raises(cli.CliError, match="no dev stack is running"):
        cli.require_stack(tmp_path / "missing.json")


def test_stack_file_of_a_dead_process_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"pid": 2**22 + 1}))  # above Linux's pid_max default
    assert cli.read_stack(path) is None


def test_stack_project_precedence() -> None:
    assert cli.stack_project({"project": "s"}, {"GCP_PROJECT": "e"}) == "s"
    assert cli.stack_project(None, {"GCP_PROJECT": "e"}) == "e"
    assert cli.stack_project(None, {}) == "demo-creations"


@pytest.mark.parametrize(
    ("argv", "ok"),
    [
        (["token", "--user", "alice"], True),
        (["token", "--user", "a/b"], False),
        (["token", "--user", ""], False),
        (["grant", "--user", "alice", "--tokens", "10"], True),
        (["grant", "--user", "alice", "--tokens", "0"], False),
        (["grant", "--user", "alice", "--tokens", "x"], False),
        (["env"], True),
    ],
)
def test_cli_argument_validation(argv: list[str], ok: bool) -> None:
    parser = cli.build_parser()
    if ok:
        parser.parse_args(argv)
    else:
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


# --- topology -----------------------------------------------------------------------------------


def test_tap_subscription_name() -> None:
    assert tap_subscription_name("creations-generate") == "creations-generate-tap"


def test_ensure_resources_refuses_real_projects() -> None:
    settings = Settings(pubsub_emulator_host=None, storage_emulator_host=None)
    with pytest.raises(ValueError, match="only provisions the local emulators"):
        ensure_resources(settings)


# --- managed processes -------------------------------------------------------------------------


def test_topics_and_which_are_tapped() -> None:
    settings = Settings()
    assert topology.topics(settings) == [
        "creations-generate",
        "creations-stitch",
        "creations-dead-letter",
        "creations-sweep",
        "creations-status",
        "creations-webhooks-exhausted",
    ]
    # The sweep topic is a clock tick: a tap would only pile ticks up.
    assert settings.sweep_topic not in topology.tapped_topics(settings)
    assert settings.dead_letter_topic in topology.tapped_topics(settings)
    assert settings.status_topic in topology.tapped_topics(settings)


# --- the Firestore emulator's trigger flag ------------------------------------------------------


def test_firestore_emulator_gets_the_functions_emulator_flag_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emulators, "firestore_launcher", lambda: Path("/sdk/firestore"))
    plain = emulators.firestore_emulator(1, tmp_path)
    assert not any("functions_emulator" in arg for arg in plain.argv)
    wired = emulators.firestore_emulator(1, tmp_path, functions_emulator="127.0.0.1:8086")
    assert wired.argv[-2:] == ["--functions_emulator", "127.0.0.1:8086"]


# --- trigger router: repairing the emulator's events ---------------------------------------------


def _event_data(
    old: dict[str, Any] | None, new: dict[str, Any] | None, mask: list[str] | None = None
) -> Any:
    """A DocumentEventData with string/int/map/array values built from plain dicts."""
    data = DocumentEventData()._pb

    def fill(document: Any, fields: dict[str, Any]) -> None:
        document.name = "projects/p/databases/(default)/documents/creations/c1"
        for key, value in fields.items():
            _set_value(document.fields[key], value)

    if new is not None:
        fill(data.value, new)
    if old is not None:
        fill(data.old_value, old)
    if mask is not None:
        data.update_mask.field_paths.extend(mask)
    return data


def _set_value(target: Any, value: Any) -> None:
    if isinstance(value, dict):
        target.map_value.SetInParent()
        for key, inner in value.items():
            _set_value(target.map_value.fields[key], inner)
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for inner in value:
            _set_value(target.array_value.values.add(), inner)
    elif isinstance(value, bool):
        target.boolean_value = value
    elif isinstance(value, int):
        target.integer_value = value
    else:
        target.string_value = value


def _parse(payload: bytes) -> Any:
    data = DocumentEventData()._pb
    data.ParseFromString(payload)
    return data


EMULATOR_HEADERS = [
    ("Accept-Encoding", "gzip"),
    ("User-Agent", "Google-HTTP-Java-Client/unknown-version (gzip)"),
    ("ce-specversion", "1.0"),
    ("ce-type", "google.cloud.firestore.document.v1.updated"),
    ("ce-source", "//firestore.googleapis.com/projects/projects/p/databases/(default)"),
    ("ce-id", "0d6bc5a2-0000-4000-8000-000000000000"),
    ("ce-subject", "documents/creations/c1"),
    ("ce-time", "2026-11-28T18:05:10Z"),
    ("ce-datacontenttype", "application/protobuf"),
    ("ce-location", "us-central1"),
    ("ce-project", "p"),
    ("ce-database", "(default)"),
    ("ce-namespace", "(default)"),
    ("ce-document", "creations/c1"),
    ("Content-Type", "application/protobuf"),
    ("Host", "127.0.0.1:8086"),
    ("Content-Length", "372"),
]


def test_forward_headers_fix_the_source_and_keep_every_cloud_event_header() -> None:
    out = triggers.forward_headers(EMULATOR_HEADERS, "p")
    assert out["ce-source"] == "//firestore.googleapis.com/projects/p/databases/(default)"
    assert out["content-type"] == "application/protobuf"
    kept = {k.lower(): v for k, v in EMULATOR_HEADERS if k.startswith("ce-") and k != "ce-source"}
    assert kept.items() <= out.items()
    # Transport headers are the emulator's connection's, not the event's.
    assert set(out) == set(kept) | {"ce-source", "content-type"}


def test_production_source_names_the_database() -> None:
    assert triggers.production_source("p", "other") == (
        "//firestore.googleapis.com/projects/p/databases/other"
    )


def test_decode_body_undoes_the_emulators_base64_and_passes_raw_bytes_through() -> None:
    raw = _event_data({"a": 1}, {"a": 2}).SerializeToString()
    assert raw[:1] in (b"\x0a", b"\x12", b"\x1a")  # a field tag: never a base64 character
    assert triggers.decode_body(base64.b64encode(raw)) == raw
    assert triggers.decode_body(raw) == raw
    assert triggers.decode_body(b"") == b""


def test_update_mask_lists_changed_leaves() -> None:
    old = {"status": "pending", "request": {"prompt": "a", "count": 2}, "media": [], "gone": 1}
    new = {
        "status": "failed",
        "request": {"prompt": "b", "count": 2},
        "media": [{"uri": "gs://b/o"}],
        "error": {"code": "x"},
        "weird key": True,
    }
    payload = triggers.fill_update_mask(_event_data(old, new).SerializeToString())
    assert list(_parse(payload).update_mask.field_paths) == [
        "error",
        "gone",
        "media",
        "request.prompt",
        "status",
        "`weird key`",
    ]


def test_update_mask_treats_a_map_replacing_a_scalar_as_one_change() -> None:
    payload = triggers.fill_update_mask(
        _event_data({"m": "x"}, {"m": {"a": 1}}).SerializeToString()
    )
    assert list(_parse(payload).update_mask.field_paths) == ["m"]


@pytest.mark.parametrize(
    ("old", "new", "mask"),
    [
        (None, {"a": 1}, None),  # created: no old value
        ({"a": 1}, None, None),  # deleted: no value
        ({"a": 1}, {"a": 2}, ["a"]),  # a mask already there is trusted
    ],
)
def test_update_mask_is_left_alone_unless_an_update_lacks_it(
    old: dict[str, Any] | None, new: dict[str, Any] | None, mask: list[str] | None
) -> None:
    payload = _event_data(old, new, mask).SerializeToString()
    assert triggers.fill_update_mask(payload) == payload


def test_a_body_that_is_not_an_event_is_forwarded_as_it_came() -> None:
    assert triggers.fill_update_mask(b"\xff\xff not protobuf") == b"\xff\xff not protobuf"


def test_field_path_quoting() -> None:
    assert triggers.changed_field_paths({}, {}) == []
    data = _event_data({}, {"a`b": 1, "x\\y": 2, "_ok1": 3})
    assert triggers.changed_field_paths({}, data.value.fields) == ["_ok1", "`a\\`b`", "`x\\\\y`"]


@pytest.mark.parametrize(
    ("path", "parsed"),
    [
        ("/functions/projects/p/triggers/creations-refund", ("p", "creations-refund")),
        ("/functions/projects/demo-x/triggers/t1?x=1", ("demo-x", "t1")),
        ("/functions/projects/p/triggers/", None),
        ("/", None),
        ("/functions/projects/p/triggers/a/b", None),
    ],
)
def test_parse_trigger_path(path: str, parsed: tuple[str, str] | None) -> None:
    assert triggers.parse_trigger_path(path) == parsed


def test_trigger_registration_body_is_what_firebase_tools_sends() -> None:
    trigger = triggers.FirestoreTrigger(
        "creations-refund", "google.cloud.firestore.document.v1.updated", "creations/{id}"
    )
    assert trigger.registration_body() == {
        "eventType": "google.cloud.firestore.document.v1.updated",
        "database": "(default)",
        "namespace": "(default)",
        "document": {"value": "creations/{id}", "matchType": "PATH_PATTERN"},
    }
    assert triggers.registration_path("p", "creations-refund") == (
        "/emulator/v1/projects/p/eventarcTrigger?eventarcTriggerId=creations-refund"
    )


@pytest.mark.parametrize(
    ("trigger_id", "event_type"),
    [
        ("ok", "google.cloud.firestore.document.v1.changed"),
        ("a/b", "google.cloud.firestore.document.v1.updated"),
        ("", "google.cloud.firestore.document.v1.updated"),
    ],
)
def test_trigger_definitions_are_checked(trigger_id: str, event_type: str) -> None:
    with pytest.raises(ValueError):
        triggers.FirestoreTrigger(trigger_id, event_type, "creations/{id}")


def test_router_forwards_the_repaired_event_and_relays_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, dict[str, str], bytes]] = []

    def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
        sent.append((url, dict(headers), body))
        return 500, b"boom"

    monkeypatch.setattr(triggers, "_post", post)
    router = triggers.TriggerRouter(1)
    router.route("p", "creations-refund", "http://127.0.0.1:8082")
    raw = _event_data({"status": "pending"}, {"status": "failed"}).SerializeToString()

    status, answer, delivery = router.deliver(
        "/functions/projects/p/triggers/creations-refund", EMULATOR_HEADERS, base64.b64encode(raw)
    )

    assert (status, answer) == (500, b"boom")  # the emulator hears what the function said
    ((url, headers, body),) = sent
    assert url == "http://127.0.0.1:8082"
    assert headers["ce-source"] == "//firestore.googleapis.com/projects/p/databases/(default)"
    assert list(_parse(body).update_mask.field_paths) == ["status"]
    assert delivery is not None
    assert (delivery.status, delivery.trigger_id, delivery.error) == (
        500,
        "creations-refund",
        "boom",
    )
    assert delivery.as_log()["severity"] == "WARNING"


def test_router_answers_404_for_unknown_triggers_and_paths() -> None:
    router = triggers.TriggerRouter(1)
    status, _answer, delivery = router.deliver(
        "/functions/projects/p/triggers/nobody", EMULATOR_HEADERS, b""
    )
    assert status == 404
    assert delivery is not None
    assert delivery.target is None
    assert router.deliver("/elsewhere", [], b"")[0::2] == (404, None)


def test_router_reports_an_unreachable_function_as_502(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> tuple[int, bytes]:
        raise ConnectionRefusedError("refused")

    monkeypatch.setattr(triggers, "_post", refuse)
    router = triggers.TriggerRouter(1)
    router.route("p", "t", "http://127.0.0.1:9")
    status, _answer, delivery = router.deliver("/functions/projects/p/triggers/t", [], b"")
    assert status == 502
    assert delivery is not None
    assert "refused" in str(delivery.error)


def test_json_lines_observer(tmp_path: Path) -> None:
    observe = triggers.json_lines_observer(tmp_path / "logs" / "router.log")
    delivery = triggers.Delivery(
        "p",
        "t",
        "google.cloud.firestore.document.v1.updated",
        "documents/creations/c1",
        "id-1",
        "http://x",
        200,
        0.01,
    )
    observe(delivery)
    (line,) = (tmp_path / "logs" / "router.log").read_text().splitlines()
    logged = json.loads(line)
    assert logged["severity"] == "INFO"
    assert logged["message"] == "updated documents/creations/c1 -> t -> http://x: 200"


# --- the chain's wiring -------------------------------------------------------------------------


def _emulated(**overrides: Any) -> Settings:
    return Settings(
        gcp_project="p",
        firestore_emulator_host="127.0.0.1:1",
        pubsub_emulator_host="127.0.0.1:2",
        storage_emulator_host="http://127.0.0.1:3",
        **overrides,
    )


# A Firestore trigger, for the tooling that can still route one (no function has one today).
A_TRIGGER = chain.TriggerRoute(
    triggers.FirestoreTrigger("t1", "google.cloud.firestore.document.v1.updated", "creations/{id}"),
    "refund",
)


def test_production_wiring() -> None:
    settings = _emulated()
    wiring = chain.default_wiring(settings)
    assert [(p.subscription, p.topic, p.function, p.dead_letter_topic) for p in wiring.pushes] == [
        ("creations-generate-push", "creations-generate", "generate", "creations-dead-letter"),
        ("creations-stitch-push", "creations-stitch", "stitch", "creations-dead-letter"),
        ("creations-dead-letter-push", "creations-dead-letter", "dead_letter", None),
        ("creations-sweep-push", "creations-sweep", "sweep", None),
        ("creations-status-push", "creations-status", "refund", None),
        ("creations-status-webhooks-push", "creations-status", "webhooks", None),
    ]
    assert wiring.triggers == ()  # refund hears the status stream, not every document update
    assert wiring.schedule_topic == settings.sweep_topic
    assert wiring.function_names() == {
        "generate",
        "stitch",
        "dead_letter",
        "sweep",
        "refund",
        "webhooks",
    }
    # The webhooks subscription lets through only what a webhook asked for, as production's.
    assert wiring.pushes[-1].filter == WEBHOOK_FILTER


def test_job_subscription_has_retry_and_dead_letter_policies() -> None:
    settings = _emulated(max_delivery_attempts=7)
    route = chain.default_wiring(settings).pushes[0]
    function = chain.FunctionSpec("generate", "generate", Path("main.py"), 8081)
    endpoint = chain.push_endpoint(function, "p", route.topic)
    assert endpoint == "http://127.0.0.1:8081/projects/p/topics/creations-generate"

    subscription = chain.push_subscription(
        "p", route, endpoint, max_delivery_attempts=7, knobs=chain.Knobs()
    )

    assert subscription.name == "projects/p/subscriptions/creations-generate-push"
    assert subscription.topic == "projects/p/topics/creations-generate"
    assert subscription.push_config.push_endpoint == endpoint
    assert subscription.ack_deadline_seconds == 600
    assert subscription.retry_policy.minimum_backoff == dt.timedelta(seconds=1)
    assert subscription.retry_policy.maximum_backoff == dt.timedelta(seconds=10)
    assert subscription.dead_letter_policy.dead_letter_topic == (
        "projects/p/topics/creations-dead-letter"
    )
    assert subscription.dead_letter_policy.max_delivery_attempts == 7


def test_other_subscriptions_retry_without_a_dead_letter_policy() -> None:
    route = chain.PushRoute("creations-sweep", "sweep")
    subscription = chain.push_subscription(
        "p", route, "http://x/", max_delivery_attempts=5, knobs=chain.Knobs()
    )
    assert "dead_letter_policy" not in subscription
    assert subscription.retry_policy.minimum_backoff == dt.timedelta(seconds=1)


def test_knobs_from_env() -> None:
    assert chain.Knobs.from_env({}) == chain.Knobs()
    knobs = chain.Knobs.from_env(
        {"SWEEP_INTERVAL_SECONDS": "2.5", "RETRY_MIN_BACKOFF_SECONDS": "0"}
    )
    assert (knobs.sweep_interval_seconds, knobs.backoff) == (2.5, (0.0, 10.0))
    # Pub/Sub rejects a maximum below the minimum: the maximum follows the minimum up.
    assert chain.Knobs.from_env({"RETRY_MIN_BACKOFF_SECONDS": "30"}).backoff == (30.0, 30.0)


@pytest.mark.parametrize(
    "environ",
    [
        {"SWEEP_INTERVAL_SECONDS": "soon"},
        {"SWEEP_INTERVAL_SECONDS": "-1"},
        {"RETRY_MIN_BACKOFF_SECONDS": "601"},
        {"RETRY_MIN_BACKOFF_SECONDS": "-0.5"},
    ],
)
def test_knobs_reject_nonsense(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="SWEEP_INTERVAL_SECONDS, RETRY_MIN_BACKOFF_SECONDS"):
        chain.Knobs.from_env(environ)


def test_every_function_has_a_local_concurrency_and_the_environment_overrides_it() -> None:
    assert set(chain.CONCURRENCY) == set(FUNCTIONS)
    assert chain.Knobs().concurrency == chain.CONCURRENCY
    chosen = chain.Knobs.from_env({"GENERATE_WORKERS": "3", "DEAD_LETTER_THREADS": " 4 "})
    assert chosen.concurrency["generate"] == chain.Concurrency(
        workers=3, threads=chain.CONCURRENCY["generate"].threads
    )
    assert chosen.concurrency["dead_letter"].threads == 4
    assert chosen.concurrency["submit"] == chain.CONCURRENCY["submit"]
    assert chain.Concurrency(workers=3, threads=2).env() == {"WORKERS": "3", "THREADS": "2"}


@pytest.mark.parametrize(
    ("environ", "complaint"),
    [
        ({"GENERATE_WORKERS": "two"}, "GENERATE_WORKERS='two' is not a whole number"),
        ({"GENERATE_WORKERS": "0"}, "generate: workers must be"),
        # One thread makes gunicorn's sync worker, which lingers 2 s after each push.
        ({"STITCH_THREADS": "1"}, "stitch: threads must be 2-"),
    ],
)
def test_concurrency_rejects_nonsense(environ: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        chain.Knobs.from_env(environ)


def test_each_function_process_gets_its_workers_and_threads(tmp_path: Path) -> None:
    stack = _stack(
        tmp_path,
        chain.default_functions(DEFAULT_PORTS.functions()),
        knobs=chain.Knobs(concurrency={"generate": chain.Concurrency(workers=3, threads=2)}),
    )
    generate = stack.processes["generate"].env
    assert (generate["WORKERS"], generate["THREADS"]) == ("3", "2")
    # Not named: functions-framework's own default (nothing set).
    assert "WORKERS" not in stack.processes["submit"].env


def test_the_accepting_line_names_the_entry_point_and_counts_the_wiring(tmp_path: Path) -> None:
    wiring = chain.Wiring(
        pushes=(chain.PushRoute("a", "generate"), chain.PushRoute("b", "sweep")),
        triggers=(chain.TriggerRoute(A_TRIGGER.trigger, "refund"),),
    )
    stack = _stack(tmp_path, chain.default_functions(DEFAULT_PORTS.functions()), wiring=wiring)
    assert stack.accepting_line() == (
        "accepting work: POST http://127.0.0.1:8080/v1/creations, http://127.0.0.1:8083, "
        "http://127.0.0.1:8085, http://127.0.0.1:8087 (chain wired: 2 push subscriptions, "
        "1 trigger)"
    )
    source = tmp_path / "main.py"
    source.write_text("")
    alone = _stack(
        tmp_path, [chain.FunctionSpec("api", "api", source, 9000)], wiring=chain.Wiring()
    )
    assert alone.accepting_line() == (
        "accepting work: http://127.0.0.1:9000 (chain wired: nothing to wire)"
    )


def test_default_functions(tmp_path: Path) -> None:
    functions = chain.default_functions(DEFAULT_PORTS.functions(), {"generate": tmp_path / "g.py"})
    by_name = {f.name: f for f in functions}
    assert set(by_name) == set(FUNCTIONS)
    assert by_name["generate"].source == tmp_path / "g.py"
    assert by_name["dead_letter"].source == REPO_ROOT / "functions" / "dead_letter" / "main.py"
    assert (by_name["dead_letter"].target, by_name["dead_letter"].port) == ("dead_letter", 8083)
    assert by_name["sweep"].url == "http://127.0.0.1:8084"
    with pytest.raises(ValueError, match="no port"):
        chain.default_functions({"submit": 1})


def test_function_processes_get_the_settings_names_and_the_repo_on_their_path() -> None:
    settings = _emulated(generate_topic="jobs", max_delivery_attempts=9)
    env = chain.process_env(
        {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), "/x"]), "GENERATE_TOPIC": "stale"},
        settings,
    )
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO_ROOT), "/x"]
    assert env["GENERATE_TOPIC"] == "jobs"  # the wiring's name wins over a stale variable
    assert env["MAX_DELIVERY_ATTEMPTS"] == "9"
    assert env["GCP_PROJECT"] == env["GOOGLE_CLOUD_PROJECT"] == "p"
    assert env["PUBSUB_EMULATOR_HOST"] == "127.0.0.1:2"
    assert env["PYTHONUNBUFFERED"] == "1"


def _stack(tmp_path: Path, functions: list[chain.FunctionSpec], **kwargs: Any) -> chain.LocalStack:
    return chain.LocalStack(
        _emulated(), functions, router_port=8086, log_dir=tmp_path, env={}, **kwargs
    )


def test_local_stack_checks_its_definitions(tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text("")
    sweep = chain.FunctionSpec("sweep", "sweep", source, 8084)
    only_sweep = chain.Wiring(pushes=(chain.PushRoute("t", "sweep"),))

    stack = _stack(tmp_path, [sweep], wiring=only_sweep)
    assert list(stack.processes) == ["sweep"]
    assert stack.processes["sweep"].argv[1:] == [
        "--target=sweep",
        f"--source={source}",
        "--host=127.0.0.1",
        "--port=8084",
    ]
    assert stack.processes["sweep"].log_path == tmp_path / "sweep.log"
    assert stack.failure() is None  # nothing started, nothing broken

    with pytest.raises(ValueError, match="not in the stack"):
        _stack(tmp_path, [sweep])  # the production wiring needs more functions
    with pytest.raises(ValueError, match="own port"):
        clash = chain.FunctionSpec("refund", "refund", source, 8086)  # the router's port
        _stack(
            tmp_path,
            [clash],
            wiring=chain.Wiring(triggers=(A_TRIGGER,)),
        )
    with pytest.raises(StackError, match="does not exist"):
        _stack(
            tmp_path, [dataclasses.replace(sweep, source=tmp_path / "nope.py")], wiring=only_sweep
        )
    with pytest.raises(ValueError, match="emulator hosts"):
        chain.LocalStack(Settings(), [sweep], router_port=1, log_dir=tmp_path, wiring=only_sweep)


def test_describe_wiring_says_what_feeds_each_function() -> None:
    settings = _emulated()
    functions = chain.default_functions(DEFAULT_PORTS.functions())
    lines = chain.describe_wiring(
        functions,
        chain.default_wiring(settings),
        settings=settings,
        knobs=chain.Knobs(),
        router_port=8086,
    )
    text = "\n".join(lines)
    assert "submit       http://127.0.0.1:8080  <- HTTP clients" in text
    assert "dead letter after 5 attempts -> creations-dead-letter" in text
    assert "Pub/Sub creations-status (push creations-status-push" in text
    assert "local scheduler every 15 s" in text
    assert len(lines) == len(functions)


def test_scheduler_needs_a_positive_interval() -> None:
    with pytest.raises(ValueError):
        chain.Scheduler("127.0.0.1:1", "p", "t", 0)


# --- make demo ----------------------------------------------------------------------------------


def test_demo_describes_and_settles_creations() -> None:
    failed = {
        "status": "failed",
        "progress": 0,
        "refunded": False,
        "error": {"code": "provider_error", "message": "no"},
    }
    assert demo.describe(failed) == "failed     progress   0  error provider_error: no"
    followed = demo.Followed("fail", "c1", failed)
    assert demo.is_final(followed)
    assert not demo.is_settled_failure(followed)  # the refund has not landed yet
    followed.state = {**failed, "refunded": True}
    assert demo.is_settled_failure(followed)
    followed.state = {"status": "draft"}
    assert demo.is_settled_failure(followed)  # a wrong ending ends the wait; checks report it
    assert not demo.is_final(demo.Followed("x", "c2"))


def test_wait_until_returns_the_first_truthy_answer_and_says_what_timed_out() -> None:
    answers = iter([None, 0, "ready"])
    assert wait_until(lambda: next(answers), 5, "the thing") == "ready"
    with pytest.raises(TimeoutError, match=r"never: not within 0\.01 s"):
        wait_until(lambda: None, 0.01, "never", interval=0.001)


def test_wait_for_returns_a_done_value_even_a_falsy_one_and_says_what_it_saw_last() -> None:
    reads = iter([[1, 2], [1], []])
    assert wait_for(lambda: next(reads), lambda got: got == [], 5, "empty") == []
    counter = itertools.count()
    with pytest.raises(TimeoutError, match=r"above 10\^6: not within 0\.01 s; last seen: \d+"):
        wait_for(lambda: next(counter), lambda n: n > 10**6, 0.01, "above 10^6", interval=0.001)
