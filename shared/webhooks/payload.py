"""The JSON a webhook POSTs: `{"type", "timestamp", "data"}`.

`type` names the event (`creation.completed`); `timestamp` is when the creation reached the
status (not when this attempt is made: that is the `webhook-timestamp` header); `data` is the
creation exactly as the API answers it, media URLs included (`MediaLinks.api_view`, signed
afresh for each attempt, so a late delivery still carries URLs that work for their TTL).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from shared.creations.model import Creation
from shared.media.urls import MediaLinks
from shared.store.documents import Snapshot
from shared.webhooks.model import event_type


def reached_at(creation: Snapshot, event_name: str, fallback: dt.datetime) -> dt.datetime:
    """When the creation reached the event's status: `started_at` for `processing`,
    `completed_at` for a final status; its `updated_at` (else `fallback`) if that is missing."""
    field = "started_at" if event_name == "processing" else "completed_at"
    for name in (field, "updated_at"):
        value = creation.get(name)
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return fallback


def rfc3339(at: dt.datetime) -> str:
    """`2026-12-02T12:00:31Z` (a time without a zone is taken as UTC, as Firestore's are)."""
    aware = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def event_body(
    creation: Snapshot, event_name: str, *, media_links: MediaLinks, now: dt.datetime
) -> bytes:
    """The body of one attempt at `event_name` for `creation` (pydantic's ValidationError if
    the document is not a creation the API could show)."""
    payload: dict[str, Any] = {
        "type": event_type(event_name),
        "timestamp": rfc3339(reached_at(creation, event_name, now)),
        "data": media_links.api_view(Creation.of(creation)),
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
