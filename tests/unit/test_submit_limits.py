"""Per-user limits on the in-memory store: the active count, the submit rate bucket, their
order, replays, and that a refused submit writes nothing. (A concurrent burst through the
HTTP API on the emulators: tests/integration/test_submit_limits.py.)"""

from __future__ import annotations

import datetime as dt

import pytest

from shared.core.errors import InsufficientTokens, RateLimited, TooManyActive
from shared.core.settings import Settings
from shared.creations.lifecycle import FINAL_STATUSES, STATUSES
from shared.creations.requests import ReelRequest
from shared.intake.limits import ACTIVE_STATUSES, BUCKET_FIELD
from shared.intake.submission import Accepted, SubmissionService
from shared.money.ledger import Ledger
from shared.store import paths
from shared.store.documents import Query, Snapshot
from shared.wiring import submissions
from tests.support.fakes import SETTINGS, RecordingAnnouncer, RecordingPublisher
from tests.support.memory_store import MemoryDocuments
from tests.support.seeds import IMAGE, move

START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
# Three active at most; a bucket of 4 refilled at 6 a minute (one every 10 s).
LIMITS = SETTINGS.model_copy(
    update={
        "max_active_per_user": 3,
        "too_many_active_retry_after_seconds": 7,
        "submit_burst": 4,
        "submit_rate_per_minute": 6.0,
    }
)


class Now:
    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


def service(store: MemoryDocuments, now: Now, settings: Settings = LIMITS) -> SubmissionService:
    made = submissions(store, settings, RecordingPublisher(), RecordingAnnouncer())
    return SubmissionService(
        made.store,
        made.settings,
        ledger=made.ledger,
        refunds=made.refunds,
        publisher=made.publisher,
        announcer=made.announcer,
        clock=now,
    )


def submit(svc: SubmissionService, key: str | None = None, user: str = "u") -> Accepted:
    return svc.submit(user_id=user, request=IMAGE, idempotency_key=key, fingerprint="f")


def no_bucket_limit(**more: object) -> Settings:
    return LIMITS.model_copy(update={"submit_burst": 1000, **more})


def test_the_submit_past_the_active_limit_is_refused_and_writes_nothing(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 100)
    svc = service(store, Now(), no_bucket_limit())
    made = [submit(svc) for _ in range(3)]
    move(store, made[0].creation.id, "processing")  # processing counts as active too
    before, balance = store.paths(), ledger.balance("u")
    (user_before,) = store.read(paths.user("u"))
    with pytest.raises(TooManyActive) as refused:
        submit(svc)
    assert refused.value.code == "too_many_active"
    assert refused.value.http_status == 429
    assert refused.value.answer_headers() == {"Retry-After": "7"}
    assert store.paths() == before
    assert ledger.balance("u") == balance == 91
    (user_after,) = store.read(paths.user("u"))
    assert user_after == user_before  # not even the bucket moved
    assert [e["kind"] for e in ledger.entries("u")].count("debit") == 3


@pytest.mark.parametrize("final", ["draft", "failed"])
def test_a_finished_creation_frees_a_slot(
    store: MemoryDocuments, ledger: Ledger, final: str
) -> None:
    ledger.grant("u", 100)
    svc = service(store, Now(), no_bucket_limit())
    made = [submit(svc) for _ in range(3)]
    with pytest.raises(TooManyActive):
        submit(svc)
    move(store, made[1].creation.id, "processing")
    move(store, made[1].creation.id, final)  # type: ignore[arg-type]
    assert submit(svc).creation.status == "pending"
    with pytest.raises(TooManyActive):
        submit(svc)


def test_the_active_limit_is_per_user(store: MemoryDocuments, ledger: Ledger) -> None:
    for user in ("u", "v"):
        ledger.grant(user, 100)
    svc = service(store, Now(), no_bucket_limit())
    for _ in range(3):
        submit(svc, user="u")
    assert submit(svc, user="v").creation.user_id == "v"


