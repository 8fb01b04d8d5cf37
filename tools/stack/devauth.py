"""A local stand-in for Firebase Auth's signing key: makes a key pair and mints ID tokens.

The submit function trusts whatever certificates `AUTH_CERTS_URL` serves. Locally that URL is
a `file://` path to the `certs.json` written here, in the same format Google publishes
(`{kid: PEM X.509 certificate}`), so the production verification code runs unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class DevSigner:
    """A private key with its key id, able to mint Firebase-shaped ID tokens."""

    kid: str
    private_key_pem: bytes
    certificate_pem: bytes

    def certs_json(self) -> str:
        return json.dumps({self.kid: self.certificate_pem.decode()})

    def mint(
        self,
        uid: str,
        project: str,
        *,
        lifetime_seconds: int = 3600,
        issued_at: float | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        extra_claims: dict[str, object] | None = None,
    ) -> str:
        now = int(time.time() if issued_at is None else issued_at)
        claims: dict[str, object] = {
            "iss": issuer or f"https://securetoken.google.com/{project}",
            "aud": audience or project,
            "auth_time": now,
            "user_id": uid,
            "sub": uid,
            "iat": now,
            "exp": now + lifetime_seconds,
            "firebase": {"identities": {}, "sign_in_provider": "custom"},
        }
        claims.update(extra_claims or {})
        return jwt.encode(
            claims, self.private_key_pem, algorithm="RS256", headers={"kid": self.kid}
        )


def new_signer(common_name: str = "dev-securetoken") -> DevSigner:
    """A fresh RSA key and a self-signed certificate valid for ten years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    kid = hashlib.sha1(cert_pem).hexdigest()  # noqa: S324 - an identifier, not a security hash
    return DevSigner(kid=kid, private_key_pem=key_pem, certificate_pem=cert_pem)


def load_or_create_signer(directory: Path) -> DevSigner:
    """The signer kept in `directory` (made on first use), plus its `certs.json` beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    key_file, cert_file = directory / "signing-key.pem", directory / "certificate.pem"
    if key_file.exists() and cert_file.exists():
        cert_pem = cert_file.read_bytes()
        signer = DevSigner(
            kid=hashlib.sha1(cert_pem).hexdigest(),  # noqa: S324 - an identifier
            private_key_pem=key_file.read_bytes(),
            certificate_pem=cert_pem,
        )
    else:
        signer = new_signer()
        key_file.write_bytes(signer.private_key_pem)
        key_file.chmod(0o600)
        cert_file.write_bytes(signer.certificate_pem)
    (directory / "certs.json").write_text(signer.certs_json())
    return signer


def certs_url(directory: Path) -> str:
    """The `AUTH_CERTS_URL` value that trusts the signer kept in `directory`."""
    return (directory.resolve() / "certs.json").as_uri()
