"""The drafts page's dev server: `web/public/` as static files, the API same-origin, dev auth.

`make dev` runs one on WEB_PORT (8088); the browser tests run one per module. It does locally
what Firebase Hosting does in production, so the page is the same code in both:

- `web/public/` is served as it is (`make web` builds the bundle into `web/public/build/`);
- `/v1/*` is relayed to the running `submit` function, as a Hosting rewrite to the function
  would: the page calls the API on its own origin, so no CORS is needed anywhere;
- `/dev/config.json` tells the page it is in dev mode and where the Firestore emulator and the
  project are, and `/dev/token?uid=...` mints an ID token for that uid with the stack's dev
  signer (`tools.stack.devauth`). Neither exists in production, where the page falls back to
  `firebase-config.json` and signs in with Firebase Auth (docs/web.md).

It listens on 127.0.0.1 only: whoever reaches it can mint a token for any uid, which is the
point locally and why nothing like it may face a network.

`load_rules` puts terraform/firestore.rules into the Firestore emulator for a project: without
them the emulator lets every client read and write everything, and the page would prove nothing.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

from tools.stack.devauth import DevSigner
from tools.stack.processes import LOCALHOST, REPO_ROOT, ensure_port_free

PUBLIC_DIR: Final = REPO_ROOT / "web" / "public"
BUNDLE: Final = PUBLIC_DIR / "build" / "app.js"
RULES_FILE: Final = REPO_ROOT / "terraform" / "firestore.rules"
DEFAULT_WEB_PORT: Final = 8088

# What the API's own auth accepts as a uid (docs/api.md), so a bad one is refused here in words
# rather than as a token the API then rejects.
_UID: Final = re.compile(r"[\x21-\x2e\x30-\x7e]{1,128}")
_RESERVED_UID: Final = re.compile(r"\.|\.\.|__.*__")
# Request headers the API reads, and answer headers the page reads; the rest stay behind.
_FORWARDED_REQUEST_HEADERS: Final = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "traceparent",
)
_FORWARDED_ANSWER_HEADERS: Final = (
    "Content-Type",
    "Retry-After",
    "Location",
    "Idempotent-Replayed",
    "Allow",
    "traceparent",
)
_PROXY_TIMEOUT_SECONDS: Final = 60.0
_MAX_BODY_BYTES: Final = 1 << 20


class WebError(RuntimeError):
    """The page cannot be served (not built, rules refused)."""


@dataclass(frozen=True)
class DevSite:
    """Where the page's dev server sends things."""

    api_url: str  # the submit function, e.g. http://127.0.0.1:8080
    firestore_host: str  # HOST:PORT of the Firestore emulator
    project: str
    signer: DevSigner

    def config(self) -> dict[str, object]:
        host, _, port = self.firestore_host.rpartition(":")
        return {
            "mode": "dev",
            "projectId": self.project,
            "apiBase": "",  # same origin: this server relays /v1/*
            "firestoreEmulator": {"host": host, "port": int(port)},
        }


