"""Download links for a creation's media: V4 signed URLs, made when the API answers.

The document keeps `gs://` URIs only (a URL expires; a document does not). Each answer of the
API adds, to each `media` item, a `url` that a plain `GET` downloads until `url_expires_at`
(`MEDIA_URL_TTL_SECONDS`, 15 minutes by default).

Who signs:
- in production, the function's own service account, through IAM `signBlob` (no key file:
  the runtime's credentials have no private key; Terraform grants the account the token
  creator role on itself, and nothing more);
- locally, a key made for the process (or the one in `MEDIA_SIGNING_KEY_FILE`), and the URL
  points at the Cloud Storage emulator, which serves it (it checks no signatures).
A URL names one object of the creation it was made for, so it never opens another user's
media; a deleted creation's objects are gone, so its URLs stop working.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import google.auth
import google.auth.transport.requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import Credentials
from google.cloud.storage import Client as StorageClient
from google.oauth2 import service_account

from shared.core.settings import Settings
from shared.creations.model import Creation
from shared.media.storage import split_gs_uri


class MediaLinks(Protocol):
    def api_view(self, creation: Creation) -> dict[str, Any]:
        """The creation as the API shows it, each media item with its `url`."""
        ...


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class SignedMediaUrls:
    """Signs a V4 `GET` URL for each media object of the media bucket."""

    client: StorageClient
    bucket: str
    ttl_seconds: int
    # Keyword arguments for `Blob.generate_signed_url` that say who signs (and, locally, where
    # the URL points): see `signing_from`.
    signing: Callable[[], dict[str, Any]]
    clock: Callable[[], dt.datetime] = field(default=_utcnow)

    def api_view(self, creation: Creation) -> dict[str, Any]:
        view = creation.to_api()
        now = self.clock()
        expires_at = now + dt.timedelta(seconds=self.ttl_seconds)
        signing = self.signing() if view["media"] else {}
        for item in view["media"]:
            uri = item.get("uri")
            if not isinstance(uri, str):
                continue
            try:
                bucket, name = split_gs_uri(uri)
            except ValueError:
                continue
            if bucket != self.bucket:
                continue  # only our media bucket's objects are ever signed
            blob = self.client.bucket(bucket).blob(name)
            item["url"] = blob.generate_signed_url(
                version="v4",
                method="GET",
                expiration=dt.timedelta(seconds=self.ttl_seconds),
                **signing,
            )
            item["url_expires_at"] = expires_at.isoformat().replace("+00:00", "Z")
        return view


def signing_from(settings: Settings) -> Callable[[], dict[str, Any]]:
    """Who signs, as `generate_signed_url` keyword arguments, decided once per process: the key
    in `MEDIA_SIGNING_KEY_FILE`; else, against the storage emulator (which checks no
    signature), a key made for this process; else the runtime's own account, through IAM."""
    if settings.media_signing_key_file or settings.storage_emulator_host:
        key = (
            service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                settings.media_signing_key_file
            )
            if settings.media_signing_key_file
            else throwaway_signer(settings.gcp_project)
        )
        local: dict[str, Any] = {"credentials": key}
        if settings.storage_emulator_host:
            local["api_access_endpoint"] = settings.storage_emulator_host
        return lambda: dict(local)
    credentials, _project = google.auth.default(
        scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    request = google.auth.transport.requests.Request()

    def by_iam() -> dict[str, Any]:
        # The runtime's credentials cannot sign; with an access token and the account's email
        # the library signs through IAM signBlob instead.
        if not credentials.valid:
            credentials.refresh(request)
        return {
            "service_account_email": getattr(credentials, "service_account_email", None),
            "access_token": credentials.token,
        }

    return by_iam


def throwaway_signer(project: str) -> Credentials:
    """A service-account key made here and never saved: good for the emulator only."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "local",
        "private_key": pem,
        "client_email": f"media-signer@{project}.iam.gserviceaccount.com",
        "client_id": "0",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    signer: Credentials = service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]
    return signer
