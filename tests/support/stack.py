"""A whole local stack (every function, wired) started for a test, and what tests ask of it."""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
from google.cloud import firestore

from shared.core.settings import Settings
from shared.money.ledger import Ledger
from shared.store.firestore import FirestoreDocuments
from tests.support.chain import assert_every_ledger_balances, doc
from tools.stack.chain import FUNCTIONS, Knobs, LocalStack, default_functions
from tools.stack.devauth import DevSigner
from tools.stack.emulators import EmulatorSet
from tools.stack.processes import free_port
from tools.stack.waiting import wait_for

WAIT_SECONDS = 60.0


@dataclass
class RunningStack:
    stack: LocalStack
    settings: Settings
    db: firestore.Client
    ledger: Ledger
    headers: Callable[[str], dict[str, str]]
    # What the webhooks function signs with (a receiver verifies with it).
    webhook_secret: str

    def submit(self, user: str, body: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            f"{self.stack.url('submit')}/v1/creations",
            json=body,
            headers=self.headers(user),
            timeout=30,
        )
        assert response.status_code == 202, response.text
        created: dict[str, Any] = response.json()
        return created

    def doc(self, creation_id: str) -> dict[str, Any]:
        return doc(self.db, creation_id)

    def wait(
        self,
        creation_id: str,
        done: Callable[[dict[str, Any]], bool],
        what: str,
        timeout: float = WAIT_SECONDS,
        *,
        watch_processes: bool = True,
    ) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            problem = self.stack.failure() if watch_processes else None
            assert problem is None, problem
            return self.doc(creation_id)

        try:
            return wait_for(read, done, timeout, f"{creation_id} {what}", interval=0.1)
        except TimeoutError as exc:
            pytest.fail(str(exc))

    def assert_ledgers_balance(self) -> None:
        assert_every_ledger_balances(self.db)


def start_stack(
    emulators: EmulatorSet,
    base_env: dict[str, str],
    signer: DevSigner,
    log_dir: Path,
    extra_env: dict[str, str],
    *,
    hosts: Mapping[str, str] | None = None,
) -> RunningStack:
    """`hosts` (`*_EMULATOR_HOST` values) is where the stack's processes reach the emulators
    (a fault proxy, say); the test's own clients (`db`, `ledger`) always reach them directly."""
    env = emulators.env()
    reach = {**env, **(hosts or {})}
    settings = Settings(
        gcp_project=f"demo-e2e-{uuid.uuid4().hex[:8]}",
        firestore_emulator_host=reach["FIRESTORE_EMULATOR_HOST"],
        pubsub_emulator_host=reach["PUBSUB_EMULATOR_HOST"],
        storage_emulator_host=reach["STORAGE_EMULATOR_HOST"],
    )
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    process_env = {
        **os.environ,
        **base_env,
        "OFFLINE_IMAGE_LONG_SIDE_PX": "256",
        "OFFLINE_VIDEO_LONG_SIDE_PX": "320",
        "WEBHOOK_SECRET": webhook_secret,
        **extra_env,
    }
    stack = LocalStack(
        settings,
        default_functions({name: free_port() for name in FUNCTIONS}),
        router_port=emulators.functions_emulator_port or 0,
        log_dir=log_dir,
        env=process_env,
        knobs=Knobs(sweep_interval_seconds=1, retry_min_backoff_seconds=1),
    )
    stack.start()
    # The client library reads the emulator host when it is built; this fixture outlives the
    # per-test environment, so it must not leave the variable behind in os.environ.
    with mock.patch.dict(os.environ, {"FIRESTORE_EMULATOR_HOST": env["FIRESTORE_EMULATOR_HOST"]}):
        db = firestore.Client(project=settings.gcp_project)
    return RunningStack(
        stack=stack,
        settings=settings,
        db=db,
        ledger=Ledger(FirestoreDocuments(db, settings), settings),
        headers=lambda uid: {"Authorization": f"Bearer {signer.mint(uid, settings.gcp_project)}"},
        webhook_secret=process_env["WEBHOOK_SECRET"],
    )
