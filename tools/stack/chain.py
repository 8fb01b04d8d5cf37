"""The event chain on this machine: every function in its own process, wired as in production.

`LocalStack` is what `make dev` runs and what integration tests start (with free ports, and
some with recorder functions in place of the real ones). Given emulators that are already running
(the Firestore one with `--functions_emulator` pointing at `router_port`), it:

- starts each function as `functions-framework --target T --source S` on its own port, with the
  emulator hosts and the settings that name resources in its environment;
- creates the push subscriptions production has, with the real client library: each pushes to
  `http://127.0.0.1:PORT/projects/P/topics/T`, because functions-framework takes the
  CloudEvent's `source` from that path (so it reads `//pubsub.googleapis.com/projects/P/topics/T`
  as in production). The job subscription carries production's retry and dead-letter policies;
- runs the trigger router (`tools.stack.triggers`) and registers the Firestore triggers, so
  document events reach functions as production Eventarc delivers them;
- runs a clock that publishes `{}` to the sweep topic every few seconds, as the Cloud Scheduler
  job does in production.

Which functions exist and what feeds them is data (`FunctionSpec`, `Wiring`), so tests can run
the same machinery against stand-ins. Local-only knobs (`Knobs`) come from environment
variables, never from `Settings`: they are not things production has.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Self

import grpc
from google.api_core import exceptions as gexc
from google.pubsub_v1 import PublisherClient, SubscriberClient
from google.pubsub_v1.services.publisher.transports.grpc import PublisherGrpcTransport
from google.pubsub_v1.services.subscriber.transports.grpc import SubscriberGrpcTransport
from google.pubsub_v1.types import (
    DeadLetterPolicy,
    PubsubMessage,
    PushConfig,
    RetryPolicy,
    Subscription,
)

from shared.core.settings import Settings
from shared.creations.status_events import WEBHOOK_FILTER
from tools.stack.logfiles import json_lines
from tools.stack.processes import (
    DEFAULT_READY_TIMEOUT,
    LOCALHOST,
    REPO_ROOT,
    ManagedProcess,
    StackError,
    answers_anything,
    ensure_port_free,
    python_child_env,
    stop_and_say,
)
from tools.stack.topology import ensure_resources, topics
from tools.stack.triggers import (
    FirestoreTrigger,
    TriggerRouter,
    json_lines_observer,
    register_trigger,
)

PUSH_SUFFIX: Final = "-push"
# Pub/Sub's bounds for retry backoff and for a push subscription's ack deadline (= how long it
# waits for the endpoint's answer before redelivering).
MAX_BACKOFF_BOUND: Final = 600.0
MAX_ACK_DEADLINE: Final = 600

_ADMIN_TIMEOUT: Final = 10.0  # per emulator admin call; they answer in milliseconds
_CLEANUP_TIMEOUT: Final = 3.0  # when stopping, the emulator may already be gone

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def _entry(function: FunctionSpec) -> str:
    """`POST http://127.0.0.1:8080/v1/creations` for submit; a bare URL for others."""
    method, _, path = ENTRY_POINTS.get(function.name, "").partition(" ")
    return f"{method} {function.url}{path}" if path else function.url


def _count(n: int, thing: str) -> str:
    """`3 triggers`, `1 trigger`; empty for none."""
    return "" if n == 0 else f"{n} {thing}{'' if n == 1 else 's'}"


# --- what runs and what feeds it (data) ------------------------------------------------------


@dataclass(frozen=True)
class FunctionSpec:
    """One function process: `functions-framework --target {target} --source {source}`."""

    name: str  # names its log file (`{name}.log`) and its entry in `.dev/stack.json`
    target: str
    source: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"


@dataclass(frozen=True)
class PushRoute:
    """A push subscription `{topic}-push` (or `{topic}-{name}-push`) delivering `topic` to a
    function.

    With `dead_letter_topic`, a message the function failed `max_delivery_attempts` times (from
    the settings) moves there, as production's job subscription does.
    """

    topic: str
    function: str
    dead_letter_topic: str | None = None
    # A second subscription to one topic needs a name of its own (`{topic}-{name}-push`).
    name: str | None = None
    # Pub/Sub's filter, as production's subscription has it (the emulator stores it but does
    # not apply it: each handler checks the same rule first).
    filter: str = ""

    @property
    def subscription(self) -> str:
        middle = f"-{self.name}" if self.name else ""
        return f"{self.topic}{middle}{PUSH_SUFFIX}"


@dataclass(frozen=True)
class TriggerRoute:
    """A Firestore trigger and the function its events go to (through the router)."""

    trigger: FirestoreTrigger
    function: str


@dataclass(frozen=True)
class Wiring:
    pushes: tuple[PushRoute, ...] = ()
    triggers: tuple[TriggerRoute, ...] = ()
    schedule_topic: str | None = None  # the local Cloud Scheduler publishes `{}` here

    def function_names(self) -> set[str]:
        return {p.function for p in self.pushes} | {t.function for t in self.triggers}


# Every function of the suite: name -> (functions-framework target, source under the repo).
FUNCTIONS: Final[Mapping[str, tuple[str, str]]] = {
    "submit": ("submit", "functions/submit/main.py"),
    "generate": ("generate", "functions/generate/main.py"),
    "refund": ("refund", "functions/refund/main.py"),
    "dead_letter": ("dead_letter", "functions/dead_letter/main.py"),
    "sweep": ("sweep", "functions/sweep/main.py"),
    "stitch": ("stitch", "functions/stitch/main.py"),
    "webhooks": ("webhooks", "functions/webhooks/main.py"),
}

# What outside callers send to the functions no subscription or trigger feeds (for the one
# "accepting work" line `start()` prints).
ENTRY_POINTS: Final[Mapping[str, str]] = {"submit": "POST /v1/creations"}


@dataclass(frozen=True)
class Concurrency:
    """How many requests one function serves at once locally: `workers` gunicorn processes of
    `threads` threads each (functions-framework reads them as WORKERS and THREADS).

    `threads` is at least 2: with one thread gunicorn switches to its sync worker, which after
    each answer lingers up to 2 s for the caller to close the connection, and the Pub/Sub
    emulator's pusher keeps connections alive, so every push would cost those 2 s.
    """

    workers: int
    threads: int

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 1-{MAX_WORKERS}, got {self.workers}")
        if not 2 <= self.threads <= MAX_THREADS:
            raise ValueError(f"threads must be 2-{MAX_THREADS}, got {self.threads}")

    @property
    def in_flight(self) -> int:
        return self.workers * self.threads

    def env(self) -> dict[str, str]:
        return {"WORKERS": str(self.workers), "THREADS": str(self.threads)}


MAX_WORKERS: Final = 16
MAX_THREADS: Final = 64

# How each function runs locally: the one place that says it (override with
# `<FUNCTION>_WORKERS` / `<FUNCTION>_THREADS`, e.g. GENERATE_WORKERS=3). Production runs one
# request per instance (terraform: max_instance_request_concurrency = 1) and scales out to
# `max_instances`; a worker process here stands for an instance, its threads for requests the
# one process interleaves on the GIL. Measured on 2 cores under a burst of 200 image
# creations (docs/local-stack.md):
# - generate and stitch are fed by push subscriptions, and the Pub/Sub emulator has at most 2
#   pushes in flight per subscription: 2 processes serve both at once without sharing a GIL,
#   and more would idle;
# - submit takes outside traffic, many callers at once, mostly waiting on Firestore;
# - refund, dead_letter and sweep do little per event and are rarely busy;
# - webhooks mostly waits on receivers (up to WEBHOOK_TIMEOUT_SECONDS each): threads suffice.
CONCURRENCY: Final[Mapping[str, Concurrency]] = {
    "submit": Concurrency(workers=1, threads=8),
    "generate": Concurrency(workers=2, threads=2),
    "stitch": Concurrency(workers=2, threads=2),
    "refund": Concurrency(workers=1, threads=2),
    "dead_letter": Concurrency(workers=1, threads=2),
    "sweep": Concurrency(workers=1, threads=2),
    "webhooks": Concurrency(workers=1, threads=4),
}


def concurrency_from_env(
    environ: Mapping[str, str], defaults: Mapping[str, Concurrency] = CONCURRENCY
) -> dict[str, Concurrency]:
    """`defaults`, with `<FUNCTION>_WORKERS` / `<FUNCTION>_THREADS` from `environ` applied."""
    chosen: dict[str, Concurrency] = {}
    for name, default in defaults.items():
        values = {"workers": default.workers, "threads": default.threads}
        for part in values:
            variable = f"{name.upper()}_{part.upper()}"
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            try:
                values[part] = int(raw)
            except ValueError:
                raise ValueError(f"{variable}={raw!r} is not a whole number") from None
        try:
            chosen[name] = Concurrency(**values)
        except ValueError as exc:
            raise ValueError(
                f"{name}: {exc} ({name.upper()}_WORKERS, {name.upper()}_THREADS)"
            ) from None
    return chosen


def default_functions(
    ports: Mapping[str, int], sources: Mapping[str, Path] | None = None
) -> list[FunctionSpec]:
    """The suite's functions on `ports` (keyed like `FUNCTIONS`); `sources` overrides files."""
    missing = set(FUNCTIONS) - set(ports)
    if missing:
        raise ValueError(f"no port for {sorted(missing)}")
    overrides = dict(sources or {})
    return [
        FunctionSpec(
            name=name,
            target=target,
            source=overrides.get(name, REPO_ROOT / source),
            port=ports[name],
        )
        for name, (target, source) in FUNCTIONS.items()
    ]


