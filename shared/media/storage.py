"""Where media lives in Cloud Storage, and removing a creation's media when it is deleted."""

from __future__ import annotations

from typing import Any, Protocol

from google.api_core import exceptions as gexc
from google.cloud.storage import Client as StorageClient

from shared.core.calls import TRANSIENT_ERRORS
from shared.core.errors import StoreBusy
from shared.creations.model import Creation
from shared.media.providers.base import GeneratedMedia


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
    def __init__(self, client: StorageClient, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def upload(
        self, user_id: str, creation_id: str, items: list[GeneratedMedia]
    ) -> list[dict[str, Any]]:
        """Store each file at a deterministic name; return the creation's `media` list.

        The names depend only on the creation and the item's index, so a redelivered job
        overwrites the same objects: one media set per creation, however often it runs.
        """
        bucket = self._client.bucket(self._bucket)
        media: list[dict[str, Any]] = []
        try:
            for index, item in enumerate(items):
                name = f"{media_prefix(user_id, creation_id)}{index}{item.path.suffix}"
                blob = bucket.blob(name)
                blob.upload_from_filename(str(item.path), content_type=item.content_type)
                entry: dict[str, Any] = {
                    "uri": f"gs://{self._bucket}/{name}",
                    "content_type": item.content_type,
                    "bytes": item.bytes,
                    "width": item.width,
                    "height": item.height,
                }
                if item.duration_seconds is not None:
                    entry["duration_seconds"] = round(item.duration_seconds, 3)
                media.append(entry)
        except TRANSIENT_ERRORS as exc:
            raise StoreBusy(f"media storage is unavailable: {type(exc).__name__}") from exc
        return media

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
        except TRANSIENT_ERRORS as exc:
            raise StoreBusy(f"media storage is unavailable: {type(exc).__name__}") from exc
