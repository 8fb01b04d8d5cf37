"""The local stack's process handling, with real children: ports, readiness, process groups."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tools.stack import processes
from tools.stack.processes import (
    ManagedProcess,
    PortInUseError,
    StackError,
    answers_ok,
    ensure_port_free,
    free_port,
    pid_alive,
    port_is_free,
)
from tools.stack.waiting import wait_until


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_free_port_is_free() -> None:
    assert port_is_free(free_port())


def test_listening_port_is_busy_and_named_in_the_error(listening_port: int) -> None:
    assert not port_is_free(listening_port)
    with pytest.raises(PortInUseError) as caught:
        ensure_port_free(listening_port, "the Firestore emulator", "set FIRESTORE_PORT")
    assert str(caught.value) == (
        f"port {listening_port} is already in use (wanted by the Firestore emulator); "
        "stop whatever holds it or set FIRESTORE_PORT"
    )


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Callable[[str, int], ManagedProcess]]:
    """Make `sh -c script` children; whatever a test leaves running is stopped after it."""
    made: list[ManagedProcess] = []

    def make(script: str, port: int) -> ManagedProcess:
        child = ManagedProcess(
            "the test child",
            ["sh", "-c", script],
            port=port,
            log_path=tmp_path / "c.log",
            cwd=tmp_path,
        )
        made.append(child)
        return child

    yield make
    for child in made:
        child.stop()


@pytest.fixture
def nothing_answers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Replace the HTTP readiness probe (nothing listens on the port); record its calls."""
    calls: list[tuple[int, str]] = []

    def probe(port: int, path: str, *_args: object, **_kwargs: object) -> None:
        calls.append((port, path))

    monkeypatch.setattr(processes, "http_probe", probe)
    return calls


def test_early_exit_is_reported_with_the_log_tail(
    shell: Callable[[str, int], ManagedProcess], nothing_answers: list[tuple[int, str]]
) -> None:
    child = shell("echo 'it broke'; exit 3", free_port())
    child.launch()
    with pytest.raises(StackError, match=r"exited with code 3(.|\n)*it broke"):
        child.wait_ready(timeout=10)


def test_ready_deadline(
    shell: Callable[[str, int], ManagedProcess], nothing_answers: list[tuple[int, str]]
) -> None:
    port = free_port()
    child = shell("exec sleep 30", port)
    child.launch()
    with pytest.raises(StackError, match=rf"not ready on port {port} after 0 s \(no answer\)"):
        child.wait_ready(timeout=0.3)
    child.stop()
    assert child.poll() is not None
    assert nothing_answers
    assert nothing_answers[0] == (port, "/")


def test_ready_check_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([None, (200, b"<html>"), (200, b"Ok")])
    probes: list[object] = []

    def probe(*_args: object, **_kwargs: object) -> tuple[int, bytes] | None:
        answer = next(answers)
        probes.append(answer)
        return answer

    monkeypatch.setattr(processes, "http_probe", probe)
    child = ManagedProcess(
        "the test child",
        ["sh", "-c", "exec sleep 30"],
        port=free_port(),
        log_path=tmp_path / "c.log",
        ready_check=answers_ok,
    )
    try:
        child.start(timeout=10)
        assert child.poll() is None  # running when declared ready
    finally:
        child.stop()
    assert probes == [None, (200, b"<html>"), (200, b"Ok")]  # ready at the first "Ok", not before


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_stop_kills_the_whole_group(
    shell: Callable[[str, int], ManagedProcess], tmp_path: Path
) -> None:
    # The shell forks a grandchild and waits for it, as the Firestore launcher does its JVM;
    # signalling only the shell would leave the grandchild running.
    child = shell("sleep 30 & echo $! > grandchild.tmp; mv grandchild.tmp gc; wait", free_port())
    child.launch()
    pid_file = tmp_path / "gc"
    wait_until(pid_file.exists, 10, "the child writes its grandchild's pid")
    grandchild = int(pid_file.read_text())
    assert pid_alive(grandchild)

    child.stop(timeout=5)

    assert child.poll() is not None
    assert not pid_alive(grandchild)


def test_restart_after_a_kill_runs_it_again_and_keeps_the_first_log(tmp_path: Path) -> None:
    # A real listener, so the readiness probe and the port check see what a function is.
    script = 'echo run; exec python3 -m http.server --bind 127.0.0.1 "$0"'
    port = free_port()
    child = ManagedProcess(
        "the test child",
        ["sh", "-c", script, str(port)],
        port=port,
        log_path=tmp_path / "c.log",
        cwd=tmp_path,
    )
    try:
        child.start(timeout=30)
        first = child.pid
        assert first is not None
        os.killpg(first, signal.SIGKILL)
        wait_until(lambda: child.poll() is not None, 10, "the killed child is gone")
        child.restart(timeout=30)
        assert child.poll() is None
        assert child.pid != first
    finally:
        child.stop()
    assert (tmp_path / "c.log").read_text().count("run\n") == 2