def default_wiring(settings: Settings) -> Wiring:
    """What feeds each function in production."""
    return Wiring(
        pushes=(
            PushRoute(
                settings.generate_topic, "generate", dead_letter_topic=settings.dead_letter_topic
            ),
            PushRoute(
                settings.stitch_topic, "stitch", dead_letter_topic=settings.dead_letter_topic
            ),
            PushRoute(settings.dead_letter_topic, "dead_letter"),
            PushRoute(settings.sweep_topic, "sweep"),
            # No dead letter, as in production: the sweeper refunds what still fails here.
            PushRoute(settings.status_topic, "refund"),
            # No dead letter either: the handler gives an event up itself, after
            # WEBHOOK_RETRY_SECONDS, onto WEBHOOK_EXHAUSTED_TOPIC.
            PushRoute(settings.status_topic, "webhooks", name="webhooks", filter=WEBHOOK_FILTER),
        ),
        schedule_topic=settings.sweep_topic,
    )


@dataclass(frozen=True)
class Knobs:
    """Local-only tuning, read from the environment by `from_env`.

    Production's retry backoff is 10-600 s; locally a failed job should come back in about a
    second so a developer sees retries and dead-lettering happen while they watch.
    """

    sweep_interval_seconds: float = 15.0  # SWEEP_INTERVAL_SECONDS; 0 turns the clock off
    retry_min_backoff_seconds: float = 1.0  # RETRY_MIN_BACKOFF_SECONDS
    retry_max_backoff_seconds: float = 10.0
    ack_deadline_seconds: int = MAX_ACK_DEADLINE  # like production: a job may take minutes
    # Per function name; a function not named here gets functions-framework's own default.
    concurrency: Mapping[str, Concurrency] = field(default_factory=lambda: dict(CONCURRENCY))

    def __post_init__(self) -> None:
        if self.sweep_interval_seconds < 0:
            raise ValueError("the sweep interval cannot be negative")
        if not 0 <= self.retry_min_backoff_seconds <= MAX_BACKOFF_BOUND:
            raise ValueError(f"the minimum retry backoff must be 0-{MAX_BACKOFF_BOUND:.0f} s")
        if not 0 <= self.retry_max_backoff_seconds <= MAX_BACKOFF_BOUND:
            raise ValueError(f"the maximum retry backoff must be 0-{MAX_BACKOFF_BOUND:.0f} s")
        if not 10 <= self.ack_deadline_seconds <= MAX_ACK_DEADLINE:
            raise ValueError(f"the ack deadline must be 10-{MAX_ACK_DEADLINE} s")

    @property
    def backoff(self) -> tuple[float, float]:
        """(minimum, maximum): the maximum never below the minimum, which Pub/Sub rejects."""
        low = self.retry_min_backoff_seconds
        return low, max(low, self.retry_max_backoff_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Knobs:
        def number(name: str, default: float) -> float:
            raw = environ.get(name, "").strip()
            if not raw:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number of seconds") from None

        defaults = cls()
        try:
            knobs = cls(
                sweep_interval_seconds=number(
                    "SWEEP_INTERVAL_SECONDS", defaults.sweep_interval_seconds
                ),
                retry_min_backoff_seconds=number(
                    "RETRY_MIN_BACKOFF_SECONDS", defaults.retry_min_backoff_seconds
                ),
            )
        except ValueError as exc:
            raise ValueError(f"{exc} (SWEEP_INTERVAL_SECONDS, RETRY_MIN_BACKOFF_SECONDS)") from None
        return dataclasses.replace(knobs, concurrency=concurrency_from_env(environ))


# --- pure builders ------------------------------------------------------------------------------


def push_endpoint(function: FunctionSpec, project: str, topic: str) -> str:
    """Where a push subscription delivers: the path becomes the CloudEvent's `source`."""
    return f"{function.url}/projects/{project}/topics/{topic}"


def push_subscription(
    project: str,
    route: PushRoute,
    endpoint: str,
    *,
    max_delivery_attempts: int,
    knobs: Knobs,
) -> Subscription:
    """The subscription `route` needs, as the Pub/Sub API takes it."""
    low, high = knobs.backoff
    subscription = Subscription(
        name=f"projects/{project}/subscriptions/{route.subscription}",
        topic=f"projects/{project}/topics/{route.topic}",
        push_config=PushConfig(push_endpoint=endpoint),
        ack_deadline_seconds=knobs.ack_deadline_seconds,
        filter=route.filter,
        retry_policy=RetryPolicy(
            minimum_backoff=dt.timedelta(seconds=low), maximum_backoff=dt.timedelta(seconds=high)
        ),
    )
    if route.dead_letter_topic is not None:
        subscription.dead_letter_policy = DeadLetterPolicy(
            dead_letter_topic=f"projects/{project}/topics/{route.dead_letter_topic}",
            max_delivery_attempts=max_delivery_attempts,
        )
    return subscription


def settings_env(settings: Settings) -> dict[str, str]:
    """The variables that make a function's `Settings` name the same resources as the wiring."""
    env = {
        "GCP_PROJECT": settings.gcp_project,
        "GOOGLE_CLOUD_PROJECT": settings.gcp_project,  # read by the client libraries
        "MEDIA_BUCKET": settings.media_bucket,
        "GENERATE_TOPIC": settings.generate_topic,
        "STITCH_TOPIC": settings.stitch_topic,
        "DEAD_LETTER_TOPIC": settings.dead_letter_topic,
        "SWEEP_TOPIC": settings.sweep_topic,
        "STATUS_TOPIC": settings.status_topic,
        "WEBHOOK_EXHAUSTED_TOPIC": settings.webhook_exhausted_topic,
        "MAX_DELIVERY_ATTEMPTS": str(settings.max_delivery_attempts),
    }
    hosts = {
        "FIRESTORE_EMULATOR_HOST": settings.firestore_emulator_host,
        "PUBSUB_EMULATOR_HOST": settings.pubsub_emulator_host,
        "STORAGE_EMULATOR_HOST": settings.storage_emulator_host,
    }
    env.update({name: value for name, value in hosts.items() if value})
    return env


# What every local function process gets unless `base` says otherwise: settings that exist
# for this machine only (tests/static holds them out of production). Webhooks may go to
# http://127.0.0.1, where a developer's or a test's receiver listens.
LOCAL_ONLY_ENV: Final[Mapping[str, str]] = {"WEBHOOK_ALLOW_LOOPBACK": "true"}


def process_env(base: Mapping[str, str], settings: Settings) -> dict[str, str]:
    """A function process's environment: `base`, the settings' names, `import shared` working."""
    return python_child_env({**LOCAL_ONLY_ENV, **base, **settings_env(settings)})


def functions_framework_bin() -> Path:
    """The functions-framework launcher of the running interpreter's venv (else the repo's)."""
    beside = Path(sys.executable).parent / "functions-framework"
    return beside if beside.exists() else REPO_ROOT / ".venv" / "bin" / "functions-framework"


def describe_wiring(
    functions: Sequence[FunctionSpec],
    wiring: Wiring,
    *,
    settings: Settings,
    knobs: Knobs,
    router_port: int,
) -> list[str]:
    """One line per function: where it listens and what feeds it (for `make dev`'s summary)."""
    low, high = knobs.backoff
    width = max((len(f.name) for f in functions), default=0)
    lines = []
    for function in functions:
        feeds = []
        for push in wiring.pushes:
            if push.function != function.name:
                continue
            text = f"Pub/Sub {push.topic} (push {push.subscription}, retry {low:g}-{high:g} s"
            if push.dead_letter_topic:
                text += (
                    f", dead letter after {settings.max_delivery_attempts} attempts"
                    f" -> {push.dead_letter_topic}"
                )
            text += ")"
            if push.topic == wiring.schedule_topic and knobs.sweep_interval_seconds > 0:
                text += f" <- local scheduler every {knobs.sweep_interval_seconds:g} s"
            feeds.append(text)
        for route in wiring.triggers:
            if route.function == function.name:
                trigger = route.trigger
                kind = trigger.event_type.rsplit(".", 1)[-1]
                feeds.append(
                    f"Firestore trigger {trigger.trigger_id} ({kind} {trigger.document}) "
                    f"via the router on :{router_port}"
                )
        source = "HTTP clients" if not feeds else "; ".join(feeds)
        lines.append(f"  {function.name:<{width}}  {function.url}  <- {source}")
    return lines


# --- Pub/Sub admin ------------------------------------------------------------------------------


@contextlib.contextmanager
def _pubsub(host: str) -> Iterator[tuple[PublisherClient, SubscriberClient]]:
    # The emulator speaks plaintext gRPC; a transport given its own channel ignores credentials.
    publisher_channel = grpc.insecure_channel(host)
    subscriber_channel = grpc.insecure_channel(host)
    try:
        yield (
            PublisherClient(transport=PublisherGrpcTransport(channel=publisher_channel)),
            SubscriberClient(transport=SubscriberGrpcTransport(channel=subscriber_channel)),
        )
    finally:
        publisher_channel.close()
        subscriber_channel.close()


class Scheduler:
    """Publishes `{}` to `topic` every `interval` seconds, as a Cloud Scheduler job does.

    The first tick comes one interval after `start()`, as a schedule's would. A failed publish
    (emulator busy or gone) is reported to `on_tick` and the clock keeps going.
    """

    def __init__(
        self,
        pubsub_host: str,
        project: str,
        topic: str,
        interval: float,
        *,
        on_tick: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if interval <= 0:
            raise ValueError("a schedule needs a positive interval")
        self.topic_path = f"projects/{project}/topics/{topic}"
        self.interval = interval
        self._host = pubsub_host
        self._on_tick = on_tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._channel: grpc.Channel | None = None
        self._client: PublisherClient | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._channel = grpc.insecure_channel(self._host)
        self._client = PublisherClient(transport=PublisherGrpcTransport(channel=self._channel))
        self._thread = threading.Thread(target=self._run, name="local-scheduler", daemon=True)
        self._thread.start()

    def publish_once(self) -> str:
        """Publish one tick now; the message id."""
        if self._client is None:
            raise RuntimeError("the scheduler is not started")
        response = self._client.publish(
            topic=self.topic_path, messages=[PubsubMessage(data=b"{}")], timeout=_ADMIN_TIMEOUT
        )
        return str(response.message_ids[0])

    def _run(self) -> None:
        # Waiting on the stop event *is* the schedule: it wakes at once when stopped.
        while not self._stop.wait(self.interval):
            record: dict[str, Any] = {"component": "scheduler", "topic": self.topic_path}
            try:
                record |= {"severity": "INFO", "message_id": self.publish_once()}
            except Exception as exc:  # a missed tick is reported; the next one may work
                record |= {"severity": "WARNING", "error": f"{type(exc).__name__}: {exc}"}
            record["message"] = f"tick -> {self.topic_path}"
            record["at"] = time.time()
            if self._on_tick is not None:
                with contextlib.suppress(Exception):
                    self._on_tick(record)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=_ADMIN_TIMEOUT + 1)
            self._thread = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._client = None


# --- the stack ----------------------------------------------------------------------------------


@dataclass
class _Started:
    """What `start()` got done, so `stop()` undoes exactly that."""

    processes: list[ManagedProcess] = field(default_factory=list)
    subscriptions: list[str] = field(default_factory=list)
    router: TriggerRouter | None = None
    scheduler: Scheduler | None = None


class LocalStack:
    """The functions, their subscriptions, triggers and clock, against running emulators.

        with LocalStack(settings, default_functions(ports), router_port=8086, log_dir=logs):
            ...  # publish, write documents, call submit; the chain runs

    `settings` must point at the emulators (their hosts set) and name the project; `env` is
    the base environment of the function processes (default: this process's), to which the
    settings' names, `PYTHONPATH` and the emulator hosts are added. The Firestore emulator must
    have been started with `--functions_emulator 127.0.0.1:{router_port}` for triggers to fire
    (`EmulatorSet(functions_emulator_port=...)`). `start()` also provisions the topics and the
    bucket (`ensure_resources`, idempotent).
    """

    def __init__(
        self,
        settings: Settings,
        functions: Sequence[FunctionSpec],
        *,
        router_port: int,
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        wiring: Wiring | None = None,
        knobs: Knobs | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        port_hints: Mapping[str, str] | None = None,
    ) -> None:
        if not (
            settings.firestore_emulator_host
            and settings.pubsub_emulator_host
            and settings.storage_emulator_host
        ):
            raise ValueError("LocalStack runs against the emulators: set all three emulator hosts")
        self.settings = settings
        self.functions = list(functions)
        self.wiring = default_wiring(settings) if wiring is None else wiring
        self.knobs = knobs or Knobs()
        self.router_port = router_port
        self.log_dir = log_dir
        self.ready_timeout = ready_timeout
        self._check_definitions()
        hints = dict(port_hints or {})
        base_env = process_env(os.environ if env is None else env, settings)
        self.processes: dict[str, ManagedProcess] = {
            function.name: ManagedProcess(
                f"the {function.name} function",
                [
                    functions_framework_bin(),
                    f"--target={function.target}",
                    f"--source={function.source}",
                    f"--host={LOCALHOST}",
                    f"--port={function.port}",
                ],
                port=function.port,
                log_path=log_dir / f"{function.name}.log",
                env=self._function_env(base_env, function.name),
                cwd=REPO_ROOT,
                # Any HTTP answer means it serves: an event function answers GET / with a 405.
                ready_check=answers_anything,
                port_hint=hints.get(function.name),
            )
            for function in self.functions
        }
        self._router_hint = hints.get("router")
        self._by_name = {function.name: function for function in self.functions}
        self._started = _Started()

    def _function_env(self, base: Mapping[str, str], name: str) -> dict[str, str]:
        """`base` with the function's WORKERS and THREADS (`Knobs.concurrency`), if it has any."""
        concurrency = self.knobs.concurrency.get(name)
        return {**base, **concurrency.env()} if concurrency else dict(base)

    def _check_definitions(self) -> None:
        names = [f.name for f in self.functions]
        if len(set(names)) != len(names):
            raise ValueError(f"function names must be unique: {names}")
        ports = [f.port for f in self.functions]
        if self.wiring.triggers:
            ports.append(self.router_port)
        if len(set(ports)) != len(ports):
            raise ValueError(f"every function and the router need their own port: {ports}")
        unknown = self.wiring.function_names() - set(names)
        if unknown:
            raise ValueError(f"the wiring feeds functions that are not in the stack: {unknown}")
        for function in self.functions:
            if not function.source.is_file():
                raise StackError(
                    f"the {function.name} function's source {function.source} does not exist"
                )

    # --- lifecycle -----------------------------------------------------------------------------

    def check_ports(self) -> None:
        """Raise `PortInUseError` if any port the stack needs is taken."""
        for process in self.processes.values():
            process.check_port()
        if self.wiring.triggers:
            ensure_port_free(self.router_port, "the trigger router", self._router_hint)

    def start(self, progress: Progress | None = None) -> None:
        """Start everything; on any failure stop what was started and re-raise."""
        say = progress or _quiet
        self.check_ports()
        try:
            self._start(say)
        except BaseException:
            self.stop()
            raise

    def _start(self, say: Progress) -> None:
        settings = self.settings
        t0 = time.monotonic()
        provisioned = ensure_resources(settings)
        say(
            f"resources ready in {time.monotonic() - t0:.1f} s ({len(provisioned.created)} "
            f"created): topics {', '.join(topics(settings))}, bucket {settings.media_bucket}"
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # The functions the chain feeds boot first, in parallel (each takes a second or two to
        # import), and the wiring is made meanwhile: a push to one still booting would be
        # retried, and nothing is published before an outside caller has been served. Only
        # then do the functions that take outside traffic start: none of them can answer
        # before the subscriptions and triggers its work needs exist.
        fed = self.wiring.function_names()
        inner = [name for name in self.processes if name in fed]
        outer = [name for name in self.processes if name not in fed]
        self._launch(inner, say)
        if self.wiring.triggers:
            router = TriggerRouter(
                self.router_port,
                observer=json_lines_observer(self.log_dir / "trigger-router.log"),
            )
            router.start()
            self._started.router = router
            say(f"trigger router on :{self.router_port} (log: trigger-router.log)")
        self._register_triggers(say)
        self._create_subscriptions(say)
        self._launch(outer, say)
        for name in [*inner, *outer]:
            process = self.processes[name]
            seconds = process.wait_ready(self.ready_timeout)
            say(f"the {name} function on :{process.port} ready in {seconds:.1f} s")

        if self.wiring.schedule_topic and self.knobs.sweep_interval_seconds > 0:
            scheduler = Scheduler(
                str(settings.pubsub_emulator_host),
                settings.gcp_project,
                self.wiring.schedule_topic,
                self.knobs.sweep_interval_seconds,
                on_tick=json_lines(self.log_dir / "scheduler.log"),
            )
            scheduler.start()
            self._started.scheduler = scheduler
            say(
                f"scheduler: {{}} -> {self.wiring.schedule_topic} every "
                f"{self.knobs.sweep_interval_seconds:g} s (log: scheduler.log)"
            )

    def _launch(self, names: Sequence[str], say: Progress) -> None:
        for name in names:
            process = self.processes[name]
            say(f"starting the {name} function on :{process.port} ...")
            self._started.processes.append(process)
            process.launch()  # not waited for here: they boot in parallel

    def accepting_line(self) -> str:
        """The one line that says the stack takes work: where, and what was wired first."""
        fed = self.wiring.function_names()
        entries = [_entry(function) for function in self.functions if function.name not in fed]
        wired = [
            _count(len(self.wiring.pushes), "push subscription"),
            _count(len(self.wiring.triggers), "trigger"),
        ]
        chain = ", ".join(part for part in wired if part) or "nothing to wire"
        return (
            f"accepting work: {', '.join(entries) or 'no HTTP entry point'} (chain wired: {chain})"
        )

    def _register_triggers(self, say: Progress) -> None:
        router = self._started.router
        project = self.settings.gcp_project
        for route in self.wiring.triggers:
            if router is None:  # started in `_start` whenever there are triggers
                raise RuntimeError("the trigger router is not running")
            router.route(project, route.trigger.trigger_id, self._by_name[route.function].url)
            register_trigger(
                str(self.settings.firestore_emulator_host),
                project,
                route.trigger,
                timeout=_ADMIN_TIMEOUT,
            )
            say(
                f"Firestore trigger {route.trigger.trigger_id} "
                f"({route.trigger.event_type.rsplit('.', 1)[-1]} {route.trigger.document}) "
                f"-> {route.function}"
            )

    def _create_subscriptions(self, say: Progress) -> None:
        project = self.settings.gcp_project
        with _pubsub(str(self.settings.pubsub_emulator_host)) as (_publisher, subscriber):
            for route in self.wiring.pushes:
                function = self._by_name[route.function]
                subscription = push_subscription(
                    project,
                    route,
                    push_endpoint(function, project, route.topic),
                    max_delivery_attempts=self.settings.max_delivery_attempts,
                    knobs=self.knobs,
                )
                # One left by an earlier stack on these emulators would push to a dead port.
                with contextlib.suppress(gexc.NotFound):
                    subscriber.delete_subscription(
                        subscription=subscription.name, timeout=_ADMIN_TIMEOUT
                    )
                subscriber.create_subscription(request=subscription, timeout=_ADMIN_TIMEOUT)
                self._started.subscriptions.append(subscription.name)
                say(f"push subscription {route.subscription}: {route.topic} -> {route.function}")

    def stop(self, progress: Progress | None = None) -> None:
        """Stop everything `start()` started, in reverse order. Idempotent; best effort."""
        say = progress or _quiet
        started, self._started = self._started, _Started()
        errors: list[BaseException] = []
        if started.scheduler is not None:
            started.scheduler.stop()
        if started.subscriptions:
            # First, so nothing is pushed to functions that are going away. Short timeouts:
            # when a stack is torn down because an emulator died, there is no one to ask.
            try:
                with _pubsub(str(self.settings.pubsub_emulator_host)) as (_pub, subscriber):
                    for name in started.subscriptions:
                        with contextlib.suppress(gexc.GoogleAPICallError, gexc.RetryError):
                            subscriber.delete_subscription(
                                subscription=name, timeout=_CLEANUP_TIMEOUT
                            )
            except Exception as exc:  # cleanup goes on; reported at the end
                errors.append(exc)
        # Stopped together: each waits for its process group to exit (up to its timeout).
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, len(started.processes))
        ) as pool:
            futures = [pool.submit(stop_and_say, p, say) for p in started.processes]
            for future in concurrent.futures.as_completed(futures):
                error = future.exception()
                if error is not None:
                    errors.append(error)
        if started.router is not None:
            started.router.stop()
        if errors:
            raise errors[0]

    # --- while running ------------------------------------------------------------------------

    def failure(self) -> str | None:
        """Why the stack is broken (a process exited, a thread died), or None while healthy."""
        for process in self._started.processes:
            code = process.poll()
            if code is not None:
                return (
                    f"{process.name} (pid {process.pid}) exited unexpectedly with code {code}\n"
                    + process.describe_log()
                )
        router = self._started.router
        if router is not None and not router.running:
            return f"the trigger router on :{router.port} stopped"
        scheduler = self._started.scheduler
        if scheduler is not None and not scheduler.running:
            return "the local scheduler stopped"
        return None

    def kill(self, name: str) -> None:
        """Crash one piece, for fault tests: SIGKILL a function's whole process group (no
        graceful shutdown, in-flight work dies with it), or, for `router`, stop the trigger
        router at once (it is a thread of this process). `restart(name)` brings it back."""
        if name == "router":
            self._router().stop()
            return
        pid = self.processes[name].pid
        if pid is None:
            raise StackError(f"the {name} function was never started")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # a session leader's pid is its group's id

    def restart(self, name: str) -> float:
        """Start a killed (or running) piece again where it was; seconds until it serves.
        The subscriptions and triggers that feed it are untouched: they find it on its port."""
        started = time.monotonic()
        if name == "router":
            router = self._router()
            router.stop()
            router.start()
            return time.monotonic() - started
        return self.processes[name].restart(self.ready_timeout)

    def _router(self) -> TriggerRouter:
        router = self._started.router
        if router is None:
            raise StackError("the stack has no trigger router running")
        return router

    def url(self, name: str) -> str:
        return self._by_name[name].url

    def describe(self) -> list[str]:
        return describe_wiring(
            self.functions,
            self.wiring,
            settings=self.settings,
            knobs=self.knobs,
            router_port=self.router_port,
        )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()
