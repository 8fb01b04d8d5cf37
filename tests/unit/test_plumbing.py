"""Pure helpers: the optimistic-concurrency loop, body parsing, routes, cursors, fingerprints."""

from __future__ import annotations

import datetime as dt

import flask
import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from werkzeug.exceptions import MethodNotAllowed

from shared.core.errors import (
    InvalidJson,
    InvalidRequest,
    PayloadTooLarge,
    StoreBusy,
    UnsupportedMediaType,
)
from shared.core.settings import Settings
from shared.creations.reading import decode_cursor, encode_cursor
from shared.intake.api.bodies import read_json_body
from shared.intake.api.routes import ROUTES
from shared.intake.idempotency import request_fingerprint
from shared.store.documents import Batch, LostRace
from shared.store.firestore import FirestoreDocuments
from shared.store.optimistic import run_optimistic


def no_sleep(seconds: float) -> None:
    assert 0 <= seconds <= 0.25


def test_optimistic_loop_retries_lost_races_then_returns() -> None:
    outcomes: list[Exception | str] = [LostRace("stale"), LostRace("taken"), LostRace("x"), "done"]

    def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert run_optimistic(attempt, Settings(store_max_attempts=5), "test", sleep=no_sleep) == "done"


def test_optimistic_loop_gives_up_as_busy_after_max_attempts() -> None:
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise LostRace("stale")

    with pytest.raises(StoreBusy, match="contended"):
        run_optimistic(attempt, Settings(store_max_attempts=4), "test", sleep=no_sleep)
    assert calls == 4


def test_optimistic_loop_turns_unavailability_into_busy_at_once() -> None:
    calls = 0

    def attempt() -> None:
        nonlocal calls
        calls += 1
        raise StoreBusy("the store is unavailable (read): ServiceUnavailable")

    with pytest.raises(StoreBusy, match="unavailable"):
        run_optimistic(attempt, Settings(store_max_attempts=4), "test", sleep=no_sleep)
    assert calls == 1


@pytest.mark.parametrize(
    ("raised", "becomes"),
    [
        (gexc.FailedPrecondition("stale"), LostRace),
        (gexc.AlreadyExists("taken"), LostRace),
        (gexc.Aborted("contention"), LostRace),
        (gexc.Conflict("conflict"), LostRace),
        (gexc.NotFound("deleted since read"), LostRace),
        (gexc.ServiceUnavailable("down"), StoreBusy),
        (gexc.DeadlineExceeded("slow"), StoreBusy),
        (gexc.TooManyRequests("quota"), StoreBusy),
        (gexc.PermissionDenied("iam"), gexc.PermissionDenied),
    ],
)
def test_firestore_errors_become_the_ports_errors(
    raised: Exception, becomes: type[Exception]
) -> None:
    db = firestore.Client(project="demo-offline", credentials=AnonymousCredentials())
    api = db._firestore_api

    def fail(*args: object, **kwargs: object) -> None:
        raise raised

    api.commit = fail
    batch = Batch()
    batch.create("c/a", {"n": 1})
    with pytest.raises(becomes):
        FirestoreDocuments(db, Settings()).commit(batch)


def test_optimistic_loop_lets_other_errors_through() -> None:
    def attempt() -> None:
        raise InvalidRequest("nope")

    with pytest.raises(InvalidRequest):
        run_optimistic(attempt, Settings(store_max_attempts=4), "test", sleep=no_sleep)


def _read(data: bytes, content_type: str | None, limit: int = 64) -> object:
    app = flask.Flask(__name__)
    headers = {"Content-Type": content_type} if content_type else {}
    with app.test_request_context("/", method="POST", data=data, headers=headers):
        return read_json_body(flask.request, limit)


def test_body_is_parsed_as_json() -> None:
    assert _read(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}


def test_body_over_the_limit_is_too_large() -> None:
    with pytest.raises(PayloadTooLarge):
        _read(b'{"a": "' + b"x" * 100 + b'"}', "application/json")


def test_body_of_another_media_type_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        _read(b'{"a": 1}', "text/plain")
    with pytest.raises(UnsupportedMediaType):
        _read(b'{"a": 1}', None)


@pytest.mark.parametrize("raw", [b"{", b"", b"\xff\xfe", b"{'a': 1}", b"NaN"])
def test_body_that_is_not_json_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(InvalidJson):
        _read(raw, "application/json")


def test_routes_keep_cancel_apart_from_ids() -> None:
    adapter = ROUTES.bind("submit")
    assert adapter.match("/v1/creations/abc:cancel", method="POST") == (
        "cancel_creation",
        {"creation_id": "abc"},
    )
    assert adapter.match("/v1/creations/abc", method="GET") == (
        "get_creation",
        {"creation_id": "abc"},
    )
    with pytest.raises(MethodNotAllowed):
        adapter.match("/v1/creations/abc:cancel", method="GET")
    with pytest.raises(MethodNotAllowed):
        adapter.match("/v1/balance", method="POST")


def test_cursor_round_trips_and_rejects_garbage() -> None:
    when = dt.datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=dt.UTC)
    assert decode_cursor(encode_cursor(when, "abc")) == (when, "abc")
    for garbage in ["", "!!!", "bm90IGpzb24", encode_cursor(when, "a/b")]:
        with pytest.raises(InvalidRequest, match="cursor"):
            decode_cursor(garbage)


def test_fingerprint_ignores_key_order_but_not_content_or_operation() -> None:
    a = request_fingerprint("POST /v1/creations", {"type": "image", "prompt": "x"})
    b = request_fingerprint("POST /v1/creations", {"prompt": "x", "type": "image"})
    c = request_fingerprint("POST /v1/creations", {"prompt": "y", "type": "image"})
    d = request_fingerprint("POST /v1/reels", {"type": "image", "prompt": "x"})
    assert a == b
    assert len({a, c, d}) == 3
