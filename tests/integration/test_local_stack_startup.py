"""`make dev`'s start order: the stack takes outside work only once the chain is wired.

A creation submitted before the push subscriptions exist would be published to a topic nobody
subscribes to yet, and wait for the sweeper. So the moment submit first answers, every
subscription and trigger of the wiring must exist already.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.cloud.pubsub_v1 import SubscriberClient

from shared.core.settings import Settings
from tools.stack.chain import FUNCTIONS, Knobs, LocalStack, default_functions
from tools.stack.emulators import EmulatorSet
from tools.stack.processes import free_port, http_probe
from tools.stack.waiting import wait_until

STARTUP_SECONDS = 90.0


@pytest.fixture
def starting(
    emulators: EmulatorSet, base_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[LocalStack, threading.Thread]]:
    """A stack of the real functions, being started in the background."""
    hosts = emulators.env()
    settings = Settings(
        gcp_project=f"demo-start-{uuid.uuid4().hex[:8]}",
        firestore_emulator_host=hosts["FIRESTORE_EMULATOR_HOST"],
        pubsub_emulator_host=hosts["PUBSUB_EMULATOR_HOST"],
        storage_emulator_host=hosts["STORAGE_EMULATOR_HOST"],
    )
    stack = LocalStack(
        settings,
        default_functions({name: free_port() for name in FUNCTIONS}),
        router_port=emulators.functions_emulator_port or 0,
        log_dir=tmp_path,
        env={**os.environ, **base_env},
        knobs=Knobs(sweep_interval_seconds=0),
    )
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stack.start()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=start, name="stack-start", daemon=True)
    thread.start()
    try:
        yield stack, thread
    finally:
        thread.join(STARTUP_SECONDS)
        stack.stop()
    assert not errors, errors


def test_submit_first_answers_when_every_subscription_and_trigger_exists(
    starting: tuple[LocalStack, threading.Thread],
) -> None:
    stack, thread = starting
    submit = stack.processes["submit"]
    wait_until(
        lambda: http_probe(submit.port, "/", timeout=0.5) is not None or not thread.is_alive(),
        STARTUP_SECONDS,
        "submit answers",
        interval=0.005,
    )
    assert http_probe(submit.port, "/") is not None, "the stack finished starting without submit"

    project = stack.settings.gcp_project
    subscriber = SubscriberClient()
    try:
        existing = {
            subscription.name.rsplit("/", 1)[-1]
            for subscription in subscriber.list_subscriptions(project=f"projects/{project}")
        }
    finally:
        subscriber.close()
    wanted = {route.subscription for route in stack.wiring.pushes}
    assert wanted, "the default wiring has push subscriptions"
    assert wanted <= existing
    router = stack._started.router
    for route in stack.wiring.triggers:
        assert router is not None and router.target(project, route.trigger.trigger_id)

    thread.join(STARTUP_SECONDS)
    assert stack.accepting_line().startswith(
        f"accepting work: POST {stack.url('submit')}/v1/creations "
        f"(chain wired: {len(stack.wiring.pushes)} push subscriptions"
    )
