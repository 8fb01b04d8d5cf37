"""Builds each function's collaborators from settings (the only place that does).

Entry points call these once per process; tests build the same objects with their own parts.
"""

from __future__ import annotations

from shared.core.clients import firestore_client, publisher_client, storage_client
from shared.core.settings import Settings
from shared.creations.claims import ClaimStore
from shared.media.providers.selection import build_provider
from shared.media.storage import GcsMediaStore
from shared.money.ledger import Ledger
from shared.money.refunds import RefundHandler
from shared.work.dead_letters import DeadLetterHandler
from shared.work.jobs import PubSubJobPublisher
from shared.work.sweeper import Sweeper
from shared.work.worker import GenerationWorker


def build_generation_worker(settings: Settings) -> GenerationWorker:
    return GenerationWorker(
        claims=ClaimStore(firestore_client(settings), settings),
        provider=build_provider(settings),
        uploader=GcsMediaStore(storage_client(settings), settings.media_bucket),
        settings=settings,
    )


def build_stitch_worker(settings: Settings) -> GenerationWorker:
    # Imported here: only the stitch function ships the reel engine's dependencies in use.
    from shared.media.reels.maker import ReelMaker

    storage = storage_client(settings)
    return GenerationWorker(
        claims=ClaimStore(firestore_client(settings), settings),
        provider=ReelMaker(storage),
        uploader=GcsMediaStore(storage, settings.media_bucket),
        settings=settings,
    )


def build_refund_handler(settings: Settings) -> RefundHandler:
    return RefundHandler(Ledger(firestore_client(settings), settings))


def build_dead_letter_handler(settings: Settings) -> DeadLetterHandler:
    return DeadLetterHandler(ClaimStore(firestore_client(settings), settings))


def build_sweeper(settings: Settings) -> Sweeper:
    db = firestore_client(settings)
    return Sweeper(
        db,
        settings,
        claims=ClaimStore(db, settings),
        ledger=Ledger(db, settings),
        publisher=PubSubJobPublisher(publisher_client(settings), settings),
    )
