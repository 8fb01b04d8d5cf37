"""Unit tests need no network and no other process: connecting, binding a socket or starting a
subprocess fails the test (tests that run ffmpeg or children belong in tests/component)."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from shared.core.settings import Settings
from shared.money.ledger import Ledger
from shared.money.refunds import Refunds
from tests.support.fakes import SETTINGS, Clock
from tests.support.memory_store import MemoryDocuments


@pytest.fixture(autouse=True)
def no_network_and_no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not use the network (see tests/component)")

    def refuse_process(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("unit tests must not start processes (see tests/component)")

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse_network)
    monkeypatch.setattr(socket, "create_connection", refuse_network)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_network)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse_process)
    for name in ("system", "fork", "posix_spawn", "posix_spawnp", "execv", "execve"):
        monkeypatch.setattr(os, name, refuse_process)
    # asyncio's subprocesses go through Popen; its connections through socket.connect.
    yield


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store() -> MemoryDocuments:
    return MemoryDocuments()


@pytest.fixture
def settings() -> Settings:
    """The tier's settings; a module with other needs overrides this fixture."""
    return SETTINGS


@pytest.fixture
def ledger(store: MemoryDocuments, settings: Settings) -> Ledger:
    return Ledger(store, settings)


@pytest.fixture
def refunds(store: MemoryDocuments, settings: Settings, ledger: Ledger) -> Refunds:
    return Refunds(store, settings, ledger)
