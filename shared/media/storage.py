"""Where media lives in Cloud Storage, and removing what no creation publishes.

`media/{uid}/{creation}/{attempt}-{owner}/{index}.{ext}`: each claim uploads under its own
folder, and only the claim-guarded move to `draft` publishes one of them. A worker whose claim
is lost removes its own uploads; a creation reaching a final status is *settled* (a draft keeps
exactly its media, a failed or canceled one nothing); deleting a creation removes its prefix.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud.storage import Client as StorageClient
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.core.calls import TRANSIENT_ERRORS
from shared.core.errors import StoreBusy
from shared.creations.model import Creation
from shared.media.providers.base import GeneratedMedia


def media_prefix(user_id: str, creation_id: str) -> str:
    """Every object of a creation lives under this prefix (deterministic per creation)."""
    return f"media/{user_id}/{creation_id}/"


def attempt_scope(attempt: int, owner: str) -> str:
    """The folder of one claim's uploads: its attempt number and (a prefix of) its owner token.

    Two attempts never share a name, so a worker that lost its claim cannot overwrite the media
    a draft describes, and a draft's media are recognisably its own attempt's.
    """
    return f"{attempt}-{owner[:12]}"


def attempt_prefix(user_id: str, creation_id: str, scope: str) -> str:
    return f"{media_prefix(user_id, creation_id)}{scope}/"


def staging_prefix(user_id: str, creation_id: str) -> str:
    """Where a provider may have objects written for a creation (Veo's `output_gcs_uri`).

    Outside `media/` on purpose: a long-running operation may write after its creation has
    failed or been deleted, and nothing would then remove it from under `media/`. Under
    `tmp/` the bucket's lifecycle rule (`media_abandoned_prefixes`) deletes whatever is left.
    """
    return f"tmp/{user_id}/{creation_id}/"


def split_gs_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://") or "/" not in uri[5:]:
        raise ValueError(f"not a gs:// object URI: {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    return bucket, name


def bounded_storage_retry(timeout_seconds: float) -> Retry:
    """The storage client's own retry (connection errors, 429, 5xx) held to our deadline: its
    default retries for 120 s, which holds a worker past its lease while storage is down."""
    retry: Retry = DEFAULT_RETRY.with_timeout(timeout_seconds)
    return retry


def _objects_named(media: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The (bucket, name) of each `gs://` object a `media` list names."""
    return {
        split_gs_uri(uri)
        for uri in (item.get("uri") for item in media)
        if isinstance(uri, str) and uri.startswith("gs://")
    }


class MediaStore(Protocol):
    def delete_media(self, creation: Creation) -> int:
        """Delete every stored object of `creation`; return how many were deleted."""
        ...


class MediaSettler(Protocol):
    def settle(self, user_id: str, creation_id: str, keep: Collection[str]) -> int:
        """Delete the creation's objects but those `keep` names (`gs://` URIs); how many."""
        ...


class GcsMediaStore:
    """Media in one bucket. Every call is bounded by `timeout_seconds`, retries included."""

    def __init__(self, client: StorageClient, bucket: str, *, timeout_seconds: float) -> None:
        self._client = client
        self._bucket = bucket
        self._timeout = timeout_seconds
        # Uploads are retried too: each goes to a name only its attempt writes.
        self._retry = bounded_storage_retry(timeout_seconds)

    def upload(
        self, user_id: str, creation_id: str, items: list[GeneratedMedia], *, scope: str
    ) -> list[dict[str, Any]]:
        """Store each file under the claim's own folder; return the creation's `media` list.

        The names depend on the creation, the claim (`scope`, from `attempt_scope`) and the
        item's index. A redelivered job is a new claim and writes new names, so an attempt
        that lost its claim can never overwrite the objects a draft describes (whose `bytes`,
        `width` and `height` would then be another file's); the claim-guarded move to `draft`
        publishes one attempt's set, and the rest is removed (`discard`, `settle`).
        """
        bucket = self._client.bucket(self._bucket)
        media: list[dict[str, Any]] = []
        try:
            for index, item in enumerate(items):
                name = f"{attempt_prefix(user_id, creation_id, scope)}{index}{item.path.suffix}"
                blob = bucket.blob(name)
                blob.upload_from_filename(
                    str(item.path),
                    content_type=item.content_type,
                    retry=self._retry,
                    timeout=self._timeout,
                )
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

    def discard(self, media: list[dict[str, Any]]) -> int:
        """Delete the objects a `media` list names (an attempt's uploads nobody will publish)."""
        return self._delete(_objects_named(media))

    def settle(self, user_id: str, creation_id: str, keep: Collection[str]) -> int:
        """Delete every object under the creation's prefixes (`media/`, and `tmp/` for what a
        provider wrote) that `keep` does not name: a draft keeps its one media set, a failed or
        canceled creation keeps nothing. Leftovers come from attempts that crashed after
        uploading, or whose cleanup failed."""
        kept = {split_gs_uri(uri) for uri in keep}
        return self._delete(self._listed(user_id, creation_id) - kept)

    def delete_media(self, creation: Creation) -> int:
        return self._delete(
            self._listed(creation.user_id, creation.id) | _objects_named(creation.media)
        )

    def _listed(self, user_id: str, creation_id: str) -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        try:
            for prefix in (
                media_prefix(user_id, creation_id),
                staging_prefix(user_id, creation_id),
            ):
                for blob in self._client.list_blobs(
                    self._bucket, prefix=prefix, retry=self._retry, timeout=self._timeout
                ):
                    found.add((self._bucket, blob.name))
        except TRANSIENT_ERRORS as exc:
            raise StoreBusy(f"media storage is unavailable: {type(exc).__name__}") from exc
        return found

    def _delete(self, targets: set[tuple[str, str]]) -> int:
        deleted = 0
        try:
            for bucket, name in sorted(targets):
                try:
                    self._client.bucket(bucket).blob(name).delete(
                        retry=self._retry, timeout=self._timeout
                    )
                    deleted += 1
                except gexc.NotFound:
                    pass  # already gone: deleting is idempotent
        except TRANSIENT_ERRORS as exc:
            raise StoreBusy(f"media storage is unavailable: {type(exc).__name__}") from exc
        return deleted
