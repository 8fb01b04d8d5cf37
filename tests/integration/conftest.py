"""Integration fixtures: the real emulators, the real functions-framework app, real clients.

One set of emulators serves the whole session (free ports, so `make dev` may run alongside);
Firestore is wiped before every test, and after every test each user's balance must equal the
sum of their ledger and be non-negative. Every HTTP answer the API client gets is checked
against docs/openapi.yaml.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from functions_framework import create_app
from google.cloud import firestore
from google.cloud.pubsub_v1 import SubscriberClient
from google.cloud.pubsub_v1.types import ReceivedMessage
from google.cloud.storage import Bucket
from openapi_core import OpenAPI

from shared.core.clients import firestore_client, storage_client
from shared.core.settings import Settings, load_settings
from shared.creations.reading import CreationReader
from shared.money.ledger import Ledger
from shared.money.refunds import Refunds
from shared.store.documents import Documents
from shared.store.firestore import FirestoreDocuments
from tests.support.chain import PROJECT, Chain, assert_every_ledger_balances
from tests.support.contract import ContractClient, HttpContractClient
from tests.support.paths import REPO, SUBMIT_SOURCE, function_source
from tools.stack.devauth import DevSigner, certs_url, load_or_create_signer
from tools.stack.emulators import EmulatorSet, wipe_firestore
from tools.stack.processes import ManagedProcess, free_port, python_child_env
from tools.stack.topology import ensure_resources
from tools.stack.waiting import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorSet]:
    # Firestore pushes trigger events to `functions_emulator_port`; tests that run a
    # `LocalStack` put its trigger router there (tests/integration/test_triggers.py).
    with EmulatorSet(
        tmp_path_factory.mktemp("emulator-logs"), functions_emulator_port=free_port()
    ) as started:
        yield started


@pytest.fixture(scope="session")
def auth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("auth")


@pytest.fixture(scope="session")
def signer(auth_dir: Path) -> DevSigner:
    return load_or_create_signer(auth_dir)


@pytest.fixture(scope="session")
def base_env(emulators: EmulatorSet, auth_dir: Path) -> dict[str, str]:
    return {
        **emulators.env(),
        "GCP_PROJECT": PROJECT,
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "AUTH_CERTS_URL": certs_url(auth_dir),
        "STORE_TIMEOUT_SECONDS": "5",
        "PUBLISH_TIMEOUT_SECONDS": "5",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture(autouse=True)
def stack(base_env: dict[str, str], emulators: EmulatorSet) -> Iterator[Settings]:
    """A clean project on the emulators, with topics and bucket, for each test."""
    os.environ.update(base_env)
    load_settings.cache_clear()
    wipe_firestore(base_env["FIRESTORE_EMULATOR_HOST"], PROJECT)
    settings = load_settings()
    ensure_resources(settings)
    yield settings
    assert_every_ledger_balances(firestore.Client(project=settings.gcp_project))


@pytest.fixture
def documents(db: firestore.Client, stack: Settings) -> Documents:
    """The suite's document store on the emulator (the same adapter production uses)."""
    return FirestoreDocuments(db, stack)


@pytest.fixture
def ledger(documents: Documents, stack: Settings) -> Ledger:
    return Ledger(documents, stack)


@pytest.fixture
def refunds(documents: Documents, stack: Settings, ledger: Ledger) -> Refunds:
    return Refunds(documents, stack, ledger)


@pytest.fixture
def creations(documents: Documents) -> CreationReader:
    return CreationReader(documents)


@pytest.fixture
def bucket(stack: Settings) -> Bucket:
    """The media bucket in the Cloud Storage emulator."""
    return storage_client(stack).bucket(stack.media_bucket)


@pytest.fixture
def db(stack: Settings) -> firestore.Client:
    return firestore_client(stack)


@pytest.fixture
def token(signer: DevSigner) -> Callable[[str], str]:
    return lambda uid: signer.mint(uid, PROJECT)


@pytest.fixture
def auth(token: Callable[[str], str]) -> Callable[[str], dict[str, str]]:
    return lambda uid: {"Authorization": f"Bearer {token(uid)}"}


@pytest.fixture(scope="session")
def openapi_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(REPO / "docs" / "openapi.yaml"))


@pytest.fixture
def api(stack: Settings, openapi_spec: OpenAPI) -> ContractClient:
    """The `submit` function loaded by functions-framework, as production loads it."""
    app = create_app("submit", str(SUBMIT_SOURCE))
    return ContractClient(app.test_client(), openapi_spec)


@pytest.fixture(scope="session")
def submit_url(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The submit function served by the functions-framework CLI (gunicorn) over real HTTP, as
    `make dev` and Cloud Functions serve it. One process for the session: it keeps no state of
    its own, and each test's wipe of Firestore reaches it like any other client."""
    port = free_port()
    server = ManagedProcess(
        "the submit function",
        [
            Path(sys.executable).parent / "functions-framework",
            "--target",
            "submit",
            "--source",
            SUBMIT_SOURCE,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        port=port,
        log_path=tmp_path_factory.mktemp("submit-server") / "submit.log",
        env=python_child_env({**base_env, "PATH": "/usr/bin:/bin"}),
        cwd=REPO,
        ready_path="/v1/balance",
    )
    server.start(timeout=60)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def http_api(submit_url: str, stack: Settings, openapi_spec: OpenAPI) -> HttpContractClient:
    """`api`, but through the real HTTP server (`submit_url`)."""
    return HttpContractClient(submit_url, openapi_spec)


@pytest.fixture
def load_chain(
    api: ContractClient,
    auth: Callable[[str], dict[str, str]],
    ledger: Ledger,
    db: firestore.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Chain]:
    """`load_chain("generate", "refund", OFFLINE_IMAGE_LONG_SIDE_PX="256")`: the named functions
    (folders under functions/) loaded by functions-framework as production loads them, with
    `env` set first (a function reads its settings on its first event)."""

    def load(*names: str, **env: str) -> Chain:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        load_settings.cache_clear()
        apps = {name: create_app(name, str(function_source(name))).test_client() for name in names}
        return Chain(api, auth, ledger, db, load_settings(), apps)

    return load


@pytest.fixture
def topic_messages(stack: Settings) -> Callable[[str], list[ReceivedMessage]]:
    """Subscribe to a topic now; the returned function pulls what was published since."""
    subscriber = SubscriberClient()
    created: dict[str, str] = {}

    def subscribe(topic: str) -> str:
        name = str(subscriber.subscription_path(PROJECT, f"test-{topic}-{uuid.uuid4().hex[:8]}"))
        subscriber.create_subscription(
            name=name, topic=subscriber.topic_path(PROJECT, topic), ack_deadline_seconds=60
        )
        created[topic] = name
        return name

    subscribe(stack.generate_topic)

    def pull(topic: str, expected: int = 1) -> list[ReceivedMessage]:
        """Everything published since `subscribe`: pulls until at least `expected` arrived
        and a pull comes back empty, or a deadline passes. Submit publishes before it answers,
        so the messages of answered requests are already there."""
        received: list[ReceivedMessage] = []

        def drained() -> bool:
            response = subscriber.pull(
                subscription=created[topic], max_messages=100, return_immediately=True, timeout=10
            )
            if not response.received_messages:
                return len(received) >= expected
            received.extend(response.received_messages)
            subscriber.acknowledge(
                subscription=created[topic],
                ack_ids=[m.ack_id for m in response.received_messages],
            )
            return False

        with contextlib.suppress(TimeoutError):  # the caller asserts on what did arrive
            wait_until(drained, 10, f"{expected} message(s) on {topic}")
        return received

    return pull
