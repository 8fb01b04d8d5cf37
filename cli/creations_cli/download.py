"""Saving a creation's media through the signed `url`s the API answers, verified by size.

Each file is written to `<name>.part` and renamed only once its size matches both the
answer's Content-Length and the media item's `bytes`, so a file under its final name is whole.
"""

from __future__ import annotations

import contextlib
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import urlsplit

from creations_cli.client import ApiClient, check_creation_id
from creations_cli.exits import DownloadError

CHUNK_BYTES = 256 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class ProgressSink(Protocol):
    def start(self, name: str, total: int | None) -> int: ...

    def advance(self, task: int, size: int) -> None: ...


@dataclass(frozen=True)
class SavedFile:
    path: Path
    bytes: int
    content_type: str | None

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.bytes, "content_type": self.content_type}


def media_file_name(creation_id: str, index: int, item: dict[str, Any]) -> str:
    """`<creation id>-<the object's own name>` (`abc-0.png`); the name comes from the media's
    `uri` (else its `url`'s path, else its index and content type), reduced to safe characters
    so it can never leave the target folder."""
    check_creation_id(creation_id)
    name = ""
    for source in (item.get("uri"), item.get("url")):
        if isinstance(source, str) and source:
            name = PurePosixPath(urlsplit(source).path).name
            if name:
                break
    if not name:
        content_type = item.get("content_type")
        extension = None
        if isinstance(content_type, str):
            extension = mimetypes.guess_extension(content_type)
        name = f"{index}{extension or ''}"
    safe = _UNSAFE.sub("_", name).lstrip(".") or str(index)
    return f"{creation_id}-{safe}"


def download_media(
    client: ApiClient, creation: dict[str, Any], directory: Path, progress: ProgressSink
) -> list[SavedFile]:
    """Every media item of `creation` saved in `directory` (made if missing)."""
    creation_id = str(creation.get("id", ""))
    media = creation.get("media")
    if not isinstance(media, list) or not media:
        raise DownloadError(
            f"{creation_id} has no media to download (status {creation.get('status')})",
            hint="only a `draft` has media; `creations show ID --follow` waits for it",
        )
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _download_one(client, creation_id, index, item, directory, progress)
        for index, item in enumerate(media)
    ]


def _download_one(
    client: ApiClient,
    creation_id: str,
    index: int,
    item: Any,
    directory: Path,
    progress: ProgressSink,
) -> SavedFile:
    if not isinstance(item, dict) or not isinstance(item.get("url"), str):
        raise DownloadError(f"{creation_id}: media[{index}] has no url to download")
    target = directory / media_file_name(creation_id, index, item)
    partial = target.with_name(target.name + ".part")
    expected = item.get("bytes") if isinstance(item.get("bytes"), int) else None
    try:
        with client.media(item["url"]) as response:
            declared = _content_length(response.headers.get("Content-Length"))
            task = progress.start(target.name, declared if declared is not None else expected)
            received = 0
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    out.write(chunk)
                    received += len(chunk)
                    progress.advance(task, len(chunk))
            # Content-Length counts the bytes on the wire, compressed if the server chose to.
            encoded = response.headers.get("Content-Encoding", "identity") != "identity"
            transferred = response.num_bytes_downloaded if encoded else received
            content_type = response.headers.get("Content-Type") or item.get("content_type")
        _check_size(target.name, transferred, declared, "Content-Length")
        _check_size(target.name, received, expected, "the media item's bytes")
        partial.replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return SavedFile(path=target, bytes=received, content_type=content_type)


def _content_length(raw: str | None) -> int | None:
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


def _check_size(name: str, received: int, expected: int | None, what: str) -> None:
    if expected is not None and received != expected:
        raise DownloadError(f"{name}: received {received} bytes, {what} says {expected}")
