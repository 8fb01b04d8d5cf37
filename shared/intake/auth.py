"""Verification of Firebase ID tokens (RS256 JWTs signed by Google's securetoken keys).

The certificates come from `AUTH_CERTS_URL` (Google's JSON map `{kid: PEM certificate}`); the
local stack and the tests point it at a locally generated key (`http(s)://` or `file://`).
Only RS256 is accepted, in every mode: an unsigned (`alg: none`) or HMAC token never passes.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from shared.core.errors import RetryableError, Unauthenticated
from shared.core.log import get_logger
from shared.core.settings import Settings
from shared.creations import is_user_id

_BEARER = re.compile(r"^Bearer\s+(?P<token>[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*)$")
_MAX_AGE = re.compile(r"max-age=(\d+)")
_DEFAULT_CERTS_TTL_SECONDS = 300.0
_REFETCH_GAP_SECONDS = 30.0

logger = get_logger(__name__)


@dataclass(frozen=True)
class AuthenticatedUser:
    uid: str
    claims: dict[str, Any]


# Fetches the certificates document: returns (body, seconds it may be cached).
CertsFetcher = Callable[[str], tuple[bytes, float]]


def fetch_certs(url: str) -> tuple[bytes, float]:
    """GET the certificates over HTTP(S), or read them from a `file://` URL (local stack)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path)).read_bytes(), 5.0
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    match = _MAX_AGE.search(response.headers.get("Cache-Control", ""))
    ttl = float(match.group(1)) if match else _DEFAULT_CERTS_TTL_SECONDS
    return response.content, ttl


class FirebaseTokenVerifier:
    """Checks `Authorization: Bearer <ID token>` headers; caches the signing certificates."""

    def __init__(
        self,
        settings: Settings,
        *,
        fetcher: CertsFetcher = fetch_certs,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._certs_url = settings.auth_certs_url
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._leeway = settings.auth_clock_skew_seconds
        self._fetcher = fetcher
        self._clock = clock
        self._lock = threading.Lock()
        self._max_stale = settings.auth_certs_max_stale_seconds
        self._keys: dict[str, RSAPublicKey] = {}
        self._fresh_until = float("-inf")  # the last good fetch's expiry (its max-age)
        self._refresh_at = 0.0  # when to fetch again (earlier after a failed fetch)
        self._fetched_at = float("-inf")

    def verify_header(self, authorization: str | None) -> AuthenticatedUser:
        if not authorization:
            raise Unauthenticated("missing Authorization: Bearer <Firebase ID token> header")
        match = _BEARER.match(authorization.strip())
        if match is None:
            raise Unauthenticated("the Authorization header must be 'Bearer <Firebase ID token>'")
        return self.verify(match.group("token"))

    def verify(self, token: str) -> AuthenticatedUser:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the ID token is malformed") from None
        if header.get("alg") != "RS256":
            raise Unauthenticated("the ID token must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the ID token has no key id (kid)")
        key = self._key_for(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("the ID token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("the ID token has the wrong issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the ID token's signature is invalid") from None
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the ID token is invalid: {exc}") from None
        uid = claims["sub"]
        # Firebase uids are 1-128 characters; a '/' would escape the user's document path.
        if not is_user_id(uid):
            raise Unauthenticated("the ID token has an invalid subject")
        auth_time = claims.get("auth_time")
        if isinstance(auth_time, int | float) and auth_time > self._clock() + self._leeway:
            raise Unauthenticated("the ID token's auth_time is in the future")
        return AuthenticatedUser(uid=uid, claims=claims)

    def _key_for(self, kid: str) -> RSAPublicKey:
        with self._lock:
            now = self._clock()
            unknown_kid = kid not in self._keys and now - self._fetched_at >= _REFETCH_GAP_SECONDS
            if now >= self._refresh_at or unknown_kid:
                # An unknown kid may mean Google rotated its keys since our last fetch; the gap
                # keeps tokens with made-up kids from turning into a stream of fetches.
                self._refresh(now)
            if now >= self._fresh_until + self._max_stale:
                # No keys, or keys the fetch has failed to renew for too long: nobody can be
                # authenticated right now (503 busy), rather than trusting them indefinitely.
                raise RetryableError(
                    "the token signing keys are unavailable (the certificate fetch is failing)"
                )
            key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("the ID token was signed by an unknown key")
        return key

    def _refresh(self, now: float) -> None:
        self._fetched_at = now
        try:
            body, ttl = self._fetcher(self._certs_url)
            certificates = json.loads(body)
            keys: dict[str, RSAPublicKey] = {}
            for key_id, pem in certificates.items():
                public_key = x509.load_pem_x509_certificate(pem.encode()).public_key()
                if isinstance(public_key, RSAPublicKey):
                    keys[key_id] = public_key
        except Exception as exc:
            # Keep the keys we have (`_key_for` decides whether they are still usable) and try
            # the fetch again after the gap, not on every request while the endpoint is down.
            self._refresh_at = now + _REFETCH_GAP_SECONDS
            logger.warning(f"token signing keys could not be fetched: {type(exc).__name__}")
            return
        self._keys = keys
        self._fresh_until = self._refresh_at = now + ttl
