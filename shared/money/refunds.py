"""Refunds for creations that end `failed` or `canceled`.

`refund` runs on every update of a `creations/{id}` document (Eventarc's Firestore trigger), so
whoever marks a creation failed — generate, stitch, the dead-letter subscriber, the sweeper,
submit — the refund follows, and the ledger's deterministic entry id makes it exactly once.
"""

from __future__ import annotations

from shared.core.events import DocumentChange
from shared.core.log import get_logger, log_fields
from shared.creations.model import REFUNDABLE_STATUSES
from shared.money.ledger import Ledger

logger = get_logger(__name__)


class RefundHandler:
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def on_creation_change(self, change: DocumentChange, *, event_id: str) -> str:
        """Refund the creation if it now needs it; return what happened (for logs and tests)."""
        if change.value is None:
            return "deleted"
        if change.value.get("status") not in REFUNDABLE_STATUSES or change.value.get("refunded"):
            return "nothing_to_do"  # most updates: progress, processing, draft
        outcome = self._ledger.refund(change.document_id)
        logger.info(
            f"refund: {outcome.result}",
            extra=log_fields(
                creation_id=change.document_id,
                user_id=change.value.get("user_id"),
                event_id=event_id,
                balance=outcome.balance,
            ),
        )
        return outcome.result
