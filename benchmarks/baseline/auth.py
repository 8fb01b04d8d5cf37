"""Firebase ID tokens checked the usual way: RS256 against Google's (here: the dev signer's)
certificates at `AUTH_CERTS_URL` (`file://` or `http(s)://`, the JSON map `{kid: PEM}`)."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from benchmarks.baseline.config import BaselineSettings

CERTS_TTL_SECONDS = 300.0


class Unauthenticated(Exception):
    """No valid `Authorization: Bearer <ID token>`: the answer is 401."""


def read_certs(url: str) -> dict[str, RSAPublicKey]:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        body = Path(urllib.parse.unquote(parsed.path)).read_bytes()
    elif parsed.scheme in ("http", "https"):
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - scheme checked
            body = response.read()
    else:
        raise ValueError(f"AUTH_CERTS_URL must be file:// or http(s)://, not {url!r}")
    keys: dict[str, RSAPublicKey] = {}
    for kid, pem in json.loads(body).items():
        key = x509.load_pem_x509_certificate(pem.encode()).public_key()
        if isinstance(key, RSAPublicKey):
            keys[kid] = key
    return keys


class TokenVerifier:
    """Verifies ID tokens; the certificates are fetched on first use and kept for a while
    (and fetched again at once for a key id they do not have)."""

    def __init__(self, settings: BaselineSettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._keys: dict[str, RSAPublicKey] = {}
        self._fetched_at = float("-inf")

    def uid_of(self, authorization: str | None) -> str:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Bearer" or not token.strip():
            raise Unauthenticated("missing Authorization: Bearer <Firebase ID token> header")
        token = token.strip()
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            raise Unauthenticated("the ID token is malformed") from None
        key = self._key(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated("the ID token was signed by an unknown key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],  # never HS256 or none, whatever the header says
                audience=self._settings.auth_audience,
                issuer=self._settings.auth_issuer,
                leeway=self._settings.auth_clock_skew_seconds,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the ID token is invalid: {exc}") from None
        uid = claims["sub"]
        if not isinstance(uid, str) or not 0 < len(uid) <= 128 or "/" in uid:
            raise Unauthenticated("the ID token has an invalid subject")
        return uid

    def _key(self, kid: str) -> RSAPublicKey | None:
        with self._lock:
            now = time.monotonic()
            if kid not in self._keys or now - self._fetched_at > CERTS_TTL_SECONDS:
                self._keys = read_certs(self._settings.auth_certs_url)
                self._fetched_at = now
            return self._keys.get(kid)
