"""A local stand-in for Google's generative media APIs, for driving the real google-genai SDK.

It answers the paths google-genai 3.6.1 calls (found by running the SDK against it):

Vertex AI (base `/v1beta1/projects/P/locations/L/publishers/google/models/M`)
    POST `:predictLongRunning`      Veo start; answers `{"name": ".../operations/ID"}`
    POST `:fetchPredictOperation`   Veo status, body `{"operationName": name}`
    POST `:predict`                 Imagen, `parameters.sampleCount` images
    POST `:generateContent`         Gemini image models, `inlineData` parts
Gemini Developer API (base `/v1/models/M`; `/v1beta` accepted too)
    POST `:generateContent`, GET `/models/M/operations/ID` (Veo status),
    GET `/files/ID:download?alt=media` (a generated video)
OAuth
    POST `/token`: a service-account token exchange, so production's Application Default
    Credentials flow runs unchanged against it (see `service_account_file`).

Every request is recorded (method, path, query, JSON body). By default each action succeeds
with the real media bytes given to the double; `script(action, *replies)` queues answers
that are played, in order, before the default (`always` repeats one answer); `veo` says how
Veo operations end. A Veo start
with `storageUri` (Vertex) writes the MP4 to `{storageUri}{operation id}/sample_0.mp4` through
`write_gcs`, as Veo writes into the caller's bucket.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

Action = Literal[
    "predictLongRunning",
    "fetchPredictOperation",
    "getOperation",
    "predict",
    "generateContent",
    "download",
    "token",
]

_VERTEX_MODEL = re.compile(
    r"^/v1beta1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):(?P<verb>\w+)$"
)
_DEVELOPER_MODEL = re.compile(r"^/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<verb>\w+)$")
_DEVELOPER_OPERATION = re.compile(
    r"^/v1(?:beta)?/(?P<name>models/(?P<model>[^/:]+)/operations/[^/]+)$"
)
_DEVELOPER_DOWNLOAD = re.compile(r"^/v1(?:beta)?/files/(?P<file>[^/:]+):download$")
DEVELOPER_FILES_URL = "https://generativelanguage.googleapis.com/v1beta/files"
VERTEX_VIDEO_RESPONSE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
DEVELOPER_VIDEO_RESPONSE = (
    "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    action: str
    model: str | None


@dataclass(frozen=True)
class Reply:
    status: int = 200
    json: Any = None
    content: bytes | None = None  # raw bytes instead of JSON (downloads)
    content_type: str = "application/json"


def api_error(status: int, rpc_status: str, message: str) -> Reply:
    """An error answer shaped like Google's: `{"error": {code, message, status}}`."""
    return Reply(status, {"error": {"code": status, "message": message, "status": rpc_status}})


@dataclass
class VeoScript:
    """How Veo operations behave: checks answered "running" first, then the outcome."""

    polls_before_done: int = 0
    outcome: Literal["video", "filtered", "error"] = "video"
    error: dict[str, Any] = field(
        default_factory=lambda: {"code": 3, "message": "Unsupported aspect ratio."}
    )
    filtered_reasons: list[str] = field(
        default_factory=lambda: ["The prompt violates the usage guidelines (code 58061214)."]
    )


@dataclass
class _Operation:
    name: str
    model: str
    vertex: bool
    storage_uri: str | None
    checks: int = 0


