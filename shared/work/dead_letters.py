"""Jobs Pub/Sub gave up on: their creations end `failed` (`delivery_exhausted`), so refunded."""

from __future__ import annotations

from shared.core.errors import NotFound
from shared.core.log import get_logger, log_fields
from shared.creations.claims import ClaimStore
from shared.creations.model import Job

logger = get_logger(__name__)


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
