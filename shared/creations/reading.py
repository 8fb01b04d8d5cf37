"""Reading creations: one, several, or one page of a user's, newest first.

A creation is added by `shared.creations.lifecycle.stage_new`; every change after that is a
claim (`shared.creations.claims`), a refund (`shared.money.refunds`) or a deletion
(`shared.intake.actions`), and every status change goes through `shared.creations.lifecycle`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from shared.core.errors import InvalidRequest, NotFound
from shared.core.log import get_logger, log_fields
from shared.creations import lifecycle
from shared.creations.model import Creation
from shared.store import paths
from shared.store.documents import DOCUMENT_NAME, Documents, Query, Snapshot

logger = get_logger(__name__)


def owned_draft(
    found: Creation | None,
    creation_id: str,
    user_id: str,
    *,
    field: str,
    kind: str,
    noun: str,
    use: str,
) -> Creation:
    """`found` (the creation `creation_id`, or None) if it is the caller's own `kind` in
    `draft` with media: what a reel's clips and a video's source image must be. Raises
    `NotFound` (another user's, or none) or `InvalidRequest`, the message naming `field`
    (`clips[1]: ...`, `image: ...`); `noun` is the kind with its article ("a video"), `use`
    what the draft is for ("video drafts can be stitched")."""
    if found is None or found.user_id != user_id:
        raise NotFound(f"{field}: no creation {creation_id}")
    if found.type != kind:
        raise InvalidRequest(f"{field}: {creation_id} is a {found.type}, not {noun}")
    if found.status != "draft" or not found.media:
        raise InvalidRequest(f"{field}: {creation_id} is {found.status}; only {use}")
    return found


def being_deleted(snapshot: Snapshot) -> bool:
    """Whether the creation's DELETE has begun (`deleting`): for the API it is gone."""
    return snapshot.exists and snapshot.get(lifecycle.DELETING) is True


def owned(snapshot: Snapshot, user_id: str) -> Creation:
    """The caller's creation; anyone else's is reported as missing, never as forbidden."""
    if not snapshot.exists or snapshot.get("user_id") != user_id:
        raise NotFound(f"no creation {snapshot.id}")
    return Creation.of(snapshot)


@dataclass(frozen=True)
class CreationReader:
    store: Documents

    def get_owned(self, user_id: str, creation_id: str) -> Creation:
        """The caller's creation; one whose DELETE has begun is gone already (`NotFound`)."""
        (snapshot,) = self.store.read(paths.creation(creation_id))
        if being_deleted(snapshot):
            raise NotFound(f"no creation {snapshot.id}")
        return owned(snapshot, user_id)

    def get_many(self, creation_ids: list[str]) -> dict[str, Creation]:
        """The creations that exist among `creation_ids` (and are not being deleted), by id,
        in one round trip."""
        wanted = [paths.creation(cid) for cid in dict.fromkeys(creation_ids)]
        found: dict[str, Creation] = {}
        for snapshot in self.store.read(*wanted):
            if not snapshot.exists or being_deleted(snapshot):
                continue
            try:
                found[snapshot.id] = Creation.of(snapshot)
            except ValidationError:
                # A document no version of ours wrote (a hand edit): nothing a reel or a video
                # can start from, so it is as good as absent (a 404 naming the field, not a 500).
                logger.warning(
                    "a creation document that is not one: left out",
                    extra=log_fields(creation_id=snapshot.id),
                )
        return found

    def list_for_user(
        self,
        user_id: str,
        *,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Creation], str | None]:
        """One page of the user's creations, newest first, and the cursor of the next page."""
        equal: tuple[tuple[str, Any], ...] = (("user_id", user_id),)
        if status is not None:
            equal += (("status", status),)
        start_after = None
        if cursor is not None:
            created_at, after_id = decode_cursor(cursor)
            start_after = (created_at, paths.creation(after_id))
        snapshots = self.store.query(
            Query(
                paths.CREATIONS,
                equal=equal,
                order=(("created_at", "DESCENDING"), (DOCUMENT_NAME, "DESCENDING")),
                start_after=start_after,
                limit=limit + 1,
            )
        )
        page = snapshots[:limit]
        # A creation whose DELETE has begun is left out; the cursor still follows the page as
        # read, so no later item is skipped (such a page may hold fewer than `limit` items).
        items = [Creation.of(snapshot) for snapshot in page if not being_deleted(snapshot)]
        next_cursor = None
        last_created = page[-1].get("created_at") if page else None
        if len(snapshots) > limit and isinstance(last_created, dt.datetime):
            next_cursor = encode_cursor(last_created, page[-1].id)
        return items, next_cursor


def encode_cursor(created_at: dt.datetime, creation_id: str) -> str:
    """An opaque cursor: the last item's sort key, so a page never skips or repeats items."""
    raw = json.dumps({"t": created_at.isoformat(), "id": creation_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        created_at = dt.datetime.fromisoformat(data["t"])
        creation_id = str(data["id"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise InvalidRequest("cursor: is not a cursor this API returned") from None
    if not creation_id or "/" in creation_id:
        raise InvalidRequest("cursor: is not a cursor this API returned")
    return created_at, creation_id
