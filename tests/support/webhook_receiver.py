"""A webhook receiver on 127.0.0.1 for tests: it answers each POST with the next status of
its script (then the last one again), keeps every request it got, and can hold an answer back
until released (to make a sender time out) or answer with a redirect."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tools.stack.processes import LOCALHOST


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class Receiver:
    script: list[int] = field(default_factory=lambda: [200])
    location: str | None = None  # sent with a 3xx answer
    hold: bool = False  # keep every answer back until `release()`
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _released: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def release(self) -> None:
        self._released.set()

    def answered_2xx(self) -> list[Received]:
        """The requests it answered with a 2xx (in order)."""
        with self._lock:
            return [r for i, r in enumerate(self.received) if 200 <= self._status(i) < 300]

    def _status(self, index: int) -> int:
        return self.script[min(index, len(self.script) - 1)]

    def _take(self, request: Received) -> int:
        with self._lock:
            self.received.append(request)
            return self._status(len(self.received) - 1)


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            status = receiver._take(Received(self.path, headers, body))
            if receiver.hold:
                receiver._released.wait(30)
            self.send_response(status)
            if 300 <= status < 400 and receiver.location:
                self.send_header("Location", receiver.location)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def receiving(receiver: Receiver | None = None) -> Iterator[Receiver]:
    """Serve `receiver` on a free loopback port while the block runs."""
    chosen = receiver or Receiver()
    server = ThreadingHTTPServer((LOCALHOST, 0), _handler(chosen))
    server.daemon_threads = True
    chosen.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield chosen
    finally:
        chosen.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
