"""The creation store: `creations/{id}` documents, their listing and their status moves.

Status moves are guarded by the document's update time, so two writers never both move the
same creation, and `TRANSITIONS` (the contract's state machine) refuses backwards moves.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.core.errors import Conflict, InvalidRequest, InvalidTransition, NotFound
from shared.core.settings import Settings
from shared.creations.model import FINAL_STATUSES, Creation, can_move
from shared.store import paths
from shared.store.optimistic import run_optimistic, store_retry


def new_creation_id() -> str:
    return uuid.uuid4().hex


class CreationStore:
    def __init__(self, db: firestore.Client, settings: Settings) -> None:
        self._db = db
        self._settings = settings
        self._timeout = settings.store_timeout_seconds
        self._retry = store_retry(settings.store_timeout_seconds)

    def ref(self, creation_id: str) -> firestore.DocumentReference:
        return self._db.collection(paths.CREATIONS).document(creation_id)

    # --- writes -------------------------------------------------------------------------------

    def stage_create(
        self,
        batch: firestore.WriteBatch,
        *,
        creation_id: str,
        user_id: str,
        kind: str,
        request: dict[str, Any],
        cost: int,
    ) -> None:
        """Add the new `pending` creation to `batch` (a `create`: never overwrites)."""
        now = firestore.SERVER_TIMESTAMP
        batch.create(
            self.ref(creation_id),
            {
                "user_id": user_id,
                "type": kind,
                "status": "pending",
                "progress": 0,
                "request": request,
                "cost": cost,
                "media": [],
                "error": None,
                "refunded": False,
                "attempts": 0,
                "created_at": now,
                "updated_at": now,
                "completed_at": None,
            },
        )

    def move(
        self,
        creation_id: str,
        to: str,
        *,
        fields: dict[str, Any] | None = None,
    ) -> Creation:
        """Move a creation to `to` if the state machine allows it; returns it after the move.

        Raises `NotFound`, or `InvalidTransition` for a move the contract forbids.
        """
        ref = self.ref(creation_id)

        def attempt() -> Creation:
            snapshot = ref.get(retry=self._retry, timeout=self._timeout)
            if not snapshot.exists:
                raise NotFound(f"creation {creation_id} does not exist")
            current = (snapshot.to_dict() or {})["status"]
            if not can_move(current, to):
                raise InvalidTransition(
                    f"creation {creation_id} is {current}; it cannot become {to}",
                    current=current,
                    wanted=to,
                )
            updates: dict[str, Any] = {"status": to, "updated_at": firestore.SERVER_TIMESTAMP}
            if to in FINAL_STATUSES:
                updates["completed_at"] = firestore.SERVER_TIMESTAMP
            updates.update(fields or {})
            ref.update(
                updates,
                option=self._db.write_option(last_update_time=snapshot.update_time),
                retry=self._retry,
                timeout=self._timeout,
            )
            return self.get_or_raise(creation_id)

        return run_optimistic(attempt, max_attempts=self._settings.ledger_max_attempts, what="move")

    def delete_final(self, user_id: str, creation_id: str) -> None:
        """Delete a finished creation's document; `409` while it is pending or processing."""
        ref = self.ref(creation_id)

        def attempt() -> None:
            snapshot = ref.get(retry=self._retry, timeout=self._timeout)
            data = snapshot.to_dict() if snapshot.exists else None
            if data is None or data.get("user_id") != user_id:
                return  # already gone: deleting is idempotent
            if data["status"] not in FINAL_STATUSES:
                raise Conflict(f"the creation is {data['status']}; it can be deleted once finished")
            ref.delete(
                option=self._db.write_option(last_update_time=snapshot.update_time),
                retry=self._retry,
                timeout=self._timeout,
            )

        run_optimistic(attempt, max_attempts=self._settings.ledger_max_attempts, what="delete")

    # --- reads --------------------------------------------------------------------------------

    def get(self, creation_id: str) -> Creation | None:
        snapshot = self.ref(creation_id).get(retry=self._retry, timeout=self._timeout)
        if not snapshot.exists:
            return None
        return Creation.model_validate({"id": snapshot.id, **(snapshot.to_dict() or {})})

    def get_many(self, creation_ids: list[str]) -> dict[str, Creation]:
        """The creations that exist among `creation_ids`, by id (one round trip)."""
        refs = [self.ref(cid) for cid in dict.fromkeys(creation_ids)]
        found: dict[str, Creation] = {}
        for snapshot in self._db.get_all(refs, retry=self._retry, timeout=self._timeout):
            if snapshot.exists:
                found[snapshot.id] = Creation.model_validate(
                    {"id": snapshot.id, **(snapshot.to_dict() or {})}
                )
        return found

    def get_owned(self, user_id: str, creation_id: str) -> Creation:
        """The caller's creation; anyone else's is reported as missing, never as forbidden."""
        creation = self.get(creation_id)
        if creation is None or creation.user_id != user_id:
            raise NotFound(f"no creation {creation_id}")
        return creation

    def list_for_user(
        self,
        user_id: str,
        *,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Creation], str | None]:
        """One page of the user's creations, newest first, and the cursor of the next page."""
        query = self._db.collection(paths.CREATIONS).where(
            filter=FieldFilter("user_id", "==", user_id)
        )
        if status is not None:
            query = query.where(filter=FieldFilter("status", "==", status))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING).order_by(
            "__name__", direction=firestore.Query.DESCENDING
        )
        if cursor is not None:
            created_at, after_id = decode_cursor(cursor)
            query = query.start_after({"created_at": created_at, "__name__": self.ref(after_id)})
        snapshots = list(query.limit(limit + 1).stream(retry=self._retry, timeout=self._timeout))
        items = [
            Creation.model_validate({"id": snap.id, **(snap.to_dict() or {})})
            for snap in snapshots[:limit]
        ]
        next_cursor = None
        if len(snapshots) > limit and items[-1].created_at is not None:
            next_cursor = encode_cursor(items[-1].created_at, items[-1].id)
        return items, next_cursor

    def get_or_raise(self, creation_id: str) -> Creation:
        creation = self.get(creation_id)
        if creation is None:
            raise NotFound(f"creation {creation_id} does not exist")
        return creation


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
