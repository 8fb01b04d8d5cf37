"""One webhook POST, to the addresses the guard checked, and what its answer means.

The connection goes to an address of `WebhookTarget.addresses` (the ones
`shared.webhooks.targets.check_target` found public), never to a second lookup of the name: a
name re-resolved here could point somewhere the check never saw. For https the certificate is
checked against the URL's host (TLS `server_hostname`, `assert_hostname`) and `Host` names it,
so the receiver sees an ordinary request. Redirects are not followed (a 3xx is retried, not
chased to wherever it points), nothing but the body and the signature headers is sent (never
the user's token), and an attempt has `timeout_seconds` in all.

What an answer means: 2xx delivered; 410, or any other 4xx but 408 and 429, stop (the receiver
says it will never take it); anything else (3xx, 5xx, 408, 429, a timeout, a refused or reset
connection, a TLS failure) retry.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import urllib3
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
    """Sends with urllib3, to a checked address, following no redirect."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout_seconds = timeout_seconds
        self._ssl_context = ssl_context
        self._clock = clock

    def send(self, target: WebhookTarget, body: bytes, headers: dict[str, str]) -> SendOutcome:
        sent = {
            **headers,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Host": _host_header(target),
        }
        failure = SendOutcome("retry", error="no address to connect to")
        # One deadline for the attempt, whichever of the checked addresses answers.
        deadline = self._clock() + self._timeout_seconds
        for address in target.addresses:
            left = deadline - self._clock()
            if left <= 0:
                break
            try:
                return self._post(target, str(address), body, sent, urllib3.Timeout(total=left))
            except (HTTPError, OSError) as exc:  # no answer from this address: try the next
                failure = SendOutcome("retry", error=_describe(exc, target))
        return failure

    def _post(
        self,
        target: WebhookTarget,
        address: str,
        body: bytes,
        headers: dict[str, str],
        timeout: urllib3.Timeout,
    ) -> SendOutcome:
        pool = self._pool(target, address)
        try:
            response = pool.urlopen(
                "POST",
                target.target,
                body=body,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=timeout,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                response.read(MAX_ANSWER_BYTES)
            except (HTTPError, OSError):
                pass  # the status is what counts; the receiver answered
            finally:
                response.release_conn()
            return SendOutcome(verdict_of(response.status), status_code=response.status)
        finally:
            pool.close()

    def _pool(self, target: WebhookTarget, address: str) -> urllib3.HTTPConnectionPool:
        if target.scheme == "https":
            return urllib3.HTTPSConnectionPool(
                address,
                target.port,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                server_hostname=target.host,
                assert_hostname=target.host,
                ssl_context=self._ssl_context,
            )
        return urllib3.HTTPConnectionPool(address, target.port, maxsize=1, retries=False)


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
