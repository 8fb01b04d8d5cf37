"""The drafts page's dev server (tools/stack/web.py) over loopback: static files, the API relay,
dev config and tokens. The page itself is driven in a browser in
tests/integration/test_drafts_page.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
import requests
from cryptography import x509

from tools.stack.devauth import DevSigner, new_signer
from tools.stack.processes import free_port
from tools.stack.web import DevSite, WebError, WebServer, dev_web_server, valid_uid

PROJECT = "demo-web"


class _FakeApi(BaseHTTPRequestHandler):
    """Answers every request with what it received, as JSON, and a header the page reads."""

    def log_message(self, format: str, *args: object) -> None:
        return

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        seen = {
            "method": self.command,
            "path": self.path,
            "body": self.rfile.read(length).decode() if length else None,
            "authorization": self.headers.get("Authorization"),
            "idempotency_key": self.headers.get("Idempotency-Key"),
            "cookie": self.headers.get("Cookie"),
        }
        payload = json.dumps(seen).encode()
        self.send_response(402 if self.path.endswith("poor") else 202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Location", "/v1/creations/abc")
        self.send_header("X-Internal", "not for the page")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture(scope="module")
def signer() -> DevSigner:
    return new_signer()


@pytest.fixture(scope="module")
def api_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def public(tmp_path: Path) -> Path:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "app.js").write_text("console.log('built');\n")
    (tmp_path / "index.html").write_text("<!doctype html><title>Drafts</title>\n")
    return tmp_path


def serve(site: DevSite, public: Path) -> WebServer:
    server = WebServer(site, public_dir=public)
    server.start()
    return server


@pytest.fixture
def web(api_url: str, signer: DevSigner, public: Path) -> Iterator[str]:
    server = serve(DevSite(api_url, "127.0.0.1:8090", PROJECT, signer), public)
    yield server.url
    server.stop()


def test_static_files_and_the_dev_config(web: str) -> None:
    index = requests.get(f"{web}/", timeout=5)
    assert index.status_code == 200
    assert "<title>Drafts</title>" in index.text
    assert index.headers["Cache-Control"] == "no-store"
    config = requests.get(f"{web}/dev/config.json", timeout=5).json()
    assert config == {
        "mode": "dev",
        "projectId": PROJECT,
        "apiBase": "",
        "firestoreEmulator": {"host": "127.0.0.1", "port": 8090},
    }


def test_a_dev_token_is_signed_by_the_stacks_key_for_the_uid(web: str, signer: DevSigner) -> None:
    answer = requests.get(f"{web}/dev/token", params={"uid": "alice"}, timeout=5)
    assert answer.status_code == 200
    token = answer.json()["token"]
    public_key = x509.load_pem_x509_certificate(signer.certificate_pem).public_key()
    claims = jwt.decode(token, public_key, algorithms=["RS256"], audience=PROJECT)  # type: ignore[arg-type]
    assert (claims["sub"], claims["iss"]) == ("alice", f"https://securetoken.google.com/{PROJECT}")


@pytest.mark.parametrize("uid", ["", ".", "..", "__x__", "a/b", "x" * 129, "tab\there"])
def test_a_uid_the_api_would_refuse_gets_no_token(web: str, uid: str) -> None:
    answer = requests.get(f"{web}/dev/token", params={"uid": uid}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith("uid: ")
    assert not valid_uid(uid)


def test_the_api_is_relayed_with_the_headers_it_reads_and_nothing_else(web: str) -> None:
    answer = requests.post(
        f"{web}/v1/creations?x=1",
        json={"type": "image"},
        headers={"Authorization": "Bearer t", "Idempotency-Key": "k1", "Cookie": "session=1"},
        timeout=5,
    )
    assert answer.status_code == 202
    assert answer.headers["Location"] == "/v1/creations/abc"
    assert "X-Internal" not in answer.headers
    assert answer.json() == {
        "method": "POST",
        "path": "/v1/creations?x=1",
        "body": '{"type": "image"}',
        "authorization": "Bearer t",
        "idempotency_key": "k1",
        "cookie": None,
    }
    refused = requests.get(f"{web}/v1/poor", timeout=5)
    assert refused.status_code == 402
    gone = requests.delete(f"{web}/v1/creations/abc", timeout=5)
    assert gone.json()["method"] == "DELETE"


def test_an_api_that_does_not_answer_is_a_502_the_page_can_name(
    signer: DevSigner, public: Path
) -> None:
    server = serve(
        DevSite(f"http://127.0.0.1:{free_port()}", "127.0.0.1:1", PROJECT, signer), public
    )
    try:
        answer = requests.get(f"{server.url}/v1/balance", timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "api_unreachable"


def test_writes_outside_the_api_are_refused(web: str) -> None:
    assert requests.post(f"{web}/index.html", data=b"x", timeout=5).status_code == 405


def test_a_page_that_was_never_built_is_not_served(signer: DevSigner, tmp_path: Path) -> None:
    with pytest.raises(WebError, match="make web"):
        WebServer(
            DevSite("http://127.0.0.1:1", "127.0.0.1:1", PROJECT, signer), public_dir=tmp_path
        ).start()


def test_the_dev_port_is_checked_before_anything_starts(signer: DevSigner) -> None:
    stack = {
        "SUBMIT_URL": "http://127.0.0.1:1",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:2",
        "GCP_PROJECT": PROJECT,
    }
    with pytest.raises(WebError, match="WEB_PORT"):
        dev_web_server({"WEB_PORT": "http"}, stack, signer)
    port = free_port()
    assert dev_web_server({"WEB_PORT": str(port)}, stack, signer).port == port
