"""On the Firestore emulator: a claim's writes land on the snapshot its own commit answered,
with no read. This holds only if a commit's answer carries the stored update time exactly (to
the nanosecond): otherwise every such write would lose its precondition and fall back to a read,
which the unit tests on the in-memory store cannot show."""

from __future__ import annotations

from shared.core.settings import Settings
from shared.creations.claims import Claim, ClaimStore
from shared.money.ledger import Ledger
from shared.store.documents import Documents
from shared.wiring import submissions
from tests.support.counting_store import CountingDocuments, Tally
from tests.support.fakes import RecordingAnnouncer, RecordingPublisher
from tests.support.seeds import IMAGE


def test_a_claims_writes_need_no_read_on_firestore(
    documents: Documents, stack: Settings, ledger: Ledger
) -> None:
    ledger.grant("u", 100)
    counted = CountingDocuments(documents)
    publisher = RecordingPublisher()
    submissions(counted, stack, publisher, RecordingAnnouncer()).submit(
        user_id="u", request=IMAGE, idempotency_key=None, fingerprint="f"
    )
    # The user document, then the active count (one query, billed one read when none is active).
    assert counted.tally == Tally(reads=2, writes=3, commits=1), counted.calls
    [job] = publisher.jobs
    claims = ClaimStore(counted, stack)
    claim = claims.claim(job.creation_id, job=job)
    assert isinstance(claim, Claim)
    before = counted.tally
    assert claims.holds(claim)
    assert claims.report_progress(claim, 40)
    assert claims.save_checkpoint(claim, {"operation": "operations/1"})
    assert claims.complete(claim, [{"uri": "gs://media/x.png"}])
    assert counted.tally - before == Tally(reads=0, writes=3, commits=3), counted.calls
    (done,) = documents.read(f"creations/{job.creation_id}")
    assert (done.get("status"), done.get("progress"), done.get("checkpoint")) == (
        "draft",
        100,
        {"operation": "operations/1"},
    )