def test_a_reel_counts_and_is_limited_like_any_creation(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 100)
    svc = service(store, Now(), no_bucket_limit())
    reel = ReelRequest(clips=["a", "b"], sources=["gs://m/a", "gs://m/b"], duration_seconds=8.0)

    def submit_reel() -> Accepted:
        return svc.submit(user_id="u", request=reel, idempotency_key=None, fingerprint="r")

    submit_reel()
    submit(svc)
    submit(svc)
    with pytest.raises(TooManyActive):
        submit_reel()


def test_the_bucket_allows_a_burst_then_refills_at_the_rate(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 100)
    now = Now()
    svc = service(store, now, LIMITS.model_copy(update={"max_active_per_user": 100}))
    for _ in range(4):
        submit(svc)
    before, balance = store.paths(), ledger.balance("u")
    with pytest.raises(RateLimited) as refused:
        submit(svc)
    assert refused.value.code == "rate_limited"
    assert refused.value.http_status == 429
    assert refused.value.answer_headers() == {"Retry-After": "10"}  # one token every 10 s
    assert store.paths() == before
    assert ledger.balance("u") == balance
    now.advance(4)
    with pytest.raises(RateLimited) as refused:
        submit(svc)
    assert refused.value.answer_headers() == {"Retry-After": "6"}  # 0.4 of a token is back
    now.advance(6)
    submit(svc)  # one token back after 10 s, and taken
    with pytest.raises(RateLimited):
        submit(svc)
    now.advance(3600)  # refilled to the burst, never past it
    for _ in range(4):
        submit(svc)
    with pytest.raises(RateLimited):
        submit(svc)


def test_the_bucket_is_kept_on_the_user_document_with_the_debit(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 100)
    now = Now()
    roomy = LIMITS.model_copy(update={"max_active_per_user": 100})
    commits = store.commits
    submit(service(store, now, roomy))
    assert store.commits == commits + 1  # the bucket rode on the debit's write
    (user,) = store.read(paths.user("u"))
    assert user.get(BUCKET_FIELD) == {"level": 3.0, "at": START}
    # Another instance (another service, the same store) sees the same bucket.
    other = service(store, now, roomy)
    for _ in range(3):
        submit(other)
    with pytest.raises(RateLimited):
        submit(service(store, now, roomy))


def test_a_clock_behind_the_last_submit_counts_no_refill(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 100)
    ahead, behind = Now(), Now()
    ahead.advance(60)
    roomy = LIMITS.model_copy(update={"max_active_per_user": 100})
    for _ in range(4):
        submit(service(store, ahead, roomy))
    with pytest.raises(RateLimited):
        submit(service(store, behind, roomy))  # a minute behind: no negative refill, no crash


def test_replays_are_never_limited(store: MemoryDocuments, ledger: Ledger) -> None:
    ledger.grant("u", 100)
    svc = service(store, Now(), LIMITS.model_copy(update={"submit_burst": 3}))
    first = submit(svc, key="k1")
    submit(svc)
    submit(svc)
    # Both limits are reached now: three active, and the bucket is empty.
    with pytest.raises((TooManyActive, RateLimited)):
        submit(svc)
    again = submit(svc, key="k1")
    assert again.replayed
    assert again.creation.id == first.creation.id
    assert svc.replay(user_id="u", idempotency_key="k1", fingerprint="f") == again


