"""The fault proxy the whole-stack fault tests put before each emulator, on loopback sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.support.faultproxy import FaultProxy
from tools.stack.processes import LOCALHOST
from tools.stack.waiting import wait_until


@pytest.fixture
def echo_port() -> Iterator[int]:
    """An echo server: every byte it receives comes back."""
    server = socket.create_server((LOCALHOST, 0))

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)
    server.close()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[FaultProxy]:
    with FaultProxy(echo_port) as started:
        yield started


def roundtrip(port: int, payload: bytes = b"ping") -> bytes:
    with socket.create_connection((LOCALHOST, port), timeout=2) as conn:
        conn.sendall(payload)
        return conn.recv(1024)


def test_pass_relays_both_ways(proxy: FaultProxy) -> None:
    assert roundtrip(proxy.port) == b"ping"
    assert proxy.counts.relayed == 1


def test_down_refuses_new_connections_and_drops_open_ones(proxy: FaultProxy) -> None:
    held = socket.create_connection((LOCALHOST, proxy.port), timeout=2)
    held.sendall(b"a")
    assert held.recv(16) == b"a"
    proxy.set_mode("down")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOCALHOST, proxy.port), timeout=2)
    assert held.recv(16) == b""  # cut
    held.close()
    proxy.set_mode("pass")
    assert roundtrip(proxy.port) == b"ping"
    assert proxy.counts.faults == ["down"]
    assert proxy.counts.dropped == 1


def test_a_blackhole_accepts_and_never_answers_then_drops_what_it_froze(
    proxy: FaultProxy,
) -> None:
    held = socket.create_connection((LOCALHOST, proxy.port), timeout=2)
    held.sendall(b"a")
    assert held.recv(16) == b"a"  # relayed, so accepted before the blackhole
    proxy.set_mode("blackhole")
    held.sendall(b"lost")
    with socket.create_connection((LOCALHOST, proxy.port), timeout=0.3) as fresh:
        fresh.sendall(b"also lost")
        with pytest.raises(TimeoutError):
            fresh.recv(16)
    proxy.set_mode("pass")
    held.settimeout(2)
    assert held.recv(16) == b""  # dropped on leaving the blackhole, never answered
    held.close()
    assert roundtrip(proxy.port) == b"ping"
    assert proxy.counts.swallowed == 1


def test_reset_hangs_up_on_every_new_connection_and_counts_them(proxy: FaultProxy) -> None:
    proxy.set_mode("reset")
    for _ in range(2):
        with pytest.raises(ConnectionResetError):  # at connect, write or read: it hung up
            roundtrip(proxy.port)
    wait_until(lambda: proxy.counts.reset == 2, 5, "two resets counted")
    proxy.set_mode("pass")
    assert roundtrip(proxy.port) == b"ping"
