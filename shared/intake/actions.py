"""What a user may do to a creation they already have: cancel it, or delete it.

Each reads the creation, its owner's balance and its refund entry in one round trip, decides,
and writes once (delete writes twice when it must refund first). A lost race reads again.
"""

from __future__ import annotations

import uuid
from dataclasses import KW_ONLY, dataclass
from typing import Final

from pydantic import ValidationError

from shared.core.errors import Conflict, InvalidTransition, StoreBusy
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations import lifecycle
from shared.creations.model import Creation
from shared.creations.reading import being_deleted, owned
from shared.creations.status_events import StatusAnnouncer, StatusEvent
from shared.media.storage import MediaStore
from shared.money.refunds import CANCEL, Refunds
from shared.store import paths
from shared.store.documents import SERVER_TIME, Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic

logger = get_logger(__name__)

# The cancel request that made a creation `canceled` (not shown by the API).
CANCELED_BY: Final = "canceled_by_request"


@dataclass(frozen=True)
class CreationActions:
    """What `POST /v1/creations/{id}:cancel` and `DELETE /v1/creations/{id}` do."""

    store: Documents
    settings: Settings
    _: KW_ONLY
    refunds: Refunds
    media: MediaStore
    announcer: StatusAnnouncer

    def cancel(self, user_id: str, creation_id: str) -> Creation:
        """The caller's `pending` creation, now `canceled` and refunded in the same write.

        Raises `NotFound` (not the caller's) or `Conflict` (not pending).
        """

        # Written with the move: a later round of this call that finds the creation canceled
        # can tell its own commit (whose answer was lost) from a concurrent cancel's.
        marker = {CANCELED_BY: uuid.uuid4().hex}

        def attempt() -> Creation:
            creation, user, entry = self._read(user_id, creation_id)
            found = owned(creation, user_id)
            if found.status == "canceled":
                if creation.get(CANCELED_BY) == marker[CANCELED_BY]:
                    return found  # this call's own cancel, whose answer was lost
                raise Conflict("the creation is already canceled")
            try:
                outcome = self.refunds.refund_read(
                    creation, user, entry, move=CANCEL, move_fields=marker
                )
            except InvalidTransition as exc:
                raise Conflict(
                    f"the creation is {exc.current}; only pending ones can be canceled"
                ) from None
            return Creation.of(outcome.creation or creation)

        try:
            canceled = run_optimistic(attempt, self.settings, "cancel")
        except StoreBusy:
            # The commit may have landed with its answer lost: if it was this call's, say so.
            creation, *_ = self._read(user_id, creation_id)
            if creation.get(CANCELED_BY) != marker[CANCELED_BY]:
                raise
            canceled = Creation.of(creation)
        # Refunded already, in the same write; the event is for the stream's other consumers
        # (and for whatever media a crashed attempt left). Lost, it costs no money.
        self.announcer.announce(StatusEvent.of(canceled.job, "canceled", trace=canceled.trace))
        return canceled

    def delete(self, user_id: str, creation_id: str) -> None:
        """Delete a finished creation of the caller's: mark it `deleting`, remove its media,
        then its document.

        A `failed`/`canceled` creation not yet refunded is refunded first: the refund must not
        depend on a document that is about to go. The mark is announced on the status stream,
        so the `refund` function finishes the delete (`finish_delete`) if this call stops midway
        (a 503, a crash), and the sweeper does if that announcement is lost: a draft is never
        left without its media and without a way out. Raises `NotFound` or `Conflict`
        (unfinished).
        """

        tried = False  # whether a round of this call has sent the document's delete

        def attempt() -> None:
            nonlocal tried
            creation, user, entry = self._read(user_id, creation_id)
            if tried and not creation.exists:
                return  # an earlier round's delete landed although its answer was lost
            found = owned(creation, user_id)
            if found.status not in lifecycle.FINAL_STATUSES:
                raise Conflict(f"the creation is {found.status}; it can be deleted once finished")
            if found.status in lifecycle.REFUNDABLE_STATUSES and not found.refunded:
                creation = self.refunds.refund_read(creation, user, entry).creation or creation
            # From the mark's commit on, a missing document can only be this delete's doing
            # (its own round, or the refund function or sweeper finishing it).
            tried = True
            if not being_deleted(creation):
                batch = Batch()
                batch.update(creation, {lifecycle.DELETING: True, "updated_at": SERVER_TIME})
                creation = self.store.commit(batch)[creation.path]
            # On every round that goes on to remove: a round that finds the mark made (its
            # commit's answer was lost) announces it too, so refund can finish what this
            # call may not.
            self.announcer.announce(StatusEvent.of(found.job, "deleting", trace=found.trace))
            self._remove(found, creation)

        run_optimistic(attempt, self.settings, "delete")

    def finish_delete(self, creation_id: str) -> bool:
        """Finish the delete of a creation marked `deleting` (for a DELETE that stopped
        midway: the `refund` function's part on the mark's status event, and the sweeper's if
        that was lost); whether this call removed it. Safe to run beside the DELETE itself:
        both remove the same objects, and one guarded document delete wins."""
        fields = log_fields(creation_id=creation_id)

        def attempt() -> bool:
            (creation,) = self.store.read(paths.creation(creation_id))
            if not being_deleted(creation):
                return False
            try:
                found = Creation.of(creation)
            except ValidationError:
                logger.error("a creation marked deleting is not one we wrote", extra=fields)
                return False
            # Only what a DELETE marks: final, and refunded if it is owed a refund. Anything
            # else was marked by hand, and deleting it could lose tokens.
            owed = found.status in lifecycle.REFUNDABLE_STATUSES and not found.refunded
            if found.status not in lifecycle.FINAL_STATUSES or owed:
                logger.error(
                    f"a creation marked deleting is {found.status}"
                    f"{' and not refunded' if owed else ''}; left alone",
                    extra=fields,
                )
                return False
            self._remove(found, creation)
            return True

        return run_optimistic(attempt, self.settings, "finish delete")

    def _remove(self, found: Creation, creation: Snapshot) -> None:
        """The media, then the document (as read: a concurrent write makes it `LostRace`)."""
        deleted = self.media.delete_media(found)
        batch = Batch()
        batch.delete(creation)
        self.store.commit(batch)
        logger.info(
            "creation deleted",
            extra=log_fields(user_id=found.user_id, creation_id=found.id, objects_deleted=deleted),
        )

    def _read(self, user_id: str, creation_id: str) -> list[Snapshot]:
        return self.store.read(
            paths.creation(creation_id),
            paths.user(user_id),
            paths.refund_entry(user_id, creation_id),
        )
