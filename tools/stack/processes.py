"""Local server processes, the way the stack runs them: own process group, output to a log file,
an HTTP readiness probe polled with a deadline, and a stop that takes the whole group down.

The emulators (`tools.stack.emulators`) and the functions (`tools.stack.chain`) are both run
as `ManagedProcess`es.

- Every child runs in its own session / process group. The Firestore launcher is a bash script
  that runs `java` as a *child* (not `exec`), so signalling only the launcher's pid would leave
  the JVM behind; `stop()` therefore signals the whole group. A separate session also keeps a
  terminal's Ctrl-C away from the children, so the owner decides the order of shutdown.
- Ports are checked before anything starts: the Pub/Sub emulator's JVM keeps running after a
  `BindException`, and the readiness probe would then be answered by whoever owns the port.
- A child that exits while we wait is reported with the tail of its log, which is where the
  JVMs explain themselves.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Final

import psutil

from tools.stack.logfiles import log_tail
from tools.stack.waiting import wait_until

REPO_ROOT: Final = Path(__file__).resolve().parents[2]
LOCALHOST: Final = "127.0.0.1"
DEFAULT_READY_TIMEOUT: Final = 60.0  # a cold JVM on a busy CI runner can take a while
DEFAULT_STOP_TIMEOUT: Final = 10.0

# A readiness predicate gets the HTTP status and body of the probe request.
ReadyCheck = Callable[[int, bytes], bool]


class StackError(RuntimeError):
    """A local service could not be started or did not become ready."""


class PortInUseError(StackError):
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


# --- ports and probes ---------------------------------------------------------------------


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


def python_child_env(env: Mapping[str, str]) -> dict[str, str]:
    """`env` for a Python child of the stack: the repository first on `PYTHONPATH`, so
    `import shared` works as it does deployed, and output unbuffered, so its log lines reach
    the log file as they happen."""
    out = dict(env)
    paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO_ROOT)]
    out["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *paths])
    out["PYTHONUNBUFFERED"] = "1"
    return out


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
        self._launches = 0

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
            raise StackError(f"{self.name} was already started (pid {self._process.pid})")
        self.check_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A restart appends: what the previous run said before it died is worth keeping.
        self._log = self.log_path.open("ab" if self._launches else "wb")
        self._launches += 1
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
            raise StackError(f"could not start {self.name} ({self.argv[0]}): {exc}") from exc

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> float:
        """Poll the readiness probe until it passes; return seconds since launch.

        Raises `StackError` with the log tail if the process exits first or the deadline
        passes (the process is left running; the caller's `stop()` cleans up).
        """
        process = self._process
        if process is None:
            raise StackError(f"{self.name} was never started")
        last: tuple[int, bytes] | None = None

        def ready() -> bool:
            nonlocal last
            code = process.poll()
            if code is not None:
                raise StackError(
                    f"{self.name} exited with code {code} before it was ready\n"
                    + self.describe_log()
                )
            last = http_probe(self.port, self.ready_path)
            return last is not None and self.ready_check(*last)

        try:
            wait_until(ready, timeout, f"{self.name} ready on port {self.port}")
        except TimeoutError:
            seen = "no answer" if last is None else f"last answer HTTP {last[0]}"
            raise StackError(
                f"{self.name} was not ready on port {self.port} after {timeout:.0f} s "
                f"({seen})\n" + self.describe_log()
            ) from None
        return time.monotonic() - self._started_at

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> float:
        """Launch and wait until ready; on failure stop what was started and re-raise."""
        self.launch()
        try:
            return self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def restart(self, timeout: float = DEFAULT_READY_TIMEOUT) -> float:
        """Stop what is left of the process (one that was killed, say), launch it again on the
        same port with the same argv and environment, and wait until it is ready; seconds
        since the new launch. Its log file is appended to."""
        self.stop()
        # The kernel frees a dead listener's port at once, a stopping one's when it has gone.
        wait_until(
            lambda: port_is_free(self.port), DEFAULT_STOP_TIMEOUT, f"{self.name} frees its port"
        )
        self._process = None
        return self.start(timeout)

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
        try:
            stop_group(process, timeout)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def stop_group(leader: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop `leader`'s process group (it was started with `start_new_session`): SIGTERM, and
    SIGKILL for whatever is left after `timeout`. The leader is reaped, not left a zombie."""
    pgid = leader.pid  # a session leader's pid is its group's id
    for sig, grace in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if leader.poll() is not None and not group_members(pgid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        started = time.monotonic()
        with contextlib.suppress(subprocess.TimeoutExpired):
            leader.wait(timeout=grace)
        left = max(0.1, grace - (time.monotonic() - started))
        _gone, alive = psutil.wait_procs(group_members(pgid), timeout=left)
        if not alive:
            return


def group_members(pgid: int) -> list[psutil.Process]:
    """The live processes of group `pgid`; zombies (dead, not yet reaped) do not count."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
    return members


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid is running (a zombie is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's process, but there is one


def stop_and_say(process: ManagedProcess, say: Callable[[str], None]) -> None:
    """Stop `process`, saying how long it took if it was running."""
    if process.started and process.poll() is None:
        started = time.monotonic()
        process.stop()
        say(f"stopped {process.name} in {time.monotonic() - started:.1f} s")
    else:
        process.stop()  # reaps it, kills anything left in its group, closes its log
