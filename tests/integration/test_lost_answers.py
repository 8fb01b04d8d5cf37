"""When Firestore or Pub/Sub applied a call but its answer was lost (and the client library's
retry then ran into the call's own result), the service must still tell the truth."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import firestore

from shared.core.errors import QueueUnavailable
from shared.core.settings import Settings
from shared.creations.claims import Claim, ClaimStore
from shared.creations.model import Job
from shared.intake.submission import QueueUnavailableRefunded, SubmissionService
from shared.money.ledger import Ledger
from shared.store.documents import Documents
from shared.wiring import submissions
from tests.support.fakes import RecordingPublisher
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
    accepted = submit(submissions(documents, stack, publisher), key)
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
    accepted = submit(submissions(documents, stack, RecordingPublisher()))
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
    accepted = submit(submissions(documents, stack, RecordingPublisher()))
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
        submit(submissions(documents, stack, RecordingPublisher(fail=True)), "order-2")
    assert caught.value.refunded
    retry = submit(submissions(documents, stack, RecordingPublisher()), "order-2")
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
    accepted = submit(submissions(documents, stack, LatePublisher()))
    assert accepted.creation.status == "processing"
    assert ledger.balance("u") == 99  # one image at the default price
    assert [e["kind"] for e in ledger.entries("u")].count("refund") == 0