def load_rules(firestore_host: str, project: str, rules_file: Path = RULES_FILE) -> None:
    """Make the Firestore emulator enforce `rules_file` for `project` (takes effect at once)."""
    hostname, _, port = firestore_host.rpartition(":")
    body = json.dumps(
        {"rules": {"files": [{"name": "firestore.rules", "content": rules_file.read_text()}]}}
    )
    connection = http.client.HTTPConnection(hostname, int(port), timeout=10)
    try:
        connection.request(
            "PUT",
            f"/emulator/v1/projects/{project}:securityRules",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        answer = connection.getresponse()
        text = answer.read().decode(errors="replace")
    finally:
        connection.close()
    if answer.status != 200:
        raise WebError(f"the Firestore emulator refused {rules_file.name}: {text[:300]}")


def valid_uid(uid: str) -> bool:
    return bool(_UID.fullmatch(uid)) and not _RESERVED_UID.fullmatch(uid)


class _Handler(SimpleHTTPRequestHandler):
    site: DevSite

    def __init__(self, *args: object, site: DevSite, directory: str, **kwargs: object) -> None:
        self.site = site
        super().__init__(*args, directory=directory, **kwargs)  # type: ignore[arg-type]

    # Quiet: the page polls nothing, but a test run would still print every file it loads.
    def log_message(self, format: str, *args: object) -> None:
        return

    def end_headers(self) -> None:
        # The bundle changes with every `make web`: never let a browser keep a stale one.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/v1/"):
            self._relay()
        elif path == "/dev/config.json":
            self._json(200, self.site.config())
        elif path == "/dev/token":
            self._token()
        else:
            super().do_GET()

    def do_POST(self) -> None:
        self._relay_or_405()

    def do_DELETE(self) -> None:
        self._relay_or_405()

    def do_PATCH(self) -> None:
        self._relay_or_405()

    def do_PUT(self) -> None:
        self._relay_or_405()

    def _relay_or_405(self) -> None:
        if urllib.parse.urlsplit(self.path).path.startswith("/v1/"):
            self._relay()
        else:
            self._json(405, {"error": {"code": "method_not_allowed", "message": "static files"}})

    def _token(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        uid = (query.get("uid") or [""])[0]
        if not valid_uid(uid):
            message = "uid: 1-128 printable characters without '/' (not '.', '..' or '__x__')"
            self._json(400, {"error": {"code": "invalid_request", "message": message}})
            return
        self._json(200, {"uid": uid, "token": self.site.signer.mint(uid, self.site.project)})

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            self._json(413, {"error": {"code": "payload_too_large", "message": "body too big"}})
            return
        body = self.rfile.read(length) if length else None
        target = urllib.parse.urlsplit(self.site.api_url)
        headers = {
            name: value
            for name in _FORWARDED_REQUEST_HEADERS
            if (value := self.headers.get(name)) is not None
        }
        connection = http.client.HTTPConnection(
            target.hostname or LOCALHOST, target.port or 80, timeout=_PROXY_TIMEOUT_SECONDS
        )
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
        except OSError as exc:
            message = f"the API at {self.site.api_url} did not answer ({exc.__class__.__name__})"
            self._json(502, {"error": {"code": "api_unreachable", "message": message}})
            return
        finally:
            connection.close()
        self.send_response(answer.status)
        for name in _FORWARDED_ANSWER_HEADERS:
            if (value := answer.getheader(name)) is not None:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, status: int, content: object) -> None:
        payload = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class WebServer:
    """The dev server on `port` (0: a free one), in a background thread.

    `start()` refuses to serve a page that was never built (`make web`), rather than serving
    an index.html whose script is missing.
    """

    def __init__(self, site: DevSite, *, port: int = 0, public_dir: Path = PUBLIC_DIR) -> None:
        self.site = site
        self.public_dir = public_dir
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise WebError("the web server is not running")
        return f"http://{LOCALHOST}:{self._server.server_address[1]}"

    def start(self) -> None:
        bundle = self.public_dir / "build" / "app.js"
        if not bundle.exists():
            raise WebError(f"{bundle} is missing: build the page with `make web`")
        handler = partial(_Handler, site=self.site, directory=str(self.public_dir))
        self._server = ThreadingHTTPServer((LOCALHOST, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="web-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class DevWebServer:
    """`make dev`'s page server: loads the rules into the emulator, then serves on WEB_PORT."""

    def __init__(self, site: DevSite, port: int) -> None:
        self.site = site
        self.port = port
        self._server = WebServer(site, port=port)

    @property
    def url(self) -> str:
        return self._server.url

    def start(self, progress: Callable[[str], None]) -> None:
        load_rules(self.site.firestore_host, self.site.project)
        progress(f"Firestore emulator enforces {RULES_FILE.relative_to(REPO_ROOT)}")
        self._server.start()
        progress(f"drafts page on :{self.port}")

    def stop(self) -> None:
        self._server.stop()


def dev_web_server(
    environ: Mapping[str, str], stack: Mapping[str, str], signer: DevSigner
) -> DevWebServer:
    """The page server for a `make dev` stack (`stack`: its exported variables), its port
    (WEB_PORT, default 8088) checked free now so nothing starts if it is taken."""
    raw = environ.get("WEB_PORT", "").strip() or str(DEFAULT_WEB_PORT)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise WebError(f"WEB_PORT={raw!r} is not a TCP port number (1-65535)")
    port = int(raw)
    ensure_port_free(port, "the drafts page", "set WEB_PORT")
    site = DevSite(
        api_url=stack["SUBMIT_URL"],
        firestore_host=stack["FIRESTORE_EMULATOR_HOST"],
        project=stack["GCP_PROJECT"],
        signer=signer,
    )
    return DevWebServer(site, port)
