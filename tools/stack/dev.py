"""`make dev`: the whole suite on this machine — emulators, resources, every function, wired.

Runs in the foreground until Ctrl-C / SIGTERM, then stops everything it started. While it runs,
`.dev/stack.json` says where things are; `python -m tools.stack.cli` (`make token|grant|env`)
and `make demo` read it, and its absence means "no stack running". If any process dies, the
rest are stopped and `make dev` exits non-zero with the dead one's log tail.

The functions run as production runs them (see `tools.stack.chain`): submit over HTTP, generate
fed by a push subscription with retry and dead-letter policies, refund by the creation status
stream (STATUS_TOPIC), webhooks by its own subscription to that stream (it signs and POSTs the
events a creation's webhook asks for, with WEBHOOK_SECRET, made once per `.dev/` and exported
by `make -s env` so a local receiver can verify; webhooks may go to http://127.0.0.1 here),
dead_letter by the dead-letter topic, sweep by a local clock standing in for Cloud Scheduler.

Ports are fixed so URLs stay stable across restarts (bookmarks, shell history, a UI's config):
FIRESTORE_PORT (8090), PUBSUB_PORT (8091), GCS_PORT (8092), SUBMIT_PORT (8080), GENERATE_PORT
(8081), REFUND_PORT (8082), DEAD_LETTER_PORT (8083), SWEEP_PORT (8084), STITCH_PORT (8085),
TRIGGER_ROUTER_PORT (8086), WEBHOOKS_PORT (8087); the drafts page (`tools.stack.web`) WEB_PORT
(8088). `<FUNCTION>_SOURCE` (SUBMIT_SOURCE, GENERATE_SOURCE, REFUND_SOURCE, DEAD_LETTER_SOURCE,
SWEEP_SOURCE, STITCH_SOURCE, WEBHOOKS_SOURCE) overrides a function's source file, e.g. to try the
tooling against a stub.
SWEEP_INTERVAL_SECONDS (15; 0 = off) and RETRY_MIN_BACKOFF_SECONDS (1) tune the local clock and
Pub/Sub's retry backoff (maximum 10 s locally).
`<FUNCTION>_WORKERS` and `<FUNCTION>_THREADS` (SUBMIT_, GENERATE_, REFUND_, DEAD_LETTER_,
SWEEP_, STITCH_, WEBHOOKS_) set how many gunicorn worker processes, of how many threads each,
serve one function; the defaults are `tools.stack.chain.CONCURRENCY` (generate and stitch 2
processes of 2 threads, submit 1 of 8, webhooks 1 of 4, the rest 1 of 2). Threads must be at
least 2 (see `Concurrency`).

Start order: the functions the chain feeds boot first while the push subscriptions and triggers
are made; submit starts only then, so nothing it accepts can be published to a topic nobody
subscribes to yet. The last line printed, `accepting work: POST .../v1/creations (chain wired:
...)`, says the stack takes work.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Final

from tools.stack.devauth import certs_url, load_or_create_signer
from tools.stack.emulators import EmulatorKey, EmulatorSet, emulator_env
from tools.stack.processes import (
    LOCALHOST,
    REPO_ROOT,
    ManagedProcess,
    StackError,
    pid_alive,
    python_child_env,
)
from tools.stack.web import WebError, dev_web_server

DEV_DIR: Final = REPO_ROOT / ".dev"
AUTH_DIR: Final = DEV_DIR / "auth"
LOG_DIR: Final = DEV_DIR / "logs"
STACK_FILE: Final = DEV_DIR / "stack.json"
WEBHOOK_SECRET_FILE: Final = DEV_DIR / "webhook-secret"

DEFAULT_PROJECT: Final = "demo-creations"
DEFAULT_PORTS: Final = {
    "FIRESTORE_PORT": 8090,
    "PUBSUB_PORT": 8091,
    "GCS_PORT": 8092,
    "SUBMIT_PORT": 8080,
    "GENERATE_PORT": 8081,
    "REFUND_PORT": 8082,
    "DEAD_LETTER_PORT": 8083,
    "SWEEP_PORT": 8084,
    "STITCH_PORT": 8085,
    "TRIGGER_ROUTER_PORT": 8086,
    "WEBHOOKS_PORT": 8087,
}
# Environment variables that replace a function's source (`tools.stack.chain.FUNCTIONS` names).
SOURCE_OVERRIDES: Final = {
    "SUBMIT_SOURCE": "submit",
    "GENERATE_SOURCE": "generate",
    "REFUND_SOURCE": "refund",
    "DEAD_LETTER_SOURCE": "dead_letter",
    "SWEEP_SOURCE": "sweep",
    "STITCH_SOURCE": "stitch",
    "WEBHOOKS_SOURCE": "webhooks",
}

# The variables `make -s env` exports, in the order it prints them.
EXPORTED_ENV: Final = (
    "FIRESTORE_EMULATOR_HOST",
    "PUBSUB_EMULATOR_HOST",
    "STORAGE_EMULATOR_HOST",
    "GCP_PROJECT",
    "GOOGLE_CLOUD_PROJECT",
    "MEDIA_BUCKET",
    "SUBMIT_URL",
    "WEBHOOK_SECRET",
)


class DevError(Exception):
    """A problem to report in one line, without a traceback."""


@dataclass(frozen=True)
class Ports:
    firestore: int
    pubsub: int
    gcs: int
    submit: int
    generate: int
    refund: int
    dead_letter: int
    sweep: int
    stitch: int
    router: int
    webhooks: int

    def functions(self) -> dict[str, int]:
        """The function ports, keyed by function name (`tools.stack.chain.FUNCTIONS`)."""
        others = {"firestore", "pubsub", "gcs", "router"}
        return {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name not in others
        }

    def all(self) -> dict[str, int]:
        """Every port, keyed as in `.dev/stack.json`."""
        return {"firestore": self.firestore, "pubsub": self.pubsub, "gcs": self.gcs} | (
            self.functions() | {"router": self.router}
        )


def read_ports(environ: Mapping[str, str]) -> Ports:
    """Ports from the *_PORT variables of DEFAULT_PORTS, each defaulting to its value there."""
    values: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        raw = environ.get(name, "").strip()
        if not raw:
            values[name] = default
            continue
        try:
            port = int(raw)
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            raise DevError(f"{name}={raw!r} is not a TCP port number (1-65535)")
        values[name] = port
    ports = Ports(
        firestore=values["FIRESTORE_PORT"],
        pubsub=values["PUBSUB_PORT"],
        gcs=values["GCS_PORT"],
        submit=values["SUBMIT_PORT"],
        generate=values["GENERATE_PORT"],
        refund=values["REFUND_PORT"],
        dead_letter=values["DEAD_LETTER_PORT"],
        sweep=values["SWEEP_PORT"],
        stitch=values["STITCH_PORT"],
        router=values["TRIGGER_ROUTER_PORT"],
        webhooks=values["WEBHOOKS_PORT"],
    )
    seen = list(ports.all().values())
    if len(set(seen)) != len(seen):
        raise DevError(f"the {len(seen)} ports must differ, got {ports}")
    return ports


def read_sources(environ: Mapping[str, str]) -> dict[str, Path]:
    """Function sources replaced through SOURCE_OVERRIDES, keyed by function name."""
    sources: dict[str, Path] = {}
    for variable, name in SOURCE_OVERRIDES.items():
        raw = environ.get(variable, "").strip()
        if raw:
            sources[name] = Path(raw).resolve()
    return sources


def load_or_create_webhook_secret(path: Path = WEBHOOK_SECRET_FILE) -> str:
    """The stack's webhook signing secret (`whsec_<base64>`): made once, kept in `path`
    (readable by its owner only), so a receiver set up once keeps verifying across restarts."""
    with contextlib.suppress(FileNotFoundError):
        kept = path.read_text().strip()
        if kept.startswith("whsec_"):
            return kept
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secret + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)
    return secret


def stack_env(
    *, ports: Ports, project: str, media_bucket: str, webhook_secret: str | None = None
) -> dict[str, str]:
    """The values of EXPORTED_ENV for a stack on `ports` (what `make -s env` prints)."""
    secret = {"WEBHOOK_SECRET": webhook_secret} if webhook_secret else {}
    return {
        **emulator_env(ports.firestore, ports.pubsub, ports.gcs),
        "GCP_PROJECT": project,
        # The Google client libraries read this one; our settings read GCP_PROJECT.
        "GOOGLE_CLOUD_PROJECT": project,
        "MEDIA_BUCKET": media_bucket,
        "SUBMIT_URL": f"http://{LOCALHOST}:{ports.submit}",
        **secret,
    }


def function_env(
    base: Mapping[str, str], stack: Mapping[str, str], auth_certs_url: str
) -> dict[str, str]:
    """The `submit` process's environment: the caller's, overlaid with the stack's.

    Everything else passes through (LOG_LEVEL, pricing overrides, ...), so a developer can tune
    the function with ordinary environment variables when running `make dev`.
    """
    return python_child_env({**base, **stack, "AUTH_CERTS_URL": auth_certs_url})


def summary(stack: Mapping[str, str], ports: Ports, log_dir: Path, wiring: list[str]) -> str:
    url = stack["SUBMIT_URL"]
    return "\n".join(
        [
            "",
            f"dev stack up: project {stack['GCP_PROJECT']}",
            f"  Firestore {stack['FIRESTORE_EMULATOR_HOST']} (document events -> trigger router "
            f":{ports.router})  Pub/Sub {stack['PUBSUB_EMULATOR_HOST']}  "
            f"GCS {stack['STORAGE_EMULATOR_HOST']}",
            "  functions, and what feeds them:",
            *(f"  {line}" for line in wiring),
            f"  logs in {_display_path(log_dir)}/ (one per function and emulator, "
            "trigger-router.log, scheduler.log)",
            "",
            "in another shell:",
            "  make demo                               # the whole chain, watched live",
            "  make -s token USER=alice                # an ID token for user alice",
            "  make -s grant USER=alice TOKENS=10      # give alice 10 tokens",
            '  eval "$(make -s env)"                    # point tools at this stack',
            "                                           # with WEBHOOK_SECRET, to verify webhooks",
            f'  curl -s -H "Authorization: Bearer $(make -s token USER=alice)" {url}/v1/balance',
            "",
            "Ctrl-C stops everything.",
        ]
    )


def _display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _check_not_running() -> None:
    """Refuse a second stack; clear the file a killed (-9) stack left behind."""
    try:
        previous: dict[str, Any] = json.loads(STACK_FILE.read_text())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        previous = {}
    pid = previous.get("pid")
    if isinstance(pid, int) and pid != os.getpid() and pid_alive(pid):
        raise DevError(
            f"a dev stack is already running (pid {pid}, see {_display_path(STACK_FILE)}); "
            f"stop it with Ctrl-C in its terminal or `kill {pid}`"
        )
    STACK_FILE.unlink(missing_ok=True)


def _write_stack_file(content: Mapping[str, Any]) -> None:
    # Write-then-rename: readers (`make env`) never see a half-written file.
    tmp = STACK_FILE.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(content, indent=2) + "\n")
    tmp.replace(STACK_FILE)


def _remove_stack_file() -> None:
    # Only our own: a second `make dev` that failed on busy ports must not delete the file of
    # the one that is running.
    with contextlib.suppress(FileNotFoundError, ValueError, OSError):
        if json.loads(STACK_FILE.read_text()).get("pid") == os.getpid():
            STACK_FILE.unlink()


class _Stop:
    """Signal handling for SIGINT (Ctrl-C), SIGTERM and SIGHUP.

    While starting up, the first signal raises `KeyboardInterrupt` so a slow start can be
    abandoned at once (the `finally` in `run` cleans up). Once running, and during cleanup, a
    signal only sets a flag: nothing can interrupt the shutdown half-way, and repeated Ctrl-C
    is harmless.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None
        self.interrupt_startup = True

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self.event.set()
        if self.interrupt_startup:
            self.interrupt_startup = False
            raise KeyboardInterrupt


