"""Putting creations into a state, on any `Documents`, through the suite's own code paths."""

from __future__ import annotations

from typing import Any

from shared.creations import lifecycle
from shared.creations.lifecycle import stage_new
from shared.creations.model import Status, new_creation_id
from shared.creations.requests import ImageRequest, StoredRequest, VideoRequest
from shared.money.ledger import Ledger
from shared.store import paths
from shared.store.documents import Batch, Documents

IMAGE = ImageRequest(
    prompt="a lighthouse", model="imagen-4.0-generate-001", aspect_ratio="1:1", count=1
)
VIDEO = VideoRequest(
    prompt="waves", model="veo-3.0-fast-generate-001", aspect_ratio="16:9", duration_seconds=4
)


def new_creation(
    documents: Documents,
    user_id: str,
    *,
    request: StoredRequest = IMAGE,
    cost: int = 1,
    webhook: dict[str, Any] | None = None,
) -> str:
    """A `pending` creation (without its debit: for tests of what happens after submit), with
    `webhook` as its stored webhook map if given."""
    creation_id = new_creation_id()
    batch = Batch()
    stage_new(
        batch,
        creation_id=creation_id,
        user_id=user_id,
        request=request,
        cost=cost,
        webhook=webhook,
    )
    documents.commit(batch)
    return creation_id


def debited_creation(documents: Documents, ledger: Ledger, user_id: str, cost: int = 3) -> str:
    """A `pending` creation of `user_id`'s, debited `cost` as submit would."""
    creation_id = new_creation(documents, user_id, cost=cost)
    (account,) = documents.read(paths.user(user_id))
    batch = Batch()
    ledger.stage_debit(batch, account, cost=cost, creation_id=creation_id)
    documents.commit(batch)
    return creation_id


def move(
    documents: Documents, creation_id: str, to: Status, fields: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Move a creation on, as a worker would, through the state machine itself; the document
    after. Raises `InvalidTransition` for a move the contract forbids."""
    (creation,) = documents.read(paths.creation(creation_id))
    batch = Batch()
    lifecycle.stage_move(batch, creation, to, fields)
    return documents.commit(batch)[creation.path].data or {}


def update(documents: Documents, path: str, fields: dict[str, Any]) -> None:
    """Change a document's fields directly (not its status): e.g. to age a lease."""
    (found,) = documents.read(path)
    batch = Batch()
    batch.update(found, fields)
    documents.commit(batch)
