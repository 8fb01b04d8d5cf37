"""Where media lives in Cloud Storage, and removing a creation's media when it is deleted."""

from __future__ import annotations

from typing import Protocol

from google.api_core import exceptions as gexc
from google.cloud import storage

from shared.errors import StoreBusy
from shared.models import Creation


def media_prefix(user_id: str, creation_id: str) -> str:
    """Every object of a creation lives under this prefix (deterministic per creation)."""
    return f"media/{user_id}/{creation_id}/"


def split_gs_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise ValueError(f"not a gs:// object URI: {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    return bucket, name


class MediaStore(Protocol):
    def delete_media(self, creation: Creation) -> int:
        """Delete every stored object of `creation`; return how many were deleted."""
        ...


class GcsMediaStore:
    def __init__(self, client: storage.Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def delete_media(self, creation: Creation) -> int:
        targets: set[tuple[str, str]] = set()
        try:
            for blob in self._client.list_blobs(
                self._bucket, prefix=media_prefix(creation.user_id, creation.id)
            ):
                targets.add((self._bucket, blob.name))
            for item in creation.media:
                uri = item.get("uri")
                if isinstance(uri, str) and uri.startswith("gs://"):
                    targets.add(split_gs_uri(uri))
            deleted = 0
            for bucket, name in sorted(targets):
                try:
                    self._client.bucket(bucket).blob(name).delete()
                    deleted += 1
                except gexc.NotFound:
                    pass  # already gone: deleting is idempotent
            return deleted
        except (
            gexc.ServiceUnavailable,
            gexc.InternalServerError,
            gexc.TooManyRequests,
            ConnectionError,
            TimeoutError,
        ) as exc:
            raise StoreBusy(f"media storage is unavailable: {type(exc).__name__}") from exc