def test_the_rate_comes_first_then_the_balance_then_the_active_count(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    ledger.grant("u", 9)  # three images
    svc = service(store, Now(), LIMITS.model_copy(update={"submit_burst": 3}))
    for _ in range(3):
        submit(svc)
    # Empty bucket, empty balance, three active: the rate is what answers.
    with pytest.raises(RateLimited):
        submit(svc)
    later = Now()
    later.advance(60)  # the bucket has refilled
    roomy = service(store, later, no_bucket_limit())
    with pytest.raises(InsufficientTokens):
        submit(roomy)  # the balance before the count
    ledger.grant("u", 3)
    with pytest.raises(TooManyActive):
        submit(roomy)
    assert ledger.balance("u") == 3


def test_a_refused_submit_takes_no_token(store: MemoryDocuments, ledger: Ledger) -> None:
    ledger.grant("u", 3)
    svc = service(store, Now())
    submit(svc)
    for _ in range(5):  # refused: no money; the bucket stays at 3
        with pytest.raises(InsufficientTokens):
            submit(svc)
    (user,) = store.read(paths.user("u"))
    assert user.get(BUCKET_FIELD)["level"] == 3.0


def test_a_count_made_stale_by_a_rival_submit_is_made_again(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    """A rival's submit lands between this round's count and its commit: the commit loses on
    the user document, and the next round counts the rival's creation."""
    ledger.grant("u", 100)
    svc = service(store, Now(), no_bucket_limit())
    submit(svc)
    submit(svc)
    rival = service(store, Now(), no_bucket_limit())
    real_query = store.query
    armed = [True]
    raced: list[Accepted] = []

    def query_then_rival(query: Query) -> list[Snapshot]:
        found = real_query(query)
        if armed and query.collection == paths.CREATIONS:
            armed.clear()
            raced.append(submit(rival))  # the third active one, after this round counted two
        return found

    store.query = query_then_rival  # type: ignore[method-assign]
    with pytest.raises(TooManyActive):
        submit(svc)
    assert len(raced) == 1
    debits = [e for e in ledger.entries("u") if e["kind"] == "debit"]
    assert len(debits) == 3
    assert ledger.balance("u") == 100 - 3 * 3


def test_the_active_statuses_are_exactly_those_sorting_after_every_final_one() -> None:
    """What lets `active_query` count them with one range (`status > "failed"`)."""
    last_final = max(FINAL_STATUSES)
    after = {status for status in STATUSES if status > last_final}
    assert after == set(ACTIVE_STATUSES) == set(STATUSES) - FINAL_STATUSES


def test_a_resent_key_that_raced_its_own_first_send_is_a_replay_not_a_429(
    store: MemoryDocuments, ledger: Ledger
) -> None:
    # The client sends key k, times out and sends k again; the first send commits (taking the
    # last slot) between the resend's read of the key and its count.
    ledger.grant("u", 100)
    svc = service(store, Now(), no_bucket_limit())
    submit(svc)
    submit(svc)  # two active; the limit is three
    first = service(store, Now(), no_bucket_limit())
    real_count = store.count
    raced: list[Accepted] = []
    armed = [True]

    def count_after_the_rival(query: Query) -> int:
        if armed and query.collection == paths.CREATIONS:
            armed.clear()  # the rival's own count is a plain one
            raced.append(submit(first, key="k"))
        return real_count(query)

    store.count = count_after_the_rival  # type: ignore[method-assign]
    again = submit(svc, key="k")
    assert again.replayed and again.creation.id == raced[0].creation.id
    assert ledger.balance("u") == 100 - 3 * again.creation.cost  # three debits, not four


def test_a_clock_behind_never_rewinds_the_bucket(store: MemoryDocuments, ledger: Ledger) -> None:
    # Two instances 60 s apart: were the slow one to stamp its own time, the fast one would
    # count those 60 s of refill again after every pair of submits.
    settings = LIMITS.model_copy(
        update={"submit_burst": 2, "submit_rate_per_minute": 1.0, "max_active_per_user": 1000}
    )
    ledger.grant("u", 1000)
    slow, fast = Now(), Now()
    fast.advance(60)
    instances = (service(store, fast, settings), service(store, slow, settings))
    accepted = 0
    for _ in range(10):  # 10 s pass: a burst of 2 and no whole token of refill
        for instance in instances:
            try:
                submit(instance)
                accepted += 1
            except RateLimited:
                pass
        slow.advance(1)
        fast.advance(1)
    assert accepted == 2
