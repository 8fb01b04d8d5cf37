"""Builds each function's collaborators from its settings: the one place that does.

The entry points (`functions/<name>/main.py`) call these once per process
(`shared.core.runtime.per_process`); tests build the same objects from their own parts.
Google Cloud clients come from `shared.core.clients`; a provider's own SDK client (google-genai)
is built by `shared.media.providers.selection`, only when that provider is chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.cloud.pubsub_v1 import PublisherClient
from google.cloud.storage import Client as StorageClient

from shared.core.clients import firestore_client, publisher_client, storage_client
from shared.core.settings import Settings
from shared.creations.claims import ClaimStore
from shared.creations.reading import CreationReader
from shared.creations.status_events import SilentAnnouncer, StatusAnnouncer
from shared.intake.actions import CreationActions
from shared.intake.api.app import SubmitApi
from shared.intake.auth import FirebaseTokenVerifier
from shared.intake.submission import SubmissionService
from shared.media.providers.selection import build_provider
from shared.media.storage import GcsMediaStore
from shared.media.urls import SignedMediaUrls, signing_from
from shared.money.ledger import Ledger
from shared.money.refunds import RefundHandler, Refunds
from shared.store.documents import Documents
from shared.store.firestore import FirestoreDocuments
from shared.webhooks import Resolver, loopback_only_resolver, system_resolver
from shared.work.dead_letters import DeadLetterHandler
from shared.work.jobs import JobPublisher, PubSubJobPublisher
from shared.work.status_publisher import PubSubStatusAnnouncer
from shared.work.sweeper import Sweeper
from shared.work.worker import GenerationWorker

if TYPE_CHECKING:
    from shared.webhooks.delivery import WebhookDelivery

__all__ = [
    "announcer",
    "build_dead_letter_handler",
    "build_generation_worker",
    "build_refund_handler",
    "build_stitch_worker",
    "build_submit_api",
    "build_sweeper",
    "build_webhook_delivery",
    "documents",
    "media_links",
    "media_store",
    "refunds",
    "submissions",
]


def documents(settings: Settings) -> Documents:
    return FirestoreDocuments(firestore_client(settings), settings)


def refunds(store: Documents, settings: Settings) -> Refunds:
    return Refunds(store, settings, Ledger(store, settings))


def submissions(
    store: Documents,
    settings: Settings,
    publisher: JobPublisher,
    announcer: StatusAnnouncer,
) -> SubmissionService:
    ledger = Ledger(store, settings)
    return SubmissionService(
        store,
        settings,
        ledger=ledger,
        refunds=Refunds(store, settings, ledger),
        publisher=publisher,
        announcer=announcer,
    )


def announcer(settings: Settings, client: PublisherClient | None = None) -> StatusAnnouncer:
    """The creation status stream (STATUS_TOPIC)."""
    return PubSubStatusAnnouncer(client or publisher_client(settings), settings)


def media_store(settings: Settings, client: StorageClient | None = None) -> GcsMediaStore:
    """The media bucket, every call bounded by `MEDIA_TIMEOUT_SECONDS`."""
    return GcsMediaStore(
        client or storage_client(settings),
        settings.media_bucket,
        timeout_seconds=settings.media_timeout_seconds,
    )


def media_links(settings: Settings, client: StorageClient | None = None) -> SignedMediaUrls:
    """Signed download URLs for the media bucket's objects (`MEDIA_URL_TTL_SECONDS`)."""
    return SignedMediaUrls(
        client or storage_client(settings),
        settings.media_bucket,
        settings.media_url_ttl_seconds,
        signing_from(settings),
    )


def build_submit_api(settings: Settings) -> SubmitApi:
    """The HTTP API on the real Firestore, Pub/Sub and Cloud Storage clients."""
    store = documents(settings)
    pubsub = publisher_client(settings)
    status = announcer(settings, pubsub)
    service = submissions(store, settings, PubSubJobPublisher(pubsub, settings), status)
    return SubmitApi(
        settings=settings,
        verifier=FirebaseTokenVerifier(settings),
        ledger=service.ledger,
        creations=CreationReader(store),
        submissions=service,
        actions=CreationActions(
            store,
            settings,
            refunds=service.refunds,
            media=media_store(settings),
            announcer=status,
        ),
        media_links=media_links(settings),
        resolver=webhook_resolver(settings),
    )


def webhook_resolver(settings: Settings) -> Resolver:
    """How webhook hosts are resolved: by DNS in production; against the emulators (the local
    stack, every test) loopback names only, so nothing there ever queries a DNS server."""
    emulated = settings.firestore_emulator_host or settings.pubsub_emulator_host
    return loopback_only_resolver if emulated else system_resolver


def build_generation_worker(settings: Settings) -> GenerationWorker:
    return GenerationWorker(
        claims=ClaimStore(documents(settings), settings),
        provider=build_provider(settings),
        uploader=media_store(settings),
        settings=settings,
        announcer=announcer(settings),
        makes=frozenset({"image", "video"}),
    )


def build_stitch_worker(settings: Settings) -> GenerationWorker:
    # Imported here: only the stitch function ships the reel engine's dependencies (PyAV).
    from shared.media.reels.maker import ReelMaker

    storage = storage_client(settings)
    return GenerationWorker(
        claims=ClaimStore(documents(settings), settings),
        provider=ReelMaker(storage, timeout_seconds=settings.media_timeout_seconds),
        uploader=media_store(settings, storage),
        settings=settings,
        announcer=announcer(settings),
        makes=frozenset({"reel"}),
    )


def build_refund_handler(settings: Settings) -> RefundHandler:
    store = documents(settings)
    media = media_store(settings)
    money = refunds(store, settings)
    # Finishing a delete announces nothing (only a DELETE's own mark does).
    actions = CreationActions(
        store, settings, refunds=money, media=media, announcer=SilentAnnouncer()
    )
    return RefundHandler(money, media=media, finish_delete=actions.finish_delete)


def build_dead_letter_handler(settings: Settings) -> DeadLetterHandler:
    return DeadLetterHandler(ClaimStore(documents(settings), settings), announcer(settings))


def build_sweeper(settings: Settings) -> Sweeper:
    store = documents(settings)
    money = refunds(store, settings)
    pubsub = publisher_client(settings)
    media = media_store(settings)
    actions = CreationActions(
        store, settings, refunds=money, media=media, announcer=SilentAnnouncer()
    )
    return Sweeper(
        store,
        settings,
        claims=ClaimStore(store, settings),
        refunds=money,
        publisher=PubSubJobPublisher(pubsub, settings),
        announcer=announcer(settings, pubsub),
        finish_delete=actions.finish_delete,
        media=media,
    )


def build_webhook_delivery(settings: Settings) -> WebhookDelivery:
    # Imported here: only the webhooks function ships `standardwebhooks`.
    from shared.webhooks.delivery import WebhookDelivery
    from shared.webhooks.exhausted import PubSubExhaustedEvents
    from shared.webhooks.sender import DirectSender
    from shared.webhooks.signing import signer_from

    secret = settings.webhook_secret
    return WebhookDelivery(
        documents(settings),
        settings,
        signer=signer_from(secret.get_secret_value() if secret is not None else None),
        sender=DirectSender(timeout_seconds=settings.webhook_timeout_seconds),
        media_links=media_links(settings),
        exhausted=PubSubExhaustedEvents(publisher_client(settings), settings),
        resolver=webhook_resolver(settings),
    )
