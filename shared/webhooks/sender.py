"""One webhook POST, to the addresses the guard checked, and what its answer means.

The connection goes to an address of `WebhookTarget.addresses` (the ones
`shared.webhooks.targets.check_target` found public), never to a second lookup of the name: a
name re-resolved here could point somewhere the check never saw. For https the certificate is
checked against the URL's host (TLS `server_hostname`, `assert_hostname`) and `Host` names it,
so the receiver sees an ordinary request. Redirects are not followed (a 3xx is retried, not
chased to wherever it points), and nothing but the body and the signature headers is sent
(never the user's token).

An attempt has `timeout_seconds` in all, by the wall clock: urllib3's timeouts bound each
connect and each read, not their sum, so a receiver trickling its answer a byte at a time
would hold an attempt for as long as it liked. A watchdog (`_Deadline`) shuts the attempt's
sockets down when its time is up, whatever it is doing then (the TLS handshake, sending,
reading the answer's status or headers); what was cut off is retried as "timed out".

What an answer means: 2xx delivered; 410, or any other 4xx but 408 and 429, stop (the receiver
says it will never take it); anything else (3xx, 5xx, 408, 429, a timeout, a refused or reset
connection, a TLS failure) retry.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError

from shared.webhooks.targets import WebhookTarget

__all__ = ["DirectSender", "SendOutcome", "Sender", "verdict_of"]


Verdict = Literal["delivered", "stop", "retry"]
USER_AGENT: Final = "creations-webhooks/1"
# The receiver's answer is only looked at for its status; a little of the body is read so the
# connection closes cleanly, never more.
MAX_ANSWER_BYTES: Final = 4096
RETRIED_4XX: Final = frozenset({408, 429})


@dataclass(frozen=True)
class SendOutcome:
    """What one attempt came to: the verdict, the status code if the receiver answered, else
    why not (an error phrase that never carries the URL's query)."""

    verdict: Verdict
    status_code: int | None = None
    error: str | None = None


def verdict_of(status_code: int) -> Verdict:
    if 200 <= status_code < 300:
        return "delivered"
    if 400 <= status_code < 500 and status_code not in RETRIED_4XX:
        return "stop"  # 410 Gone among them
    return "retry"


class Sender(Protocol):
    def send(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> SendOutcome:
        """POST `body` with `headers` to `target`; never raises for the receiver's trouble."""
        ...


class DirectSender:
    """Sends with urllib3, to a checked address, following no redirect, within a deadline."""

    def __init__(
        self, *, timeout_seconds: float, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._ssl_context = ssl_context

    def send(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> SendOutcome:
        sent = {
            **headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": _host_header(target),
        }
        failure = SendOutcome("retry", error="no address to connect to")
        # One deadline for the attempt, whichever of the checked addresses answers.
        with _Deadline(self._timeout_seconds) as deadline:
            for address in target.addresses:
                left = deadline.left()
                if left <= 0:
                    break
                try:
                    return self._post(target, str(address), body, sent, deadline)
                except (HTTPError, OSError) as exc:  # no answer from this address: try the next
                    failure = SendOutcome("retry", error=_describe(exc, target))
                if deadline.expired:
                    break
            if deadline.expired:
                return SendOutcome("retry", error=deadline.error)
        return failure

    def _post(
        self,
        target: WebhookTarget,
        address: str,
        body: bytes,
        headers: dict[str, str],
        deadline: _Deadline,
    ) -> SendOutcome:
        pool = self._pool(target, address, deadline)
        try:
            response = pool.urlopen(
                "POST",
                target.target,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=urllib3.Timeout(total=deadline.left()),
                preload_content=False,
                assert_same_host=False,
            )
            try:
                if deadline.expired:
                    # Cut off while its status or headers were read (http.client takes a
                    # connection shut mid-headers for their end): no whole answer in time.
                    return SendOutcome("retry", error=deadline.error)
                # The status is what counts, and the receiver gave it in time.
                with contextlib.suppress(HTTPError, OSError):
                    response.read(MAX_ANSWER_BYTES)
            finally:
                response.release_conn()
            return SendOutcome(verdict_of(response.status), status_code=response.status)
        finally:
            pool.close()

    def _pool(
        self, target: WebhookTarget, address: str, deadline: _Deadline
    ) -> urllib3.HTTPConnectionPool:
        if target.scheme == "https":
            return _WatchedHTTPSPool(
                address,
                target.port,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                server_hostname=target.host,
                assert_hostname=target.host,
                ssl_context=self._ssl_context,
                deadline=deadline,
            )
        return _WatchedHTTPPool(address, target.port, maxsize=1, retries=False, deadline=deadline)


class _Deadline:
    """A wall-clock deadline for one attempt: when it passes, every socket the attempt opened
    is shut down (`shutdown`, which ends a blocked read or write in another thread at once),
    and `expired` says so."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            watched, self._sockets = self._sockets, []
        for sock in watched:
            sock.close()

    @property
    def expired(self) -> bool:
        with self._lock:
            return self._expired

    @property
    def error(self) -> str:
        return f"timed out: no answer within {self._seconds:g} s"

    def left(self) -> float:
        return self._ends - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        """Shut `sock` down at the deadline (at once if it has passed). A duplicate of it is
        kept: TLS takes the original's descriptor over, and a shutdown through either ends
        both, as they are one connection."""
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            expired = self._expired
        if expired:
            _shut(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            watched = list(self._sockets)
        for sock in watched:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed already, or never connected
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedHTTPConnection(HTTPConnection):
    """A connection whose socket its attempt's deadline watches."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._deadline.watch(sock)
        return sock


class _WatchedHTTPSConnection(_WatchedHTTPConnection, HTTPSConnection):
    """The same for https: the socket is watched from before the TLS handshake."""


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def _host_header(target: WebhookTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _describe(exc: BaseException, target: WebhookTarget) -> str:
    """`ReadTimeoutError: ...` in one line, with the URL's query (which may hold a receiver's
    token) cut out."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ")
    if target.target and "?" in target.target:
        text = text.replace(target.target, target.target.split("?", 1)[0])
    return text[:300]
