"""generate, refund, dead_letter and sweep, driven through functions-framework with the events
the platform sends (Pub/Sub push bodies, binary Firestore CloudEvents), on the emulators."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.storage import Bucket
from PIL import Image

from shared.core.clients import storage_client
from shared.core.settings import Settings
from shared.creations.claims import Claim, ClaimStore
from shared.creations.model import Job
from shared.creations.requests import ImageRequest
from shared.media.probe import probe
from shared.media.providers.base import GeneratedMedia
from shared.media.storage import GcsMediaStore, media_prefix, split_gs_uri, staging_prefix
from shared.store.documents import Documents
from shared.wiring import submissions
from shared.work.worker import GenerationWorker
from tests.support.chain import Chain, job_of
from tests.support.fakes import Clock, RecordingAnnouncer, ScriptedProvider
from tests.support.media import decode_check, download
from tests.support.seeds import update


@pytest.fixture
def chain(load_chain: Callable[..., Chain]) -> Chain:
    # Small, fast media so the tests exercise the real code quickly.
    return load_chain(
        "generate",
        "refund",
        "dead_letter",
        OFFLINE_IMAGE_LONG_SIDE_PX="256",
        OFFLINE_VIDEO_LONG_SIDE_PX="320",
    )


def run_sweep(load_chain: Callable[..., Chain], **env: str) -> int:
    """One scheduler tick: the sweep function, loaded now (so with the settings of now)."""
    return load_chain("sweep", **env).deliver("sweep", {})


# --- generate -------------------------------------------------------------------------------


def test_image_reaches_draft_with_media_that_decodes(
    chain: Chain, bucket: Bucket, tmp_path: Path
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit(
        "alice", {"type": "image", "prompt": "a red fox", "count": 2, "aspect_ratio": "16:9"}
    )
    assert chain.work(created) == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "draft"
    assert creation["progress"] == 100
    assert creation["completed_at"] is not None
    assert len(creation["media"]) == 2
    for item in creation["media"]:
        assert item["content_type"] == "image/png"
        with Image.open(download(bucket, item["uri"], tmp_path)) as image:
            image.load()
            assert image.size == (item["width"], item["height"])
            assert item["width"] > item["height"]  # 16:9
        assert item["bytes"] > 0
    assert chain.settle(created["id"]) == 200
    assert chain.kinds("alice") == ["debit", "grant"]  # a draft is never refunded


def test_video_reaches_draft_with_an_mp4_that_decodes(
    chain: Chain, bucket: Bucket, tmp_path: Path
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "video", "prompt": "waves", "duration_seconds": 4})
    assert chain.work(created) == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "draft", creation.get("error")
    [item] = creation["media"]
    assert item["content_type"] == "video/mp4"
    path = download(bucket, item["uri"], tmp_path)
    found = probe(path)
    assert found.video_codec == "h264"
    assert abs(found.duration_seconds - 4) < 0.2
    assert (found.width, found.height) == (item["width"], item["height"])
    assert decode_check(path) > 0
    assert abs(item["duration_seconds"] - 4) < 0.2


def test_permanent_failure_ends_failed_and_refunded_once(chain: Chain) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "storm [fail:permanent]"})
    assert chain.work(created) == 200  # acked
    creation = chain.doc(created["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "provider_error"
    assert creation["error"]["message"]
    for _ in range(3):  # the trigger may fire more than once
        assert chain.settle(created["id"]) == 200
    assert chain.doc(created["id"])["refunded"] is True
    assert chain.ledger.balance("alice") == 10
    assert chain.kinds("alice") == ["debit", "grant", "refund"]


def test_withheld_images_make_a_partial_draft_refunded_once_for_them(
    chain: Chain, bucket: Bucket
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "koi [withhold:1]", "count": 4})
    assert created["cost"] == 4
    for _ in range(2):  # a redelivery finds the draft made: nothing more is made or refunded
        assert chain.work(created, message_id="m1") == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "draft"
    assert len(creation["media"]) == 3
    partial = {
        "asked": 4,
        "made": 3,
        "reason": "1 image withheld by the offline provider's safety filter ([withhold:1]).",
        "refund": 1,
    }
    assert creation["partial"] == partial
    for _ in range(2):  # the trigger may fire more than once
        assert chain.settle(created["id"]) == 200
    assert chain.doc(created["id"])["refunded"] is False
    refunds = [e for e in chain.ledger.entries("alice") if e["kind"] == "refund"]
    assert [(e["id"], e["amount"], e["creation_id"]) for e in refunds] == [
        (f"refund:{created['id']}:partial", 1, created["id"])
    ]
    assert chain.ledger.balance("alice") == 10 - 4 + 1
    assert names_under(bucket, media_prefix("alice", created["id"])) == sorted(
        split_gs_uri(item["uri"])[1] for item in creation["media"]
    )
    shown = chain.api.get(f"/v1/creations/{created['id']}", headers=chain.auth("alice"))
    assert shown.status_code == 200
    assert (shown.json or {})["partial"] == partial  # the answer is checked against the spec


def test_safety_block_has_its_own_code(chain: Chain) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "x [fail:safety]"})
    assert chain.work(created) == 200
    assert chain.doc(created["id"])["error"]["code"] == "safety_blocked"
    chain.settle(created["id"])
    assert chain.ledger.balance("alice") == 10


def test_transient_failure_is_redelivered_then_drafts_with_one_debit(chain: Chain) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "fog [fail:transient:1]"})
    assert chain.work(created, message_id="m1") == 500
    assert chain.doc(created["id"])["status"] == "processing"
    assert chain.work(created, message_id="m1") == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "draft"
    assert creation["attempts"] == 2
    chain.settle(created["id"])
    assert chain.kinds("alice") == ["debit", "grant"]
    assert chain.ledger.balance("alice") == 9


def test_same_message_three_times_makes_one_media_set_and_one_debit(
    chain: Chain, bucket: Bucket
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite", "count": 2})
    for _ in range(3):
        assert chain.work(created, message_id="same") == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "draft"
    assert creation["attempts"] == 1
    objects = list(bucket.client.list_blobs(bucket.name, prefix=f"media/alice/{created['id']}/"))
    assert len(objects) == 2
    assert chain.kinds("alice") == ["debit", "grant"]


def names_under(bucket: Bucket, prefix: str) -> list[str]:
    return sorted(blob.name for blob in bucket.client.list_blobs(bucket.name, prefix=prefix))


def test_a_draft_settles_to_exactly_its_media_set(chain: Chain, bucket: Bucket) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite", "count": 2})
    prefix = media_prefix("alice", created["id"])
    # What an earlier attempt left when it was killed after uploading, under its own names.
    bucket.blob(f"{prefix}1-crashed00000/0.png").upload_from_string(b"stale", "image/png")
    bucket.blob(f"{staging_prefix('alice', created['id'])}1-crashed00000/x.mp4").upload_from_string(
        b"veo scratch"
    )
    assert chain.work(created) == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "draft"
    assert chain.settle(created["id"]) == 200  # the refund trigger settles the draft's media
    published = sorted(split_gs_uri(item["uri"])[1] for item in creation["media"])
    assert len(published) == 2
    assert names_under(bucket, prefix) == published
    assert names_under(bucket, staging_prefix("alice", created["id"])) == []
    for item in creation["media"]:  # the metadata describes the object it names
        blob = bucket.get_blob(split_gs_uri(item["uri"])[1])
        assert blob is not None and blob.size == item["bytes"]
    assert chain.kinds("alice") == ["debit", "grant"]


def test_a_failed_creation_keeps_no_objects_and_is_refunded_once(
    chain: Chain, bucket: Bucket
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "storm [fail:permanent]"})
    prefix = media_prefix("alice", created["id"])
    bucket.blob(f"{prefix}1-crashed00000/0.png").upload_from_string(b"stale", "image/png")
    assert chain.work(created) == 200
    assert chain.doc(created["id"])["status"] == "failed"
    for _ in range(2):  # the trigger may fire more than once; then the refund's own update
        assert chain.settle(created["id"]) == 200
    assert names_under(bucket, prefix) == []
    assert chain.ledger.balance("alice") == 10
    assert chain.kinds("alice") == ["debit", "grant", "refund"]


def test_a_dead_lettered_creation_is_emptied_by_the_refund_function(
    chain: Chain, documents: Documents, bucket: Bucket
) -> None:
    # A worker uploaded, then died before its draft write; its lease ran out and the job's
    # deliveries with it. No worker ends this creation: the refund trigger settles it.
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    claim = ClaimStore(documents, chain.settings).claim(created["id"])
    assert isinstance(claim, Claim)
    prefix = media_prefix("alice", created["id"])
    bucket.blob(f"{prefix}1-{claim.owner[:12]}/0.png").upload_from_string(b"x", "image/png")
    update(documents, f"creations/{created['id']}", {"lease_expires_at": dt.datetime.now(dt.UTC)})
    attributes = {"CloudPubSubDeadLetterSourceDeliveryCount": "5"}
    assert chain.work(created, "dead_letter", attributes=attributes) == 200
    assert chain.doc(created["id"])["status"] == "failed"
    assert chain.settle(created["id"]) == 200
    assert names_under(bucket, prefix) == []
    assert chain.kinds("alice") == ["debit", "grant", "refund"]


class ReplacedWhileUploading(GcsMediaStore):
    """The real store, with a rival worker claiming the creation as the upload finishes (the
    lease ran out meanwhile: this worker is presumed dead)."""

    def __init__(self, settings: Settings, rival: Callable[[], None]) -> None:
        super().__init__(
            storage_client(settings),
            settings.media_bucket,
            timeout_seconds=settings.media_timeout_seconds,
        )
        self.rival = rival
        self.written: list[str] = []

    def upload(
        self, user_id: str, creation_id: str, items: list[GeneratedMedia], *, scope: str
    ) -> list[dict[str, Any]]:
        media = super().upload(user_id, creation_id, items, scope=scope)
        self.written = [split_gs_uri(item["uri"])[1] for item in media]
        self.rival()
        return media


def test_a_worker_that_lost_its_claim_while_uploading_leaves_no_objects(
    chain: Chain, documents: Documents, bucket: Bucket
) -> None:
    # The real Firestore and Cloud Storage adapters: the objects were written, the claim-guarded
    # draft write finds the creation taken over, and the worker removes what it wrote.
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    settings = chain.settings
    later = Clock()
    later.advance(settings.lease_seconds + 1)

    def rival() -> None:
        assert names_under(bucket, media_prefix("alice", created["id"])) != []
        assert isinstance(ClaimStore(documents, settings, clock=later).claim(created["id"]), Claim)

    store = ReplacedWhileUploading(settings, rival)
    worker = GenerationWorker(
        claims=ClaimStore(documents, settings),
        provider=ScriptedProvider(makes=2),
        uploader=store,
        settings=settings,
        announcer=RecordingAnnouncer(),
    )
    assert worker.handle(Job.model_validate(job_of(created)), event_id="e").kind == "lost_claim"
    assert len(store.written) == 2
    assert names_under(bucket, media_prefix("alice", created["id"])) == []
    held = chain.doc(created["id"])
    assert (held["status"], held["attempts"], held["media"]) == ("processing", 2, [])


def test_job_for_a_creation_under_a_live_lease_is_acked_without_work(
    chain: Chain, documents: Documents
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    claim = ClaimStore(documents, chain.settings).claim(created["id"])  # another worker has it
    assert isinstance(claim, Claim)
    assert chain.work(created) == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "processing"
    assert creation["attempts"] == 1


def test_a_canceled_creation_is_not_generated(chain: Chain) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    chain.api.post(f"/v1/creations/{created['id']}:cancel", headers=chain.auth("alice"))
    assert chain.work(created) == 200
    assert chain.doc(created["id"])["status"] == "canceled"
    chain.settle(created["id"])
    assert chain.ledger.balance("alice") == 10


def test_a_malformed_message_is_acked_and_changes_nothing(chain: Chain) -> None:
    assert chain.deliver("generate", {"not": "a job"}) == 200


# --- dead letters ---------------------------------------------------------------------------


def test_dead_lettered_job_fails_the_creation_and_the_refund_follows(chain: Chain) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    attributes = {"CloudPubSubDeadLetterSourceDeliveryCount": "5"}
    for _ in range(2):  # a duplicate dead letter changes nothing more
        assert chain.work(created, "dead_letter", attributes=attributes) == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "delivery_exhausted"
    chain.settle(created["id"])
    assert chain.ledger.balance("alice") == 10
    assert chain.kinds("alice") == ["debit", "grant", "refund"]


def test_a_dead_letter_spares_a_creation_a_live_worker_holds(
    chain: Chain, documents: Documents
) -> None:
    # A duplicate message dead-letters while another delivery's worker generates the creation:
    # that worker finishes it, and the user pays for a result they get.
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    claim = ClaimStore(documents, chain.settings).claim(created["id"])
    assert isinstance(claim, Claim)
    attributes = {"CloudPubSubDeadLetterSourceDeliveryCount": "5"}
    assert chain.work(created, "dead_letter", attributes=attributes) == 200
    assert chain.doc(created["id"])["status"] == "processing"
    assert ClaimStore(documents, chain.settings).complete(claim, [])
    chain.settle(created["id"])
    assert chain.kinds("alice") == ["debit", "grant"]


def test_dead_letter_for_a_draft_leaves_it_alone(chain: Chain) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    chain.work(created)
    assert chain.work(created, "dead_letter") == 200
    assert chain.doc(created["id"])["status"] == "draft"
    chain.settle(created["id"])
    assert chain.ledger.balance("alice") == 9


# --- sweeper --------------------------------------------------------------------------------


def test_a_creation_whose_publish_was_lost_is_swept_and_completed(
    chain: Chain,
    load_chain: Callable[..., Chain],
    documents: Documents,
    stack: Settings,
    topic_messages: Callable[..., list[Any]],
) -> None:
    class LostPublisher:
        def publish(self, job: object, *, topic: str) -> str:
            return "lost"  # the process "died" after the commit: nothing was published

    chain.ledger.grant("alice", 10)
    accepted = submissions(documents, stack, LostPublisher(), RecordingAnnouncer()).submit(
        user_id="alice",
        request=ImageRequest(
            prompt="lost", model=stack.default_image_model, aspect_ratio="1:1", count=1
        ),
        idempotency_key=None,
        fingerprint="f",
    )
    assert run_sweep(load_chain, SWEEP_PENDING_AFTER_SECONDS="0.01") == 200
    [message] = topic_messages(stack.generate_topic)
    job = json.loads(message.message.data)
    assert job["creation_id"] == accepted.creation.id
    assert chain.deliver("generate", job) == 200
    assert chain.doc(accepted.creation.id)["status"] == "draft"
    assert chain.doc(accepted.creation.id)["requeues"] == 1


def test_sweeper_refunds_a_failure_whose_trigger_was_lost(
    chain: Chain, load_chain: Callable[..., Chain]
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "x [fail:permanent]"})
    chain.work(created)
    assert chain.ledger.balance("alice") == 9  # failed, but the refund trigger never came
    assert run_sweep(load_chain, SWEEP_REFUND_AFTER_SECONDS="0.01") == 200
    assert chain.ledger.balance("alice") == 10
    assert chain.doc(created["id"])["refunded"] is True


def test_an_expired_lease_is_requeued_and_then_exhausted_attempts_fail(
    chain: Chain,
    load_chain: Callable[..., Chain],
    documents: Documents,
    topic_messages: Callable[..., list[Any]],
) -> None:
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    topic_messages(chain.settings.generate_topic)  # drain submit's own message
    # A worker claimed it and died: its lease expired a minute ago, attempts are used up.
    claim = ClaimStore(documents, chain.settings).claim(created["id"])
    assert isinstance(claim, Claim)
    update(
        documents,
        f"creations/{created['id']}",
        {
            "attempts": chain.settings.max_generation_attempts,
            "lease_expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1),
        },
    )
    assert run_sweep(load_chain) == 200
    [message] = topic_messages(chain.settings.generate_topic)
    assert chain.deliver("generate", json.loads(message.message.data)) == 200
    creation = chain.doc(created["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "too_many_attempts"
    chain.settle(created["id"])
    assert chain.ledger.balance("alice") == 10


def test_a_delete_that_stopped_after_its_mark_is_finished_by_the_refund_function(
    chain: Chain, bucket: Bucket, db: firestore.Client
) -> None:
    """The DELETE marked the draft and died; the mark's update event reaches `refund`, which
    (wired as production wires it) removes the media and the document."""
    chain.ledger.grant("alice", 10)
    created = chain.submit("alice", {"type": "image", "prompt": "a kite"})
    assert chain.work(created) == 200
    prefix = media_prefix("alice", created["id"])
    assert names_under(bucket, prefix) != []
    db.collection("creations").document(created["id"]).update({"deleting": True})
    gone = chain.api.get(f"/v1/creations/{created['id']}", headers=chain.auth("alice"))
    assert gone.status_code == 404  # for the API it is gone from the mark on
    assert chain.settle(created["id"]) == 200
    assert not db.collection("creations").document(created["id"]).get().exists
    assert names_under(bucket, prefix) == []
    assert chain.kinds("alice") == ["debit", "grant"]  # a draft's tokens stay spent