class GenAIDouble:
    def __init__(
        self,
        *,
        png: bytes,
        mp4: bytes,
        write_gcs: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.png = png
        self.mp4 = mp4
        self.veo = VeoScript()
        # Imagen: reasons of images withheld from each answer (those replace real images).
        self.imagen_filtered: list[str] = []
        self._write_gcs = write_gcs
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._scripted: defaultdict[str, deque[Reply]] = defaultdict(deque)
        self._always: dict[str, Reply] = {}
        self._operations: dict[str, _Operation] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- what tests set and read ----------------------------------------------------------

    def script(self, action: Action, *replies: Reply) -> None:
        """Answer the next requests of `action` with `replies`, in order, then as by default."""
        with self._lock:
            self._scripted[action].extend(replies)

    def always(self, action: Action, reply: Reply | None) -> None:
        """Answer every request of `action` with `reply` (after any scripted ones); None stops."""
        with self._lock:
            if reply is None:
                self._always.pop(action, None)
            else:
                self._always[action] = reply

    def add_operation(self, name: str, model: str, *, vertex: bool) -> None:
        """A Veo operation started elsewhere (e.g. by an earlier process), to be resumed."""
        with self._lock:
            self._operations[name] = _Operation(name, model, vertex, storage_uri=None)

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def calls(self, action: Action) -> list[Recorded]:
        return [r for r in self.requests if r.action == action]

    # --- answering --------------------------------------------------------------------------

    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query))
        action, model, captures = _route(method, parts.path)
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = dict(parse_qsl(raw.decode(errors="replace")))  # the token form
        with self._lock:
            self._requests.append(Recorded(method, parts.path, query, body, headers, action, model))
            scripted = self._scripted[action]
            if scripted:
                return scripted.popleft()
            if action in self._always:
                return self._always[action]
            return self._default(action, model, captures, body)

    def _default(
        self, action: str, model: str | None, captures: dict[str, str], body: Any
    ) -> Reply:
        if action == "token":
            return Reply(
                json={"access_token": "double-token", "expires_in": 3600, "token_type": "Bearer"}
            )
        if action == "predictLongRunning":
            return self._start_operation(str(model), captures, body)
        if action == "fetchPredictOperation":
            return self._check_operation(str((body or {}).get("operationName")))
        if action == "getOperation":
            return self._check_operation(captures["name"])
        if action == "predict":
            return self._imagen(body)
        if action == "generateContent":
            return Reply(json=_gemini_image_answer(self.png, str(model)))
        if action == "download":
            return Reply(content=self.mp4, content_type="video/mp4")
        return api_error(404, "NOT_FOUND", f"The double does not answer {action}.")

    def _start_operation(self, model: str, captures: dict[str, str], body: Any) -> Reply:
        op_id = uuid.uuid4().hex[:12]
        if "project" in captures:
            base = f"projects/{captures['project']}/locations/{captures['location']}"
            name = f"{base}/publishers/google/models/{model}/operations/{op_id}"
            storage = ((body or {}).get("parameters") or {}).get("storageUri")
            self._operations[name] = _Operation(name, model, True, storage)
        else:
            name = f"models/{model}/operations/{op_id}"
            self._operations[name] = _Operation(name, model, False, None)
        return Reply(json={"name": name})

    def _check_operation(self, name: str) -> Reply:
        operation = self._operations.get(name)
        if operation is None:
            return api_error(404, "NOT_FOUND", f"Operation {name} not found.")
        operation.checks += 1
        if operation.checks <= self.veo.polls_before_done:
            return Reply(json={"name": name, "metadata": {"checks": operation.checks}})
        if self.veo.outcome == "error":
            return Reply(json={"name": name, "done": True, "error": dict(self.veo.error)})
        if self.veo.outcome == "filtered":
            result: dict[str, Any] = {
                "raiMediaFilteredCount": 1,
                "raiMediaFilteredReasons": list(self.veo.filtered_reasons),
            }
        elif operation.vertex:
            result = {"videos": [self._vertex_video(operation)], "raiMediaFilteredCount": 0}
        else:
            file_id = uuid.uuid4().hex[:10]
            uri = f"{DEVELOPER_FILES_URL}/{file_id}:download?alt=media"
            result = {"generatedSamples": [{"video": {"uri": uri}}]}
        if operation.vertex:
            response = {"@type": VERTEX_VIDEO_RESPONSE, **result}
        else:
            response = {"@type": DEVELOPER_VIDEO_RESPONSE, "generateVideoResponse": result}
        return Reply(json={"name": name, "done": True, "response": response})

    def _vertex_video(self, operation: _Operation) -> dict[str, str]:
        if operation.storage_uri is None or self._write_gcs is None:
            return {"bytesBase64Encoded": _b64(self.mp4), "mimeType": "video/mp4"}
        op_id = operation.name.rsplit("/", 1)[-1]
        uri = f"{operation.storage_uri.rstrip('/')}/{op_id}/sample_0.mp4"
        self._write_gcs(uri, self.mp4)
        return {"gcsUri": uri, "mimeType": "video/mp4"}

    def _imagen(self, body: Any) -> Reply:
        wanted = int(((body or {}).get("parameters") or {}).get("sampleCount") or 1)
        filtered = self.imagen_filtered[:wanted]
        images = [
            {"bytesBase64Encoded": _b64(self.png), "mimeType": "image/png"}
            for _ in range(wanted - len(filtered))
        ]
        withheld = [{"raiFilteredReason": reason} for reason in filtered]
        predictions = images + withheld
        return Reply(json={"predictions": predictions} if predictions else {})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                reply = double._answer(self.command, self.path, dict(self.headers.items()), raw)
                payload = (
                    reply.content
                    if reply.content is not None
                    else json.dumps(reply.json if reply.json is not None else {}).encode()
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the recorded requests say everything

        return Handler


def _route(method: str, path: str) -> tuple[str, str | None, dict[str, str]]:
    """(action, model, captured path parts) for a request path."""
    if method == "POST" and path == "/token":
        return "token", None, {}
    match = _VERTEX_MODEL.match(path) or _DEVELOPER_MODEL.match(path)
    if method == "POST" and match:
        return match["verb"], match["model"], match.groupdict()
    match = _DEVELOPER_OPERATION.match(path)
    if method == "GET" and match:
        return "getOperation", match["model"], match.groupdict()
    match = _DEVELOPER_DOWNLOAD.match(path)
    if method == "GET" and match:
        return "download", None, match.groupdict()
    return "unknown", None, {}


def _gemini_image_answer(png: bytes, model: str) -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"inlineData": {"mimeType": "image/png", "data": _b64(png)}}],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "modelVersion": model,
        "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 1290},
    }


def gemini_image_reply(png: bytes, model: str) -> Reply:
    """The default generateContent answer (one image), to script between other answers."""
    return Reply(json=_gemini_image_answer(png, model))


def gemini_blocked_answer(finish_reason: str = "IMAGE_SAFETY") -> Reply:
    """A generateContent answer whose only candidate was withheld (no parts)."""
    return Reply(json={"candidates": [{"finishReason": finish_reason, "index": 0}]})


def gemini_prompt_blocked_answer(block_reason: str = "PROHIBITED_CONTENT") -> Reply:
    """A generateContent answer refusing the prompt itself (no candidates)."""
    return Reply(json={"promptFeedback": {"blockReason": block_reason}})


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def service_account_file(folder: Path, *, token_uri: str, project: str) -> Path:
    """A service-account key whose token exchange goes to `token_uri` (the double).

    With GOOGLE_APPLICATION_CREDENTIALS pointing at it, `google.auth.default()` — what the
    SDK calls in Vertex AI mode without explicit credentials, as in production — signs a JWT
    with this key and trades it at the double for an access token.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": uuid.uuid4().hex,
        "private_key": pem,
        "client_email": f"generate@{project}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path = folder / "service-account.json"
    path.write_text(json.dumps(info))
    return path
