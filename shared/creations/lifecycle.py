"""A creation's state machine, and the only code that writes its `status`.

    pending ──► processing ──► draft
       │             │
       └─────────────┴──► failed      (and, from pending only: canceled)

`stage_new` writes a creation's first status (with the rest of its first document) and
`stage_move` every later one; nothing else in the suite writes `status`
(tests/static/test_status_writes.py holds every module to that). `stage_move` refuses a move
the table does not allow, guards the write with the update time of the snapshot the decision
was made on (a move decided on stale data never lands: the commit fails and the caller reads
again), and writes the fields that belong with the move: `updated_at`; `completed_at` on
reaching a final status; the lease cleared on leaving `processing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, get_args

from shared.core import tracing
from shared.core.errors import InvalidTransition
from shared.creations.model import Status
from shared.creations.requests import StoredRequest, document_of
from shared.store import paths
from shared.store.documents import SERVER_TIME, Batch, Snapshot

STATUSES: Final[tuple[Status, ...]] = get_args(Status)
INITIAL_STATUS: Final[Status] = "pending"

# status -> the statuses it may move to.
TRANSITIONS: Final[Mapping[str, frozenset[Status]]] = {
    "pending": frozenset({"processing", "failed", "canceled"}),
    "processing": frozenset({"draft", "failed"}),
    "draft": frozenset(),
    "failed": frozenset(),
    "canceled": frozenset(),
}
# Final: no move leads out of it.
FINAL_STATUSES: Final[frozenset[str]] = frozenset(s for s, out in TRANSITIONS.items() if not out)
REFUNDABLE_STATUSES: Final[frozenset[str]] = frozenset({"failed", "canceled"})

# Written by claims while `processing`; meaningless once a creation has left it.
LEASE_FIELDS: Final = ("lease_owner", "lease_expires_at")
# Set (true) on a final creation whose DELETE has begun; the document goes once its media is
# gone (shared.intake.actions), by the DELETE itself or, if it stopped midway, by the refund
# function on the mark's status event (or the sweeper).
DELETING: Final = "deleting"


def can_move(current: str, wanted: str) -> bool:
    return wanted in TRANSITIONS.get(current, frozenset())


def stage_new(
    batch: Batch,
    *,
    creation_id: str,
    user_id: str,
    request: StoredRequest,
    cost: int,
    trace: tracing.Trace | None = None,
    webhook: Mapping[str, Any] | None = None,
) -> None:
    """Add the new creation, `pending`, to `batch` (a create: it never overwrites).

    Its `trace` is `trace`, else the current one (the submit request's), else a new one: every
    creation has one, which whatever later works on it logs under. `webhook` is the webhook it
    asks for, as `shared.webhooks.webhook_document` writes it (absent: none)."""
    trace = trace or tracing.current() or tracing.new_trace()
    batch.create(
        paths.creation(creation_id),
        {
            "user_id": user_id,
            "type": request.TYPE,
            "request": document_of(request),
            "cost": cost,
            "status": INITIAL_STATUS,
            "progress": 0,
            "media": [],
            "error": None,
            "refunded": False,
            "attempts": 0,
            "created_at": SERVER_TIME,
            "updated_at": SERVER_TIME,
            "completed_at": None,
            tracing.DOCUMENT_FIELD: trace.id,
            **({"webhook": dict(webhook)} if webhook is not None else {}),
        },
        moves_status=True,
    )


def stage_move(
    batch: Batch, creation: Snapshot, to: Status, fields: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Add the move of `creation` (as read) to `to` to `batch`, with `fields`; the fields written.

    Raises `InvalidTransition` if the table forbids the move.
    """
    current = str(creation.get("status"))
    if not can_move(current, to):
        raise InvalidTransition(
            f"creation {creation.id} is {current}; it cannot become {to}",
            current=current,
            wanted=to,
        )
    _refuse_status_in(fields or {})
    updates: dict[str, Any] = {"status": to, "updated_at": SERVER_TIME}
    if to in FINAL_STATUSES:
        updates["completed_at"] = SERVER_TIME
    if current == "processing":
        updates.update(dict.fromkeys(LEASE_FIELDS))
    updates.update(fields or {})
    batch.update(creation, updates, moves_status=True)
    return updates


def _refuse_status_in(fields: Mapping[str, Any]) -> None:
    if "status" in fields:
        raise ValueError("status is written by the state machine, not passed in with fields")
