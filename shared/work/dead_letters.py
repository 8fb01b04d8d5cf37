"""Jobs Pub/Sub gave up on: their creations end `failed` (`delivery_exhausted`), so refunded.

A creation that a worker holds under a live lease is left to that worker: the dead letter may
be one of several messages for the creation (the sweeper re-enqueues one pending too long, and
delivery is at least once), and another delivery may be generating it right now. Failing it
would refund it and drop the result already paid for. If that worker dies, its lease runs out
and the sweeper re-enqueues or fails the creation (`shared.work.sweeper`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, cast

from shared.core.errors import NotFound
from shared.core.events import PubSubMessage
from shared.core.log import get_logger, log_fields
from shared.creations.claims import ClaimStore
from shared.creations.status_events import (
    AnnouncedStatus,
    StatusAnnouncer,
    StatusEvent,
    announce_or_redeliver,
)
from shared.work.jobs import job_in

logger = get_logger(__name__)

# Pub/Sub sets it on every message it moves to a dead-letter topic.
DELIVERY_COUNT_ATTRIBUTE: Final = "CloudPubSubDeadLetterSourceDeliveryCount"


@dataclass(frozen=True)
class DeadLetterHandler:
    """The `dead_letter` function: fails the creation of a job that was never done."""

    claims: ClaimStore
    announcer: StatusAnnouncer

    def on_dead_letter(self, message: PubSubMessage, *, event_id: str) -> bool:
        """Whether the creation was failed now (False: already final, gone, held by a live
        worker, or not the creation this job was made from)."""
        job = job_in(message)  # MalformedEvent: acked, logged
        fields = log_fields(
            creation_id=job.creation_id,
            user_id=job.user_id,
            event_id=event_id,
            delivery_attempts=message.attributes.get(DELIVERY_COUNT_ATTRIBUTE),
        )
        try:
            failed = self.claims.fail_unfinished(
                job.creation_id,
                "delivery_exhausted",
                "The job failed too many times and was abandoned.",
                spare_live_lease=True,
                job=job,
            )
        except NotFound:
            logger.warning("dead letter for a creation that no longer exists", extra=fields)
            return False
        logger.warning(
            "dead letter: creation failed"
            if failed
            else "dead letter: creation already final, held by a live worker, or not this job's",
            extra=fields,
        )
        # Final already (by this dead letter's own earlier delivery, or a draft whose worker
        # could not announce it before its job ran out of deliveries): announced again, since
        # that announcement may be the one that was lost. If it cannot be made, the dead
        # letter is redelivered (and the sweeper still refunds what is left unrefunded).
        status = "failed" if failed else self.claims.final_status(job.creation_id)
        if status is not None:
            announce_or_redeliver(
                self.announcer, StatusEvent.of(job, cast(AnnouncedStatus, status))
            )
        return failed
