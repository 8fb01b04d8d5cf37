"""Firestore triggers, delivered locally the way Eventarc delivers them in production.

The Firestore emulator can push document events itself: started with the hidden flag
`--functions_emulator HOST:PORT` and given a trigger registration (`register_trigger`), it POSTs
a binary-mode CloudEvent to `http://HOST:PORT/functions/projects/P/triggers/ID` for every
matching write. What it sends differs from production in ways that would break a function
written for production, so the `TriggerRouter` (listening on that HOST:PORT) repairs each event
and forwards it to the function registered for the trigger id. Tried on emulator 1.19.9:

- The body is the `DocumentEventData` protobuf *base64-encoded*; production sends raw bytes.
  Decoded here (`decode_body`).
- `ce-source` reads `//firestore.googleapis.com/projects/projects/P/databases/(default)`;
  production's is `//firestore.googleapis.com/projects/P/databases/(default)`. Rewritten.
- `update_mask` is present but always empty (the emulator builds the payload from the two
  document versions only). Production lists the changed fields, so for an update (both `value`
  and `old_value` set) the router fills it in from a diff of the two (`fill_update_mask`); the
  paths are the changed leaves, descending into maps present on both sides.
- All other headers are what production sends: `ce-id`, `ce-type`, `ce-subject`
  (`documents/creations/…`), `ce-time`, `ce-datacontenttype`, `ce-dataschema`, `ce-location`,
  `ce-project`, `ce-database`, `ce-namespace`, `ce-document`, `Content-Type:
  application/protobuf`. They are forwarded unchanged.
- `created`, `updated`, `deleted` and `written` all fire (a `written` trigger fires for each of
  the other three; `deleted` has no `value`).
- Delivery is serial (one event at a time, the next waits for the answer), the emulator waits
  at most 20 s for an answer, and it never retries a failed delivery: it only logs a warning.
  Production Eventarc retries when retries are enabled; locally the sweeper is the backstop.
- There is no call to remove a registration: a trigger lives as long as the emulator. The
  router answers 404 for ids it does not know, which the emulator logs and moves on from.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from tools.stack.logfiles import json_lines
from tools.stack.processes import LOCALHOST, StackError, ensure_port_free

FIRESTORE_EVENT_PREFIX: Final = "google.cloud.firestore.document.v1."
FIRESTORE_EVENT_TYPES: Final = frozenset(
    FIRESTORE_EVENT_PREFIX + kind for kind in ("created", "updated", "deleted", "written")
)
DEFAULT_DATABASE: Final = "(default)"
PROTOBUF: Final = "application/protobuf"

# Production's Cloud Functions event timeout is up to 540 s; a function that takes longer than
# the emulator's own 20 s wait still runs to completion and its answer is logged.
DEFAULT_FORWARD_TIMEOUT: Final = 540.0

_TRIGGER_PATH: Final = re.compile(
    r"^/functions/projects/(?P<project>[^/]+)/triggers/(?P<id>[^/?]+)$"
)
_SIMPLE_FIELD: Final = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")


# --- registration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FirestoreTrigger:
    """One Eventarc-style Firestore trigger: which writes, of which documents, fire it."""

    trigger_id: str
    event_type: str  # a full CloudEvent type, e.g. google.cloud.firestore.document.v1.updated
    document: str  # a path pattern such as `creations/{id}`
    database: str = DEFAULT_DATABASE
    namespace: str = DEFAULT_DATABASE

    def __post_init__(self) -> None:
        if self.event_type not in FIRESTORE_EVENT_TYPES:
            raise ValueError(f"{self.event_type!r} is not one of {sorted(FIRESTORE_EVENT_TYPES)}")
        if not self.trigger_id or "/" in self.trigger_id:
            raise ValueError(f"{self.trigger_id!r} is not a usable trigger id")

    def registration_body(self) -> dict[str, Any]:
        """The body of the emulator's `eventarcTrigger` call (what firebase-tools sends)."""
        return {
            "eventType": self.event_type,
            "database": self.database,
            "namespace": self.namespace,
            "document": {"value": self.document, "matchType": "PATH_PATTERN"},
        }


def registration_path(project: str, trigger_id: str) -> str:
    query = urllib.parse.urlencode({"eventarcTriggerId": trigger_id})
    return f"/emulator/v1/projects/{urllib.parse.quote(project)}/eventarcTrigger?{query}"


