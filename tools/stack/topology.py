"""Create the Pub/Sub topics, tap subscriptions and media bucket in the local emulators.

In the cloud these resources come from infrastructure code; the emulators start empty, so
`make dev` and the integration fixtures call `ensure_resources` after every start. It is
idempotent (existing resources are left alone), and it refuses to run unless the settings point
at emulators, so a mis-set environment can never create anything in a real project.

Clients are built from the settings' emulator hosts explicitly rather than from the
process environment, so callers need not mutate `os.environ` first. The push subscriptions
that deliver to the functions are wiring, made by `tools.stack.chain` once they listen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client as StorageClient
from google.pubsub_v1 import PublisherClient, SubscriberClient
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport

from shared.core.settings import Settings

TAP_SUFFIX = "-tap"
_TIMEOUT = 10.0  # seconds per admin call; the emulators answer in milliseconds


@dataclass
class Provisioned:
    """What `ensure_resources` created (`created`) and what already existed (`existing`)."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def note(self, name: str, *, created: bool) -> None:
        (self.created if created else self.existing).append(name)


def tap_subscription_name(topic: str) -> str:
    """The pull subscription that lets a developer see what was published to `topic`."""
    return f"{topic}{TAP_SUFFIX}"


def topics(settings: Settings) -> list[str]:
    """Every topic the suite uses: the job topics, the dead-letter topic, the sweeper's clock,
    the creation status stream, where given-up webhook events go."""
    return [
        settings.generate_topic,
        settings.stitch_topic,
        settings.dead_letter_topic,
        settings.sweep_topic,
        settings.status_topic,
        settings.webhook_exhausted_topic,
    ]


def tapped_topics(settings: Settings) -> list[str]:
    """Topics that get a `-tap` pull subscription: those a developer wants to look into.

    Not the sweep topic: it is a clock tick every few seconds, and a tap nobody pulls would
    keep every tick for the emulator's whole life. The exhausted webhooks' tap is the local
    stand-in for the pull subscription an operator reads in production.
    """
    return [
        settings.generate_topic,
        settings.stitch_topic,
        settings.dead_letter_topic,
        settings.status_topic,
        settings.webhook_exhausted_topic,
    ]


def ensure_resources(settings: Settings) -> Provisioned:
    """Idempotently create topics (+ `<topic>-tap` pull subscriptions) and the media bucket."""
    if not (settings.pubsub_emulator_host and settings.storage_emulator_host):
        raise ValueError(
            "ensure_resources only provisions the local emulators; set PUBSUB_EMULATOR_HOST "
            "and STORAGE_EMULATOR_HOST (real projects are provisioned by infrastructure code)"
        )
    result = Provisioned()
    _ensure_pubsub(settings, settings.pubsub_emulator_host, result)
    _ensure_bucket(settings, settings.storage_emulator_host, result)
    return result


def _ensure_pubsub(settings: Settings, host: str, result: Provisioned) -> None:
    project = settings.gcp_project
    # The emulator speaks plaintext gRPC; a transport given its own channel ignores credentials.
    publisher_channel = grpc.insecure_channel(host)
    subscriber_channel = grpc.insecure_channel(host)
    try:
        publisher = PublisherClient(transport=PublisherGrpcTransport(channel=publisher_channel))
        subscriber = SubscriberClient(transport=SubscriberGrpcTransport(channel=subscriber_channel))
        tapped = tapped_topics(settings)
        for topic in topics(settings):
            topic_path = publisher.topic_path(project, topic)
            try:
                publisher.create_topic(name=topic_path, timeout=_TIMEOUT)
                result.note(topic_path, created=True)
            except gexc.AlreadyExists:
                result.note(topic_path, created=False)
            if topic not in tapped:
                continue

            tap_path = subscriber.subscription_path(project, tap_subscription_name(topic))
            try:
                subscriber.create_subscription(
                    name=tap_path, topic=topic_path, ack_deadline_seconds=60, timeout=_TIMEOUT
                )
                result.note(tap_path, created=True)
            except gexc.AlreadyExists:
                result.note(tap_path, created=False)
    finally:
        publisher_channel.close()
        subscriber_channel.close()


def _ensure_bucket(settings: Settings, endpoint: str, result: Provisioned) -> None:
    client = StorageClient(
        project=settings.gcp_project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )
    try:
        client.create_bucket(settings.media_bucket, timeout=_TIMEOUT)
        result.note(f"gs://{settings.media_bucket}", created=True)
    except gexc.Conflict:
        result.note(f"gs://{settings.media_bucket}", created=False)
    finally:
        client.close()
