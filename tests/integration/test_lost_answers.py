"""When Firestore or Pub/Sub applied a call but its answer was lost (and the client library's
retry then ran into the call's own result), the service must still tell the truth."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import flask
import pytest
from google.cloud import firestore
from openapi_core import OpenAPI

from shared.core.errors import Conflict, QueueUnavailable, StoreBusy
from shared.core.settings import Settings
from shared.creations.claims import Claim, ClaimStore
from shared.creations.model import Creation, Job
from shared.intake.actions import CreationActions
from shared.intake.submission import QueueUnavailableRefunded, SubmissionService, Unconfirmed
from shared.money.ledger import Ledger
from shared.money.refunds import RefundHandler, Refunds
from shared.store.documents import Batch, Documents, Query, Snapshot
from shared.wiring import build_submit_api, submissions
from tests.support.contract import ContractClient
from tests.support.events import status_event
from tests.support.fakes import RecordingAnnouncer, RecordingMediaStore, RecordingPublisher
from tests.support.seeds import IMAGE


@pytest.fixture
def lose_next_commit_answer(db: firestore.Client) -> Iterator[Callable[[], None]]:
    """Arm: the next commit is applied, then sent again, as a retry after a lost answer does."""
    api = db._firestore_api
    original = api.commit
    armed = {"on": False}

    def commit(*args: Any, **kwargs: Any) -> Any:
        if armed["on"]:
            armed["on"] = False
            kwargs.pop("retry", None)
            original(*args, **kwargs)  # applied on the server; the answer "never arrives"
        return original(*args, **kwargs)  # the resend: fails against its own first write

    api.commit = commit
    yield lambda: armed.update(on=True)
    api.commit = original


def submit(svc: SubmissionService, key: str | None = None) -> Any:
    return svc.submit(user_id="u", request=IMAGE, idempotency_key=key, fingerprint="f")


@pytest.mark.parametrize("key", [None, "order-1"])
def test_a_lost_commit_answer_is_still_an_acceptance_and_the_job_is_enqueued(
    db: firestore.Client,
    documents: Documents,
    stack: Settings,
    ledger: Ledger,
    lose_next_commit_answer: Callable[[], None],
    key: str | None,
) -> None:
    ledger.grant("u", 100)
    publisher = RecordingPublisher()
    lose_next_commit_answer()
    accepted = submit(submissions(documents, stack, publisher, RecordingAnnouncer()), key)
    assert not accepted.replayed
    assert accepted.balance == 99  # one image at the default price
    assert ledger.balance("u") == 99  # one image at the default price
    assert [job.creation_id for job in publisher.jobs] == [accepted.creation.id]
    assert len(list(db.collection("creations").stream())) == 1


def test_a_lost_claim_answer_still_gives_the_claim(
    documents: Documents,
    stack: Settings,
    ledger: Ledger,
    lose_next_commit_answer: Callable[[], None],
) -> None:
    ledger.grant("u", 100)
    accepted = submit(submissions(documents, stack, RecordingPublisher(), RecordingAnnouncer()))
    lose_next_commit_answer()
    claim = ClaimStore(documents, stack).claim(accepted.creation.id)
    assert isinstance(claim, Claim)
    assert claim.attempt == 1


def test_progress_never_goes_back_when_a_creation_is_claimed_again(
    db: firestore.Client,
    documents: Documents,
    stack: Settings,
    ledger: Ledger,
) -> None:
    ledger.grant("u", 100)
    accepted = submit(submissions(documents, stack, RecordingPublisher(), RecordingAnnouncer()))
    store = ClaimStore(documents, stack)
    first = store.claim(accepted.creation.id)
    assert isinstance(first, Claim)
    store.report_progress(first, 70)
    store.release(first)
    second = store.claim(accepted.creation.id)
    assert isinstance(second, Claim)
    store.report_progress(second, 10)
    progress = db.collection("creations").document(accepted.creation.id).get().get("progress")
    assert progress == 70


def test_a_key_whose_job_could_not_be_queued_can_be_used_again(
    documents: Documents,
    stack: Settings,
    ledger: Ledger,
) -> None:
    ledger.grant("u", 100)
    with pytest.raises(QueueUnavailableRefunded) as caught:
        submit(
            submissions(documents, stack, RecordingPublisher(fail=True), RecordingAnnouncer()),
            "order-2",
        )
    assert caught.value.refunded
    retry = submit(
        submissions(documents, stack, RecordingPublisher(), RecordingAnnouncer()), "order-2"
    )
    assert not retry.replayed
    assert retry.creation.status == "pending"
    assert ledger.balance("u") == 99  # one image at the default price


def test_a_publish_that_timed_out_but_arrived_is_an_acceptance(
    documents: Documents,
    stack: Settings,
    ledger: Ledger,
) -> None:
    class LatePublisher:
        """The message reached Pub/Sub and a worker claimed it; only the answer timed out."""

        def publish(self, job: Job, *, topic: str) -> str:
            ClaimStore(documents, stack).claim(job.creation_id)
            raise QueueUnavailable("publish timed out")

    ledger.grant("u", 100)
    accepted = submit(submissions(documents, stack, LatePublisher(), RecordingAnnouncer()))
    assert accepted.creation.status == "processing"
    assert ledger.balance("u") == 99  # one image at the default price
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 0


class FaultyDocuments:
    """The suite's store on the emulator, with faults a test arms: the next commit lands but
    its answer is lost and then the store stops answering (`lose_answer_then_go_down`), or
    every commit writing one document is beaten to it by another writer (`contend`)."""

    def __init__(self, inner: Documents, db: firestore.Client) -> None:
        self._inner = inner
        self._db = db
        self._down = False
        self._lose_answer = False
        self._contended: str | None = None
        self._before_commit: list[Callable[[], object]] = []
        self.commits_contended = 0

    def before_next_commit(self, hook: Callable[[], object]) -> None:
        """Run `hook` (another writer) just before the next commit is sent."""
        self._before_commit.append(hook)

    def lose_answer_then_go_down(self) -> None:
        self._lose_answer = True

    def go_down(self) -> None:
        self._down = True

    def contend(self, path: str) -> None:
        self._contended = path

    def read(self, *paths: str) -> list[Snapshot]:
        self._answer_or_fail()
        return self._inner.read(*paths)

    def commit(self, batch: Batch) -> dict[str, Snapshot]:
        self._answer_or_fail()
        hooks, self._before_commit = self._before_commit, []
        for hook in hooks:
            hook()
        if self._contended and any(w.path == self._contended for w in batch.writes):
            self.commits_contended += 1
            self._db.document(self._contended).update({"touched": firestore.Increment(1)})
        written = self._inner.commit(batch)
        if self._lose_answer:
            self._lose_answer, self._down = False, True
            raise StoreBusy("injected: the commit landed but its answer was lost")
        return written

    def query(self, query: Query) -> list[Snapshot]:
        self._answer_or_fail()
        return self._inner.query(query)

    def count(self, query: Query) -> int:
        self._answer_or_fail()
        return self._inner.count(query)

    def read_collection(self, collection: str) -> list[Snapshot]:
        self._answer_or_fail()
        return self._inner.read_collection(collection)

    def _answer_or_fail(self) -> None:
        if self._down:
            raise StoreBusy("injected: the store does not answer")


@pytest.fixture
def faulty(documents: Documents, db: firestore.Client) -> FaultyDocuments:
    return FaultyDocuments(documents, db)


def test_a_debit_that_landed_unconfirmed_is_never_answered_busy(
    db: firestore.Client, faulty: FaultyDocuments, stack: Settings, ledger: Ledger
) -> None:
    """`busy` would say nothing was debited: a client without a key would retry and pay twice."""
    ledger.grant("u", 100)
    publisher = RecordingPublisher()
    faulty.lose_answer_then_go_down()
    with pytest.raises(Unconfirmed) as caught:
        submit(submissions(faulty, stack, publisher, RecordingAnnouncer()))
    creation_id = caught.value.creation_id
    assert ledger.balance("u") == 99  # it was debited ...
    assert db.collection("creations").document(creation_id).get().get("status") == "pending"
    assert [job.creation_id for job in publisher.jobs] == [creation_id]  # ... and goes on


def test_a_dead_queue_and_a_contended_balance_fail_the_creation_the_refund_follows(
    db: firestore.Client,
    documents: Documents,
    faulty: FaultyDocuments,
    stack: Settings,
    ledger: Ledger,
    refunds: Refunds,
) -> None:
    ledger.grant("u", 100)

    class DeadQueueBusyUser(RecordingPublisher):
        def publish(self, job: Job, *, topic: str) -> str:
            faulty.contend("users/u")  # from now on the user's other submits win every race
            return super().publish(job, topic=topic)

    with pytest.raises(QueueUnavailableRefunded) as caught:
        submit(
            submissions(faulty, stack, DeadQueueBusyUser(fail=True), RecordingAnnouncer()),
            "order-3",
        )
    assert faulty.commits_contended == stack.store_max_attempts
    assert caught.value.refunded is False
    creation = db.collection("creations").document(caught.value.creation_id).get().to_dict() or {}
    assert (creation["status"], creation["error"]["code"]) == ("failed", "queue_unavailable")
    event = status_event(caught.value.creation_id, creation)
    assert RefundHandler(refunds).on_status_event(event, event_id="e1") == "refunded"
    assert ledger.balance("u") == 100
    retry = submit(
        submissions(documents, stack, RecordingPublisher(), RecordingAnnouncer()), "order-3"
    )
    assert not retry.replayed  # the key of a failed creation is free again


def test_a_dead_queue_and_a_dead_store_is_unconfirmed(
    db: firestore.Client, faulty: FaultyDocuments, stack: Settings, ledger: Ledger
) -> None:
    """Nothing can be failed, refunded or read back: `queue_unavailable` (the tokens are back)
    and `202` (it will run) could both be untrue, so the answer says it cannot tell."""
    ledger.grant("u", 100)

    class DeadQueueDeadStore(RecordingPublisher):
        def publish(self, job: Job, *, topic: str) -> str:
            faulty.go_down()
            return super().publish(job, topic=topic)

    with pytest.raises(Unconfirmed) as caught:
        submit(submissions(faulty, stack, DeadQueueDeadStore(fail=True), RecordingAnnouncer()))
    stored = db.collection("creations").document(caught.value.creation_id).get()
    assert stored.get("status") == "pending"  # the sweeper will queue it again
    assert ledger.balance("u") == 99


def test_of_two_concurrent_cancels_one_is_200_and_the_other_409(
    documents: Documents, faulty: FaultyDocuments, stack: Settings, ledger: Ledger, refunds: Refunds
) -> None:
    ledger.grant("u", 100)
    accepted = submit(submissions(documents, stack, RecordingPublisher(), RecordingAnnouncer()))
    media = RecordingMediaStore()
    first = CreationActions(
        documents, stack, refunds=refunds, media=media, announcer=RecordingAnnouncer()
    )
    second = CreationActions(
        faulty,
        stack,
        refunds=Refunds(faulty, stack, Ledger(faulty, stack)),
        media=media,
        announcer=RecordingAnnouncer(),
    )
    won: list[Creation] = []
    faulty.before_next_commit(lambda: won.append(first.cancel("u", accepted.creation.id)))
    with pytest.raises(Conflict, match="already canceled"):
        second.cancel("u", accepted.creation.id)
    assert [c.status for c in won] == ["canceled"]
    assert ledger.balance("u") == 100
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 1


def test_an_unconfirmed_debit_is_answered_503_unconfirmed_naming_the_creation(
    faulty: FaultyDocuments,
    stack: Settings,
    ledger: Ledger,
    auth: Callable[[str], dict[str, str]],
    openapi_spec: OpenAPI,
) -> None:
    """The HTTP answer, as the spec gives it: the caller learns where the creation would be."""
    ledger.grant("u", 100)
    real = build_submit_api(stack)
    service = submissions(faulty, stack, RecordingPublisher(), RecordingAnnouncer())
    api = dataclasses.replace(real, submissions=service)
    app = flask.Flask("submit-with-a-faulty-store")
    app.add_url_rule(
        "/<path:path>", "api", lambda path: api(flask.request), methods=["GET", "POST"]
    )
    client = ContractClient(app.test_client(), openapi_spec)
    faulty.lose_answer_then_go_down()
    response = client.post(
        "/v1/creations", json={"type": "image", "prompt": "x"}, headers=auth("u")
    )
    assert response.status_code == 503, response.json
    answer = response.json or {}
    assert answer["error"]["code"] == "unconfirmed"
    assert response.headers["Location"] == f"/v1/creations/{answer['creation_id']}"
    assert int(response.headers["Retry-After"]) >= 1
    assert ledger.balance("u") == 99  # it did land