def register_trigger(
    firestore_host: str, project: str, trigger: FirestoreTrigger, *, timeout: float = 10.0
) -> None:
    """Register `trigger` with the Firestore emulator at `firestore_host` (`HOST:PORT`).

    Registering an id again replaces its definition. The emulator must have been started with
    `--functions_emulator` pointing at a `TriggerRouter`, or the registration is accepted and
    nothing is ever delivered.
    """
    hostname, _, port = firestore_host.rpartition(":")
    conn = http.client.HTTPConnection(hostname, int(port), timeout=timeout)
    try:
        conn.request(
            "POST",
            registration_path(project, trigger.trigger_id),
            body=json.dumps(trigger.registration_body()),
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise StackError(
            f"registering trigger {trigger.trigger_id} with the Firestore emulator at "
            f"{firestore_host} failed: {exc}"
        ) from exc
    finally:
        conn.close()
    if response.status != 200:
        raise StackError(
            f"registering trigger {trigger.trigger_id} with the Firestore emulator at "
            f"{firestore_host} failed: HTTP {response.status} {body[:200]!r}"
        )


# --- repairing one event (pure) ---------------------------------------------------------------


def production_source(project: str, database: str = DEFAULT_DATABASE) -> str:
    """The `ce-source` production Firestore events carry."""
    return f"//firestore.googleapis.com/projects/{project}/databases/{database}"


def decode_body(body: bytes) -> bytes:
    """The raw `DocumentEventData` protobuf from the emulator's base64 body.

    A body that is not base64 is passed through, so an emulator that someday sends raw bytes
    (as production does) keeps working. That test is safe: a serialized `DocumentEventData`
    starts with a field tag byte (0x0a, 0x12 or 0x1a), none of which is a base64 character, and
    an empty body (no value, no old value) is the same either way.
    """
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return body


def forward_headers(headers: Iterable[tuple[str, str]], project: str) -> dict[str, str]:
    """The headers to send the function: every `ce-*` as received, `ce-source` fixed.

    Transport headers (Host, Content-Length, Accept-Encoding, ...) are the emulator's business,
    not the event's, and are dropped; Content-Type is production's `application/protobuf`.
    """
    out: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower.startswith("ce-"):
            out[lower] = value
    out["ce-source"] = production_source(project, out.get("ce-database") or DEFAULT_DATABASE)
    out["content-type"] = PROTOBUF
    return out


def _field_path(segments: Iterable[str]) -> str:
    """Segments joined as a Firestore field path; odd names are backquoted as Firestore does."""
    parts = []
    for segment in segments:
        if _SIMPLE_FIELD.match(segment):
            parts.append(segment)
        else:
            escaped = segment.replace("\\", "\\\\").replace("`", "\\`")
            parts.append(f"`{escaped}`")
    return ".".join(parts)


def changed_field_paths(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Field paths whose values differ between two `fields` maps of Firestore `Value`s.

    Maps present on both sides are compared field by field, so a change to `request.prompt`
    is reported as that path and not as all of `request`; arrays and other values are atomic.
    """
    paths: list[str] = []

    def walk(a: Mapping[str, Any], b: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for key in sorted(set(a) | set(b)):
            path = (*prefix, key)
            if key in a and key in b:
                left, right = a[key], b[key]
                if left.WhichOneof("value_type") == right.WhichOneof("value_type") == "map_value":
                    walk(left.map_value.fields, right.map_value.fields, path)
                elif left != right:
                    paths.append(_field_path(path))
            else:
                paths.append(_field_path(path))

    walk(old, new, ())
    return paths


def fill_update_mask(payload: bytes) -> bytes:
    """`payload` with `update_mask` listing the changed fields, for an update whose mask is
    empty (see the module docstring); anything else is returned unchanged, byte for byte."""
    # Imported here: only the router needs the event types, not everything importing this module.
    from google.events.cloud.firestore import DocumentEventData
    from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

    data = DocumentEventData()._pb
    try:
        data.ParseFromString(payload)
    except DecodeError:
        return payload  # not ours to judge: the function gets it as sent, and says what it thinks
    if not (data.HasField("value") and data.HasField("old_value")):
        return payload
    if data.update_mask.field_paths:
        return payload  # the emulator filled it in itself: trust it
    data.update_mask.field_paths.extend(
        changed_field_paths(data.old_value.fields, data.value.fields)
    )
    return bytes(data.SerializeToString())


def repair_event(
    headers: Iterable[tuple[str, str]], body: bytes, project: str
) -> tuple[dict[str, str], bytes]:
    """The production-shaped (headers, body) for one event the emulator sent."""
    out_headers = forward_headers(headers, project)
    return out_headers, fill_update_mask(decode_body(body))


def parse_trigger_path(path: str) -> tuple[str, str] | None:
    """(project, trigger id) from the emulator's request path, or None for any other path."""
    match = _TRIGGER_PATH.match(urllib.parse.urlsplit(path).path)
    if match is None:
        return None
    return urllib.parse.unquote(match["project"]), urllib.parse.unquote(match["id"])


# --- the router -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What happened to one event, for logs and tests."""

    project: str
    trigger_id: str
    event_type: str
    subject: str
    event_id: str
    target: str | None
    status: int  # what the function answered; 404 unknown trigger; 502 function unreachable
    seconds: float
    error: str | None = None
    at: float = field(default_factory=time.time)

    def as_log(self) -> dict[str, Any]:
        severity = "INFO" if 200 <= self.status < 300 else "WARNING"
        message = (
            f"{self.event_type.removeprefix(FIRESTORE_EVENT_PREFIX)} {self.subject} "
            f"-> {self.trigger_id} -> {self.target or 'nowhere'}: {self.status}"
        )
        return {"severity": severity, "message": message, "component": "trigger-router"} | {
            key: value for key, value in asdict(self).items() if value is not None
        }


DeliveryObserver = Callable[[Delivery], None]


def json_lines_observer(path: Path) -> DeliveryObserver:
    """An observer appending each delivery to `path` as one JSON line (thread-safe)."""
    write = json_lines(path)
    return lambda delivery: write(delivery.as_log())


class TriggerRouter:
    """The HTTP endpoint the Firestore emulator's `--functions_emulator` flag points at.

    Runs in a thread of the calling process. `route()` maps a trigger id to a function URL
    (thread-safe, any time); each event is repaired (`repair_event`) and POSTed to the function,
    and the function's status and body are the answer the emulator gets.

        router = TriggerRouter(8086)
        router.start()
        router.route("demo", "creations-refund", "http://127.0.0.1:8082/")
    """

    def __init__(
        self,
        port: int,
        *,
        host: str = LOCALHOST,
        forward_timeout: float = DEFAULT_FORWARD_TIMEOUT,
        observer: DeliveryObserver | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.forward_timeout = forward_timeout
        self.observer = observer
        self._routes: dict[tuple[str, str], str] = {}
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, project: str, trigger_id: str, target_url: str) -> None:
        with self._lock:
            self._routes[(project, trigger_id)] = target_url

    def target(self, project: str, trigger_id: str) -> str | None:
        with self._lock:
            return self._routes.get((project, trigger_id))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def start(self) -> None:
        if self._server is not None:
            raise StackError(f"the trigger router on :{self.port} was already started")
        ensure_port_free(self.port, "the trigger router", "set TRIGGER_ROUTER_PORT")
        server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        server.daemon_threads = True  # an in-flight forward never holds up shutdown
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"trigger-router:{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, close open connections and release the port. Idempotent."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        # The emulator keeps its connection alive between events, and `shutdown()` only stops
        # new connections: without this, the emulator's next event would reach this stopped
        # router's handler thread instead of whatever listens on the port next.
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def deliver(
        self, path: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes, Delivery | None]:
        """Handle one request from the emulator: (status, body to answer, what happened)."""
        parsed = parse_trigger_path(path)
        if parsed is None:
            return 404, b"not a trigger path\n", None
        project, trigger_id = parsed
        header_list = list(headers)
        out_headers, payload = repair_event(header_list, body, project)
        target = self.target(project, trigger_id)
        started = time.monotonic()

        def record(status: int, error: str | None = None) -> Delivery:
            return Delivery(
                project=project,
                trigger_id=trigger_id,
                event_type=out_headers.get("ce-type", ""),
                subject=out_headers.get("ce-subject", ""),
                event_id=out_headers.get("ce-id", ""),
                target=target,
                status=status,
                seconds=round(time.monotonic() - started, 3),
                error=error,
            )

        if target is None:
            message = f"no function is routed for trigger {trigger_id} of project {project}"
            return 404, message.encode() + b"\n", record(404, message)
        try:
            status, answer = _post(target, out_headers, payload, self.forward_timeout)
        except (OSError, http.client.HTTPException) as exc:
            message = f"forwarding to {target} failed: {type(exc).__name__}: {exc}"
            return 502, message.encode() + b"\n", record(502, message)
        error = None if 200 <= status < 300 else answer[:500].decode("utf-8", "replace")
        return status, answer, record(status, error)

    def _observe(self, delivery: Delivery) -> None:
        if self.observer is not None:
            # A broken observer must not turn a delivered event into a failed one.
            with contextlib.suppress(Exception):
                self.observer(delivery)


def _post(url: str, headers: Mapping[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise OSError(f"only http://host:port/... targets are supported, not {url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("POST", parts.path or "/", body=body, headers=dict(headers))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _handler_for(router: TriggerRouter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the emulator keeps its connection alive

        def setup(self) -> None:
            super().setup()
            router._track(self.connection, open_=True)

        def finish(self) -> None:
            router._track(self.connection, open_=False)
            super().finish()

        def do_GET(self) -> None:
            # A liveness answer in the emulators' own style, for probes and curious humans.
            self._answer(200, b"Ok\n")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if not router.running:
                # A keep-alive connection outlives `stop()`; a request on it must not be
                # handled with this router's routes (a newer router may own the port now).
                self.close_connection = True
                self._answer(503, b"the trigger router is stopping\n")
                return
            status, answer, delivery = router.deliver(self.path, self.headers.items(), body)
            # The emulator gives up after 20 s; a late answer has nobody to go to.
            with contextlib.suppress(OSError):
                self._answer(status, answer)
            if delivery is not None:
                router._observe(delivery)

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # deliveries are reported through the observer, as JSON

    return Handler
