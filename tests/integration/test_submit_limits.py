"""The per-user limits under a concurrent burst of one user, through the real HTTP API of the
running local stack on the emulators: exactly as many admitted as the limit allows, the rest
`429` with `Retry-After` and nothing debited, and every ledger equal to its balance.
(Its own stack and module: only one stack can own the trigger router port.)"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI

from tests.support.contract import check_answer
from tests.support.stack import RunningStack, start_stack
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet

MAX_ACTIVE = 5
BURST = 8  # above MAX_ACTIVE, so the first test meets the active limit, not the bucket
STACK_ENV = {
    # Slow jobs: the admitted creations stay pending/processing while the burst is answered
    # (which takes a second or two; 10 s leaves room for a loaded machine).
    "OFFLINE_LATENCY_SECONDS": "10",
    "MAX_ACTIVE_PER_USER": str(MAX_ACTIVE),
    "TOO_MANY_ACTIVE_RETRY_AFTER_SECONDS": "4",
    "SUBMIT_BURST": str(BURST),
    # One token in 100 minutes: nothing refills while the tests run (the wait for five slow
    # drafts takes about a minute: `generate` works through them one after another).
    "SUBMIT_RATE_PER_MINUTE": "0.01",
}
IMAGE = {"type": "image", "prompt": "a kite in a burst"}


@pytest.fixture(scope="module")
def running(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningStack]:
    started = start_stack(emulators, base_env, signer, tmp_path_factory.mktemp("limits"), STACK_ENV)
    try:
        yield started
    finally:
        started.stack.stop()


def burst(running: RunningStack, spec: OpenAPI, user: str, count: int) -> list[requests.Response]:
    """`count` submits of `user` released together; every answer checked against the spec."""
    url = f"{running.stack.url('submit')}/v1/creations"
    headers = running.headers(user)
    gate = threading.Barrier(count)
    answers: list[requests.Response | None] = [None] * count

    def one(index: int) -> None:
        with requests.Session() as session:
            gate.wait(timeout=30)
            answers[index] = session.post(url, json=IMAGE, headers=headers, timeout=60)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    done = [answer for answer in answers if answer is not None]
    assert len(done) == count, "a submit of the burst did not answer"
    for answer in done:
        check_answer(
            spec,
            "POST",
            "/v1/creations",
            answer.status_code,
            answer.content,
            dict(answer.headers),
            answer.headers.get("Content-Type", "").split(";")[0] or None,
        )
    return done


def debits(running: RunningStack, user: str) -> list[dict[str, Any]]:
    return [entry for entry in running.ledger.entries(user) if entry["kind"] == "debit"]


def test_a_burst_of_one_user_admits_exactly_max_active(
    running: RunningStack, openapi_spec: OpenAPI
) -> None:
    running.ledger.grant("burst-a", 100)
    answers = burst(running, openapi_spec, "burst-a", 12)
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 429]
    assert len(accepted) == MAX_ACTIVE, [(a.status_code, a.text) for a in answers]
    assert len(refused) == 12 - MAX_ACTIVE
    for answer in refused:
        assert answer.json()["error"]["code"] == "too_many_active", answer.text
        assert answer.headers["Retry-After"] == "4"
    ids = {a.json()["id"] for a in accepted}
    # Still active: the refusals were not made on creations that had finished meanwhile.
    for creation_id in ids:
        assert running.doc(creation_id)["status"] in ("pending", "processing")
    made = debits(running, "burst-a")
    assert {entry["creation_id"] for entry in made} == ids
    cost = accepted[0].json()["cost"]
    assert running.ledger.balance("burst-a") == 100 - MAX_ACTIVE * cost
    running.assert_ledgers_balance()


def test_a_burst_past_the_bucket_is_rate_limited(
    running: RunningStack, openapi_spec: OpenAPI
) -> None:
    user = "burst-b"
    running.ledger.grant(user, 100)
    first = burst(running, openapi_spec, user, MAX_ACTIVE)
    assert [a.status_code for a in first] == [202] * MAX_ACTIVE, [a.text for a in first]
    for answer in first:  # the active slots free again; the bucket (8 - 5 = 3) does not
        running.wait(answer.json()["id"], lambda d: d.get("status") == "draft", "draft", 90)
    answers = burst(running, openapi_spec, user, 12)
    accepted = [a for a in answers if a.status_code == 202]
    refused = [a for a in answers if a.status_code == 429]
    assert len(accepted) == BURST - MAX_ACTIVE, [(a.status_code, a.text) for a in answers]
    assert len(refused) == 12 - len(accepted)
    for answer in refused:
        assert answer.json()["error"]["code"] == "rate_limited", answer.text
        # A token in 100 minutes, and under one is left: a wait of more than 90 minutes.
        assert 90 * 60 < int(answer.headers["Retry-After"]) <= 100 * 60
    assert len(debits(running, user)) == BURST
    cost = accepted[0].json()["cost"]
    assert running.ledger.balance(user) == 100 - BURST * cost
    running.assert_ledgers_balance()