def say(message: str) -> None:
    print(message, flush=True)


def run(environ: Mapping[str, str], stop: _Stop) -> int:
    # Imported here, not at the top: `make token` imports this module for its paths and must
    # stay fast, and these pull in pydantic and the Google client libraries (~0.5 s).
    from pydantic import ValidationError

    from shared.core.settings import Settings
    from tools.stack.chain import Knobs, LocalStack, default_functions

    ports = read_ports(environ)
    try:
        knobs = Knobs.from_env(environ)
    except ValueError as exc:
        raise DevError(str(exc)) from exc
    project = environ.get("GCP_PROJECT") or DEFAULT_PROJECT
    DEV_DIR.mkdir(exist_ok=True)
    _check_not_running()

    # Made before the functions start, so `make token` and submit agree on the key.
    signer = load_or_create_signer(AUTH_DIR)
    webhook_secret = load_or_create_webhook_secret()

    # Explicit values win over the environment; the rest (bucket, topics, ...) comes from it,
    # as it will for the functions.
    hosts = emulator_env(ports.firestore, ports.pubsub, ports.gcs)
    try:
        settings = Settings(
            gcp_project=project,
            firestore_emulator_host=hosts["FIRESTORE_EMULATOR_HOST"],
            pubsub_emulator_host=hosts["PUBSUB_EMULATOR_HOST"],
            storage_emulator_host=hosts["STORAGE_EMULATOR_HOST"],
        )
    except ValidationError as exc:
        raise DevError(f"invalid settings in the environment: {exc}") from exc
    stack = stack_env(
        ports=ports,
        project=project,
        media_bucket=settings.media_bucket,
        webhook_secret=webhook_secret,
    )

    hints: dict[EmulatorKey, str] = {
        "firestore": "set FIRESTORE_PORT",
        "pubsub": "set PUBSUB_PORT",
        "gcs": "set GCS_PORT",
    }
    emulators = EmulatorSet(
        LOG_DIR,
        firestore_port=ports.firestore,
        pubsub_port=ports.pubsub,
        gcs_port=ports.gcs,
        port_hints=hints,
        functions_emulator_port=ports.router,
    )
    functions = default_functions(ports.functions(), read_sources(environ))
    local = LocalStack(
        settings,
        functions,
        router_port=ports.router,
        log_dir=LOG_DIR,
        env=function_env(environ, stack, certs_url(AUTH_DIR)),
        knobs=knobs,
        port_hints={
            "submit": "set SUBMIT_PORT",
            "generate": "set GENERATE_PORT",
            "refund": "set REFUND_PORT",
            "dead_letter": "set DEAD_LETTER_PORT",
            "sweep": "set SWEEP_PORT",
            "stitch": "set STITCH_PORT",
            "webhooks": "set WEBHOOKS_PORT",
            "router": "set TRIGGER_ROUTER_PORT",
        },
    )
    # Every port up front, so nothing starts if any one is taken.
    for process in emulators:
        process.check_port()
    local.check_ports()
    web = dev_web_server(environ, stack, signer)

    try:
        emulators.start(progress=say)
        local.start(progress=say)
        web.start(progress=say)

        children: dict[str, ManagedProcess] = {k: p for k, p in emulators.processes.items()}
        children.update(local.processes)
        logs = {key: str(child.log_path) for key, child in children.items()}
        logs["router"] = str(LOG_DIR / "trigger-router.log")
        logs["scheduler"] = str(LOG_DIR / "scheduler.log")
        _write_stack_file(
            {
                "pid": os.getpid(),
                "project": project,
                "ports": ports.all(),
                "env": stack,
                "auth_certs_url": certs_url(AUTH_DIR),
                "auth_dir": str(AUTH_DIR),
                "pids": {key: child.pid for key, child in children.items()},
                "logs": logs,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        say(summary(stack, ports, LOG_DIR, local.describe()))
        say(f"drafts page: {web.url}/  (pick a uid; docs/web.md)\n")
        say(local.accepting_line())  # the last line: from here on, work is taken
        stop.interrupt_startup = False
        return _watch(list(emulators), local.failure, stop)
    finally:
        stop.interrupt_startup = False  # from here on a signal must not cut the cleanup short
        web.stop()
        # The functions first (they hold connections to the emulators), then the emulators.
        try:
            local.stop(progress=say)
        finally:
            try:
                emulators.stop(progress=say)
            finally:
                _remove_stack_file()


def _watch(
    emulators: list[ManagedProcess], functions_failure: Callable[[], str | None], stop: _Stop
) -> int:
    """Wait for a stop signal or for anything to die; the exit status of `make dev`."""
    while not stop.event.wait(0.25):
        problem = functions_failure()
        for child in emulators:
            code = child.poll()
            if code is not None:
                problem = (
                    f"{child.name} (pid {child.pid}) exited unexpectedly with code {code}\n"
                    + child.describe_log()
                )
        if problem is not None:
            print(f"\n{problem}\nstopping the rest", file=sys.stderr, flush=True)
            return 1
    say(f"\n{stop.signal_name or 'signal'} received, stopping ...")
    return 0


def main() -> int:
    stop = _Stop()
    stop.install()
    try:
        return run(os.environ, stop)
    except KeyboardInterrupt:
        print("make dev: interrupted while starting; stopped what had started", file=sys.stderr)
        return 130
    except (DevError, StackError, WebError) as exc:  # PortInUseError is a StackError
        print(f"make dev: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
