"""The webhook sender against receivers on 127.0.0.1: what it sends, how it reads answers,
that it follows no redirect and gives up on a receiver that does not answer in time."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.webhooks.sender import DirectSender
from shared.webhooks.targets import WebhookTarget, check_target, system_resolver
from tests.support.webhook_receiver import Receiver, receiving
from tools.stack.processes import LOCALHOST

HEADERS = {"webhook-id": "evt_c1_completed", "webhook-timestamp": "1", "webhook-signature": "v1,x"}


def target(url: str) -> WebhookTarget:
    return check_target(url, resolver=system_resolver, allow_loopback=True)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (410, "stop"),
        (400, "stop"),
        (429, "retry"),
        (408, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_each_answer_maps_to_its_verdict(status: int, verdict: str) -> None:
    with receiving(Receiver(script=[status])) as receiver:
        outcome = DirectSender(timeout_seconds=5).send(
            target(f"{receiver.url}/hook?k=v"), b'{"a":1}', HEADERS
        )
    assert (outcome.verdict, outcome.status_code) == (verdict, status)
    [got] = receiver.received
    assert got.path == "/hook?k=v" and got.body == b'{"a":1}'
    assert got.headers["webhook-id"] == "evt_c1_completed"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert "authorization" not in got.headers and "cookie" not in got.headers


def test_it_connects_to_the_checked_address_not_to_a_new_lookup() -> None:
    with receiving() as receiver:
        # The name says one thing; the checked address is where it goes.
        checked = WebhookTarget(
            url=f"http://hooks.invalid:{receiver.port}/",
            scheme="http",
            host="hooks.invalid",
            port=receiver.port,
            target="/",
            addresses=(ipaddress.ip_address("127.0.0.1"),),
        )
        outcome = DirectSender(timeout_seconds=5).send(checked, b"{}", HEADERS)
    assert outcome.verdict == "delivered"
    assert receiver.received[0].headers["host"] == f"hooks.invalid:{receiver.port}"


def test_a_redirect_is_not_followed() -> None:
    with (
        receiving() as elsewhere,
        receiving(Receiver(script=[302], location=f"{elsewhere.url}/stolen")) as receiver,
    ):
        outcome = DirectSender(timeout_seconds=5).send(target(receiver.url), b"{}", HEADERS)
    assert (outcome.verdict, outcome.status_code) == ("retry", 302)
    assert len(receiver.received) == 1
    assert elsewhere.received == []


def test_a_receiver_that_does_not_answer_in_time_is_retried() -> None:
    with receiving(Receiver(hold=True)) as receiver:
        outcome = DirectSender(timeout_seconds=0.5).send(
            target(f"{receiver.url}/slow?token=secret"), b"{}", HEADERS
        )
        receiver.release()
    assert outcome.verdict == "retry" and outcome.status_code is None
    assert outcome.error is not None and "timed out" in outcome.error.lower()
    assert "secret" not in outcome.error


def test_a_refused_connection_is_retried() -> None:
    with receiving() as receiver:
        url = receiver.url
    outcome = DirectSender(timeout_seconds=2).send(target(url), b"{}", HEADERS)
    assert outcome.verdict == "retry" and outcome.status_code is None and outcome.error


# A status line, then a header a byte at a time: every read gets a byte well within its own
# timeout, so only a deadline on the whole attempt cuts it off.
TRICKLED = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 200 + b"\r\nContent-Length: 0\r\n\r\n"
TLS_HOST = "hooks.test"


@dataclass(frozen=True)
class Tls:
    """A self-signed certificate for `TLS_HOST`: the receiver serves it, the sender trusts it."""

    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TLS_HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(TLS_HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(cert_pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server, client)


@contextlib.contextmanager
def answering(pause_seconds: float, tls: ssl.SSLContext | None = None) -> Iterator[int]:
    """A receiver on a loopback port (https with `tls`) that answers one request with 200, one
    byte per `pause_seconds` (all at once for 0), until the block ends."""
    server = socket.create_server((LOCALHOST, 0))
    stop = threading.Event()

    def serve() -> None:
        raw, _peer = server.accept()
        try:
            connection = tls.wrap_socket(raw, server_side=True) if tls else raw
            with connection:
                connection.settimeout(10)
                read_request(connection)
                if not pause_seconds:
                    connection.sendall(TRICKLED)
                else:
                    for byte in TRICKLED:
                        if stop.wait(pause_seconds):  # paces the answer; ends early at the end
                            return
                        connection.sendall(bytes([byte]))
                # Until the sender hangs up: closing first, with its data unread, could reset
                # the connection before the sender reads the answer.
                while connection.recv(4096):
                    pass
        except OSError:  # the sender hung up, or refused the certificate
            return
        finally:
            raw.close()

    thread = threading.Thread(target=serve, name="trickling-receiver", daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        server.close()
        thread.join(timeout=5)


def read_request(connection: socket.socket) -> None:
    """Read one request, headers and body (by its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:")]
    length = int(lengths[0].split(b":", 1)[1]) if lengths else 0
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return
        body += chunk


def checked_address(scheme: str, host: str, port: int) -> WebhookTarget:
    return WebhookTarget(
        url=f"{scheme}://{host}:{port}/in?token=secret",
        scheme=scheme,
        host=host,
        port=port,
        target="/in?token=secret",
        addresses=(ipaddress.ip_address(LOCALHOST),),
    )


def test_a_receiver_trickling_its_answer_is_cut_off_at_the_deadline() -> None:
    with answering(pause_seconds=0.05) as port:
        outcome = DirectSender(timeout_seconds=0.5).send(
            target(f"http://{LOCALHOST}:{port}/trickle?token=secret"), b"{}", HEADERS
        )
    # Without a deadline on the whole attempt it would have been `delivered`, ~10 s later.
    assert (outcome.verdict, outcome.status_code) == ("retry", None)
    assert outcome.error is not None and "timed out" in outcome.error
    assert "secret" not in outcome.error


def test_https_goes_to_the_checked_address_with_the_certificate_checked_for_the_host(
    tls: Tls,
) -> None:
    with answering(0, tls.server) as port:
        sender = DirectSender(timeout_seconds=5, ssl_context=tls.client)
        outcome = sender.send(checked_address("https", TLS_HOST, port), b"{}", HEADERS)
    assert (outcome.verdict, outcome.status_code) == ("delivered", 200), outcome
    with answering(0, tls.server) as port:
        sender = DirectSender(timeout_seconds=5, ssl_context=tls.client)
        outcome = sender.send(checked_address("https", "other.test", port), b"{}", HEADERS)
    assert (outcome.verdict, outcome.status_code) == ("retry", None)
    assert outcome.error is not None and "doesn't match 'hooks.test'" in outcome.error


def test_an_https_receiver_trickling_its_answer_is_cut_off_at_the_deadline(tls: Tls) -> None:
    with answering(0.05, tls.server) as port:
        sender = DirectSender(timeout_seconds=0.5, ssl_context=tls.client)
        outcome = sender.send(checked_address("https", TLS_HOST, port), b"{}", HEADERS)
    assert (outcome.verdict, outcome.status_code) == ("retry", None)
    assert outcome.error is not None and "timed out" in outcome.error
