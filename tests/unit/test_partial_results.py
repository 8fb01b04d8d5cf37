"""Partial results on the in-memory store: a creation that asked for N images and got K
(0 < K < N) ends `draft` with the K and a refund of the N-K unit price, made once, in the
draft's own write; nothing else (redeliveries, the refund function, the sweeper, a delete)
refunds it again. K = 0 still fails, refunded in full by the refund path."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from shared.core.settings import Settings
from shared.creations.claims import ClaimStore
from shared.creations.model import Creation, Job
from shared.intake.actions import CreationActions
from shared.media.providers.base import EmptyResult, GenerationContext, SafetyBlocked
from shared.media.providers.offline import OfflineProvider
from shared.money.ledger import Ledger, partial_refund_amount
from shared.money.refunds import RefundHandler, Refunds
from shared.store import paths
from shared.store.documents import Batch
from shared.webhooks.payload import event_body
from shared.work.sweeper import Sweeper
from shared.work.worker import GenerationWorker
from tests.support.events import status_event
from tests.support.fakes import (
    Clock,
    RecordingAnnouncer,
    RecordingMediaStore,
    RecordingPublisher,
    ScriptedProvider,
)
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import IMAGE, new_creation

SETTINGS = Settings(
    store_max_attempts=5,
    max_generation_attempts=3,
    lease_seconds=60,
    sweep_refund_after_seconds=60,
    sweep_pending_after_seconds=120,
)
WITHHELD = "1 image withheld by the provider's safety filter."


def four_image_creation(store: MemoryDocuments, ledger: Ledger, user_id: str = "u") -> str:
    """A `pending` request for 4 images at 2 tokens each, debited 8 as submit would."""
    creation_id = new_creation(
        store, user_id, request=IMAGE.model_copy(update={"count": 4}), cost=8
    )
    (account,) = store.read(paths.user(user_id))
    batch = Batch()
    ledger.stage_debit(batch, account, cost=8, creation_id=creation_id)
    store.commit(batch)
    return creation_id


def worker(
    store: MemoryDocuments,
    clock: Clock,
    provider: ScriptedProvider | OfflineProvider,
    announcer: RecordingAnnouncer | None = None,
) -> GenerationWorker:
    return GenerationWorker(
        claims=ClaimStore(store, SETTINGS, clock=clock),
        provider=provider,
        uploader=RecordingMediaStore(),
        settings=SETTINGS,
        announcer=announcer or RecordingAnnouncer(),
    )


def handle(w: GenerationWorker, store: MemoryDocuments, creation_id: str) -> str:
    (found,) = store.read(paths.creation(creation_id))
    return w.handle(Job.of(found), event_id="e").kind


def refunds_of(ledger: Ledger, user_id: str) -> list[tuple[str, int]]:
    return sorted((e["id"], e["amount"]) for e in ledger.entries(user_id) if e["kind"] == "refund")


def assert_balanced(ledger: Ledger, user_id: str) -> None:
    assert ledger.balance(user_id) == sum(e["amount"] for e in ledger.entries(user_id))


@pytest.fixture
def store(clock: Clock) -> MemoryDocuments:
    # Overrides the tier's store: the sweeper compares server times with the clock's now.
    return MemoryDocuments(clock)


@pytest.fixture
def partial_draft(store: MemoryDocuments, ledger: Ledger, clock: Clock) -> str:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)
    provider = ScriptedProvider(makes=3, short=WITHHELD)
    assert handle(worker(store, clock, provider), store, creation_id) == "draft"
    return creation_id


def test_the_refund_is_the_unit_price_of_each_missing_item() -> None:
    assert partial_refund_amount(8, 4, 3) == 2
    assert partial_refund_amount(4, 4, 1) == 3
    assert partial_refund_amount(7, 4, 3) == 1  # a cost that does not divide: rounded down
    for made in (0, 4, 5):
        with pytest.raises(ValueError, match="not a partial result"):
            partial_refund_amount(4, 4, made)


def test_three_of_four_images_make_a_draft_refunded_for_the_fourth_once(
    store: MemoryDocuments, ledger: Ledger, partial_draft: str
) -> None:
    done = store.creation(partial_draft)
    assert (done["status"], done["progress"], done["error"]) == ("draft", 100, None)
    assert len(done["media"]) == 3
    assert done["partial"] == {"asked": 4, "made": 3, "reason": WITHHELD, "refund": 2}
    assert done["refunded"] is False  # a draft is never refunded in full
    assert refunds_of(ledger, "u") == [(f"refund:{partial_draft}:partial", 2)]
    assert ledger.balance("u") == 10 - 8 + 2
    assert_balanced(ledger, "u")
    [entry] = [e for e in ledger.entries("u") if e["kind"] == "refund"]
    assert (entry["creation_id"], entry["balance_after"]) == (partial_draft, 4)
    # And the API shows it.
    (stored,) = store.read(paths.creation(partial_draft))
    assert Creation.of(stored).to_api()["partial"] == done["partial"]


def test_the_partial_refund_and_the_draft_are_one_write(
    store: MemoryDocuments, ledger: Ledger, clock: Clock
) -> None:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)
    written: list[list[str]] = []

    def during(_context: GenerationContext) -> None:
        store.before_commit(lambda batch: written.append([w.path for w in batch.writes]))

    provider = ScriptedProvider(makes=3, short=WITHHELD, during=during)
    assert handle(worker(store, clock, provider), store, creation_id) == "draft"
    assert sorted(written[0]) == sorted(
        [
            paths.user("u"),
            paths.partial_refund_entry("u", creation_id),
            paths.creation(creation_id),
        ]
    )


def test_a_draft_write_whose_answer_was_lost_is_not_refunded_twice(
    store: MemoryDocuments, ledger: Ledger, clock: Clock
) -> None:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)
    provider = ScriptedProvider(
        makes=3,
        short=WITHHELD,
        during=lambda _context: store.lose_next_commit_answer(resent=True),
    )
    assert handle(worker(store, clock, provider), store, creation_id) == "draft"
    assert refunds_of(ledger, "u") == [(f"refund:{creation_id}:partial", 2)]
    assert ledger.balance("u") == 4
    assert_balanced(ledger, "u")


def test_a_balance_changed_meanwhile_is_read_again_not_overwritten(
    store: MemoryDocuments, ledger: Ledger, clock: Clock
) -> None:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)

    def during(_context: GenerationContext) -> None:
        # Another writer's grant lands just before the draft's commit: a lost race.
        store.before_commit(lambda _batch: ledger.grant("u", 5, grant_id="meanwhile"))

    provider = ScriptedProvider(makes=3, short=WITHHELD, during=during)
    assert handle(worker(store, clock, provider), store, creation_id) == "draft"
    assert ledger.balance("u") == 10 - 8 + 5 + 2
    assert_balanced(ledger, "u")


def test_redelivered_jobs_and_status_events_refund_nothing_more(
    store: MemoryDocuments,
    ledger: Ledger,
    refunds: Refunds,
    clock: Clock,
    partial_draft: str,
) -> None:
    again = ScriptedProvider(makes=3, short=WITHHELD)
    assert handle(worker(store, clock, again), store, partial_draft) == "skipped"
    assert again.calls == []
    handler = RefundHandler(refunds, media=RecordingMediaStore())
    event = status_event(partial_draft, store.creation(partial_draft))
    for _ in range(2):
        assert handler.on_status_event(event, event_id="e") == "nothing_to_do"
    assert refunds.refund(partial_draft).result == "not_refundable"
    assert refunds_of(ledger, "u") == [(f"refund:{partial_draft}:partial", 2)]
    assert ledger.balance("u") == 4
    assert_balanced(ledger, "u")


class PlainLinks:
    def api_view(self, creation: Creation) -> dict[str, Any]:
        return creation.to_api()


def test_the_webhook_event_carries_the_partial_as_the_api_shows_it(
    store: MemoryDocuments, partial_draft: str
) -> None:
    (stored,) = store.read(paths.creation(partial_draft))
    body = json.loads(
        event_body(stored, "completed", media_links=PlainLinks(), now=dt.datetime.now(dt.UTC))
    )
    assert body["type"] == "creation.completed"
    assert body["data"]["partial"] == {"asked": 4, "made": 3, "reason": WITHHELD, "refund": 2}
    assert len(body["data"]["media"]) == 3


def test_the_sweeper_leaves_a_partial_draft_alone(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds, clock: Clock, partial_draft: str
) -> None:
    before = store.creation(partial_draft)
    clock.advance(3600)
    report = Sweeper(
        store,
        SETTINGS,
        claims=ClaimStore(store, SETTINGS, clock=clock),
        refunds=refunds,
        publisher=RecordingPublisher(),
        announcer=RecordingAnnouncer(),
        clock=clock,
    ).sweep()
    assert (report.requeued, report.failed, report.refunded) == ([], [], [])
    assert store.creation(partial_draft) == before
    assert ledger.balance("u") == 4


def test_deleting_a_partial_draft_refunds_nothing_more(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds, partial_draft: str
) -> None:
    CreationActions(
        store,
        SETTINGS,
        refunds=refunds,
        media=RecordingMediaStore(),
        announcer=RecordingAnnouncer(),
    ).delete("u", partial_draft)
    assert store.data(paths.creation(partial_draft)) is None
    assert refunds_of(ledger, "u") == [(f"refund:{partial_draft}:partial", 2)]
    assert ledger.balance("u") == 4
    assert_balanced(ledger, "u")


@pytest.mark.parametrize("error", [SafetyBlocked("all withheld"), EmptyResult("no images")])
def test_no_image_at_all_fails_and_is_refunded_in_full(
    store: MemoryDocuments, ledger: Ledger, refunds: Refunds, clock: Clock, error: Exception
) -> None:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)
    assert handle(
        worker(store, clock, ScriptedProvider(fail_with=[error])), store, creation_id
    ) == ("failed")
    failed = store.creation(creation_id)
    assert "partial" not in failed
    handler = RefundHandler(refunds)
    for _ in range(2):
        handler.on_status_event(status_event(creation_id, failed), event_id="e")
    assert refunds_of(ledger, "u") == [(f"refund:{creation_id}", 8)]
    assert ledger.balance("u") == 10
    assert_balanced(ledger, "u")


def test_an_empty_answer_is_a_failure_even_when_it_says_why(
    store: MemoryDocuments, ledger: Ledger, clock: Clock
) -> None:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)
    provider = ScriptedProvider(makes=0, short=WITHHELD)
    assert handle(worker(store, clock, provider), store, creation_id) == "failed"
    assert store.creation(creation_id)["error"]["code"] == "empty_result"
    assert refunds_of(ledger, "u") == []  # the refund function's, on the status event


def test_a_short_answer_without_a_reason_says_what_is_missing(
    store: MemoryDocuments, ledger: Ledger, clock: Clock
) -> None:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)
    assert handle(worker(store, clock, ScriptedProvider(makes=2)), store, creation_id) == "draft"
    assert store.creation(creation_id)["partial"] == {
        "asked": 4,
        "made": 2,
        "reason": "The model returned 2 of 4 images; 2 were not made.",
        "refund": 4,
    }
    assert ledger.balance("u") == 6


def test_a_full_answer_is_not_partial(store: MemoryDocuments, ledger: Ledger, clock: Clock) -> None:
    ledger.grant("u", 10)
    creation_id = four_image_creation(store, ledger)
    assert handle(worker(store, clock, ScriptedProvider(makes=4)), store, creation_id) == "draft"
    assert "partial" not in store.creation(creation_id)
    (stored,) = store.read(paths.creation(creation_id))
    assert Creation.of(stored).to_api()["partial"] is None
    assert refunds_of(ledger, "u") == []
    assert ledger.balance("u") == 2


def test_the_offline_providers_withhold_marker_makes_a_partial_draft(
    store: MemoryDocuments, ledger: Ledger, clock: Clock, tmp_path: Path
) -> None:
    ledger.grant("u", 10)
    request = IMAGE.model_copy(update={"count": 4, "prompt": "a fox [withhold:1]"})
    creation_id = new_creation(store, "u", request=request, cost=4)
    (account,) = store.read(paths.user("u"))
    batch = Batch()
    ledger.stage_debit(batch, account, cost=4, creation_id=creation_id)
    store.commit(batch)
    offline = OfflineProvider(
        Settings(offline_latency_seconds=0, offline_image_long_side_px=64),
        sleep=lambda _seconds: None,
    )
    assert handle(worker(store, clock, offline), store, creation_id) == "draft"
    done = store.creation(creation_id)
    assert len(done["media"]) == 3
    assert done["partial"] == {
        "asked": 4,
        "made": 3,
        "reason": "1 image withheld by the offline provider's safety filter ([withhold:1]).",
        "refund": 1,
    }
    assert ledger.balance("u") == 10 - 4 + 1
    assert_balanced(ledger, "u")
