"""Refunds for creations that end `failed` or `canceled`, and failing dead-lettered jobs.

`refund` runs on every update of a `creations/{id}` document (Eventarc's Firestore trigger), so
whoever marks a creation failed — generate, stitch, the dead-letter subscriber, the sweeper,
submit — the refund follows, and the ledger's deterministic entry id makes it exactly once.
"""

from __future__ import annotations

from shared.errors import NotFound
from shared.events import DocumentChange
from shared.generation.claims import ClaimStore
from shared.ledger import Ledger
from shared.log import get_logger, log_fields
from shared.models import REFUNDABLE_STATUSES
from shared.queue import Job

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


class DeadLetterHandler:
    """Jobs Pub/Sub gave up on: their creations end `failed` (`delivery_exhausted`)."""

    def __init__(self, claims: ClaimStore) -> None:
        self._claims = claims

    def on_dead_letter(self, job: Job, *, event_id: str, delivery_attempts: str | None) -> bool:
        fields = log_fields(
            creation_id=job.creation_id,
            user_id=job.user_id,
            event_id=event_id,
            delivery_attempts=delivery_attempts,
        )
        try:
            failed = self._claims.fail_unfinished(
                job.creation_id,
                "delivery_exhausted",
                "The job failed too many times and was abandoned.",
            )
        except NotFound:
            logger.warning("dead letter for a creation that no longer exists", extra=fields)
            return False
        logger.warning(
            "dead letter: creation failed" if failed else "dead letter: creation already final",
            extra=fields,
        )
        return failed
