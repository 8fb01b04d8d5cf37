"""The local-stack tooling's helpers: ports, env building, stack file, process groups.

No emulators and no network: the process tests use tiny shell/Python children on loopback.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.settings import Settings
from tools.stack import cli, dev, emulators
from tools.stack.emulators import (
    EmulatorError,
    ManagedProcess,
    PortInUseError,
    answers_200,
    answers_anything,
    answers_ok,
    emulator_env,
    ensure_port_free,
    free_port,
    log_tail,
    port_in_use_message,
    port_is_free,
)
from tools.stack.topology import ensure_resources, tap_subscription_name


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


# --- ports ---------------------------------------------------------------------------------


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


def test_port_message_without_hint() -> None:
    assert (
        port_in_use_message(1, "x")
        == "port 1 is already in use (wanted by x); stop whatever holds it"
    )


def test_read_ports_defaults() -> None:
    assert dev.read_ports({}) == dev.Ports(firestore=8090, pubsub=8091, gcs=8092, submit=8080)


def test_read_ports_overrides() -> None:
    ports = dev.read_ports({"FIRESTORE_PORT": "9000", "SUBMIT_PORT": " 9001 ", "GCS_PORT": ""})
    assert ports == dev.Ports(firestore=9000, pubsub=8091, gcs=8092, submit=9001)


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1", "80.5"])
def test_read_ports_rejects_non_ports(value: str) -> None:
    with pytest.raises(dev.DevError, match="PUBSUB_PORT"):
        dev.read_ports({"PUBSUB_PORT": value})


def test_read_ports_rejects_duplicates() -> None:
    with pytest.raises(dev.DevError, match="must differ"):
        dev.read_ports({"GCS_PORT": "8080"})


# --- readiness predicates and logs ------------------------------------------------------------


def test_readiness_predicates() -> None:
    assert answers_ok(200, b"Ok\n")
    assert not answers_ok(200, b"<html>")
    assert not answers_ok(404, b"Ok")
    assert answers_200(200, b"{}")
    assert not answers_200(500, b"")
    assert answers_anything(401, b"")


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert log_tail(log) == ""
    log.write_bytes(b"".join(f"line {i}\n".encode() for i in range(100)) + b"\xff bad\n")
    assert log_tail(log, 3).splitlines() == ["line 98", "line 99", "\ufffd bad"]


# --- environment -----------------------------------------------------------------------------


def test_emulator_env_storage_has_scheme() -> None:
    # google-cloud-storage uses STORAGE_EMULATOR_HOST verbatim as the endpoint.
    assert emulator_env(1, 2, 3) == {
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:2",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:3",
    }


def test_stack_env_covers_exported_names_and_matches_emulator_env() -> None:
    ports = dev.Ports(firestore=1, pubsub=2, gcs=3, submit=4)
    env = dev.stack_env(ports=ports, project="p", media_bucket="b")
    assert tuple(env) == dev.EXPORTED_ENV
    assert emulator_env(1, 2, 3).items() <= env.items()
    assert env["GOOGLE_CLOUD_PROJECT"] == env["GCP_PROJECT"] == "p"
    assert env["SUBMIT_URL"] == "http://127.0.0.1:4"


def test_function_env_overlays_stack_and_passes_the_rest_through() -> None:
    base = {"LOG_LEVEL": "DEBUG", "GCP_PROJECT": "outer", "PYTHONPATH": "/elsewhere"}
    env = dev.function_env(base, {"GCP_PROJECT": "inner"}, "file:///certs.json")
    assert env["LOG_LEVEL"] == "DEBUG"
    assert env["GCP_PROJECT"] == "inner"
    assert env["AUTH_CERTS_URL"] == "file:///certs.json"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(dev.REPO_ROOT), "/elsewhere"]
    assert base["GCP_PROJECT"] == "outer"  # the caller's mapping is not modified


def test_export_lines_quote_for_the_shell() -> None:
    lines = cli.export_lines({"GCP_PROJECT": "it's", "SUBMIT_URL": "http://x", "OTHER": "no"})
    assert lines == ["export GCP_PROJECT='it'\"'\"'s'", "export SUBMIT_URL=http://x"]


# --- the stack file ----------------------------------------------------------------------------


def test_read_stack(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    assert cli.read_stack(path) is None
    path.write_text(json.dumps({"pid": os.getpid(), "project": "p"}))
    assert cli.read_stack(path) == {"pid": os.getpid(), "project": "p"}
    with pytest.raises(cli.CliError, match="no dev stack is running"):
        cli.require_stack(tmp_path / "missing.json")


def test_stack_file_of_a_dead_process_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    path.write_text(json.dumps({"pid": 2**22 + 1}))  # above Linux's pid_max default
    assert cli.read_stack(path) is None


def test_stack_project_precedence() -> None:
    assert cli.stack_project({"project": "s"}, {"GCP_PROJECT": "e"}) == "s"
    assert cli.stack_project(None, {"GCP_PROJECT": "e"}) == "e"
    assert cli.stack_project(None, {}) == "demo-creations"


@pytest.mark.parametrize(
    ("argv", "ok"),
    [
        (["token", "--user", "alice"], True),
        (["token", "--user", "a/b"], False),
        (["token", "--user", ""], False),
        (["grant", "--user", "alice", "--tokens", "10"], True),
        (["grant", "--user", "alice", "--tokens", "0"], False),
        (["grant", "--user", "alice", "--tokens", "x"], False),
        (["env"], True),
    ],
)
def test_cli_argument_validation(argv: list[str], ok: bool) -> None:
    parser = cli.build_parser()
    if ok:
        parser.parse_args(argv)
    else:
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


# --- topology -----------------------------------------------------------------------------------


def test_tap_subscription_name() -> None:
    assert tap_subscription_name("creations-generate") == "creations-generate-tap"


def test_ensure_resources_refuses_real_projects() -> None:
    settings = Settings(pubsub_emulator_host=None, storage_emulator_host=None)
    with pytest.raises(ValueError, match="only provisions the local emulators"):
        ensure_resources(settings)


# --- managed processes -------------------------------------------------------------------------


def _shell(tmp_path: Path, script: str, port: int) -> ManagedProcess:
    return ManagedProcess(
        "the test child", ["sh", "-c", script], port=port, log_path=tmp_path / "c.log", cwd=tmp_path
    )


def _alive(pid: int) -> bool:
    """Running and not a zombie (an orphan's zombie may linger until PID 1 reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


@pytest.fixture
def nothing_answers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Replace the HTTP readiness probe (unit tests have no network); record its calls."""
    calls: list[tuple[int, str]] = []

    def probe(port: int, path: str, *_args: object, **_kwargs: object) -> None:
        calls.append((port, path))

    monkeypatch.setattr(emulators, "http_probe", probe)
    return calls


def test_early_exit_is_reported_with_the_log_tail(
    tmp_path: Path, nothing_answers: list[tuple[int, str]]
) -> None:
    child = _shell(tmp_path, "echo 'it broke'; exit 3", free_port())
    child.launch()
    try:
        with pytest.raises(EmulatorError, match=r"exited with code 3(.|\n)*it broke"):
            child.wait_ready(timeout=10)
    finally:
        child.stop()


def test_ready_deadline(tmp_path: Path, nothing_answers: list[tuple[int, str]]) -> None:
    port = free_port()
    child = _shell(tmp_path, "exec sleep 30", port)
    child.launch()
    try:
        with pytest.raises(
            EmulatorError, match=rf"not ready on port {port} after 0 s \(no answer\)"
        ):
            child.wait_ready(timeout=0.3)
    finally:
        child.stop()
    assert child.poll() is not None
    assert nothing_answers
    assert nothing_answers[0] == (port, "/")


def test_ready_check_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([None, (200, b"<html>"), (200, b"Ok")])
    monkeypatch.setattr(emulators, "http_probe", lambda *_a, **_k: next(answers))
    child = ManagedProcess(
        "the test child",
        ["sh", "-c", "exec sleep 30"],
        port=free_port(),
        log_path=tmp_path / "c.log",
        ready_check=answers_ok,
    )
    try:
        assert child.start(timeout=10) >= 0
    finally:
        child.stop()
    assert next(answers, "done") == "done"  # it took the third answer, not an earlier one


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_stop_kills_the_whole_group(tmp_path: Path) -> None:
    # The shell forks a grandchild and waits for it, as the Firestore launcher does its JVM;
    # signalling only the shell would leave the grandchild running.
    child = _shell(
        tmp_path, "sleep 30 & echo $! > grandchild.tmp; mv grandchild.tmp gc; wait", free_port()
    )
    child.launch()
    pid_file = tmp_path / "gc"
    deadline = time.monotonic() + 10
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the child never wrote its grandchild's pid"
        time.sleep(0.01)
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)

    child.stop(timeout=5)

    assert child.poll() is not None
    assert not _alive(grandchild)
