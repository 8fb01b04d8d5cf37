"""Refunds for creations that end `failed` or `canceled`, exactly once.

`refund` consumes the creation status stream (`shared.creations.status_events`): whoever marks a
creation failed — generate, stitch, the dead-letter subscriber, the sweeper, submit — announces
it, and the refund follows; the sweeper refunds one whose announcement was lost. Where the
caller is told in the answer (cancel, a job that could not be queued), the move to the final
status and the refund are one atomic write instead, and the event then finds nothing to do.
Either way the ledger's deterministic `refund:{creation}` entry is created once, ever: a second
refund changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from shared.core.errors import InvalidTransition, RetryableError
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations import is_user_id, lifecycle, names_a_user_document
from shared.creations.status_events import StatusEvent
from shared.media.storage import MediaSettler
from shared.money.ledger import Ledger
from shared.store import paths
from shared.store.documents import SERVER_TIME, Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic

logger = get_logger(__name__)

# `moved_on`: a move was asked for, but the creation is past the statuses it may start from.
RefundResult = Literal["refunded", "already_refunded", "not_refundable", "missing", "moved_on"]


@dataclass(frozen=True)
class FinalMove:
    """A move to a final status made in the same write as the refund."""

    to: Literal["failed", "canceled"]
    allowed_from: frozenset[str]
    error: dict[str, str] | None = None


# From wherever the state machine allows a cancel.
CANCEL = FinalMove(
    "canceled",
    frozenset(s for s, targets in lifecycle.TRANSITIONS.items() if "canceled" in targets),
)
QUEUE_UNAVAILABLE: Final = "queue_unavailable"
# Narrower than the state machine's table: a `processing` creation was queued after all.
NOT_QUEUED = FinalMove(
    "failed",
    frozenset({"pending"}),
    {"code": QUEUE_UNAVAILABLE, "message": "The job could not be queued."},
)


# What a move with its refund writes itself; a caller's `move_fields` may not overwrite them.
RESERVED_FIELDS: Final = frozenset(
    {"status", "error", "refunded", "updated_at", "completed_at", *lifecycle.LEASE_FIELDS}
)


@dataclass(frozen=True)
class RefundOutcome:
    result: RefundResult
    creation: Snapshot | None  # the document as it is now
    balance: int | None = None  # the owner's balance after a refund made now


@dataclass(frozen=True)
class Refunds:
    store: Documents
    settings: Settings
    ledger: Ledger

    def refund(self, creation_id: str, *, move: FinalMove | None = None) -> RefundOutcome:
        """Give a `failed`/`canceled` creation's cost back, exactly once.

        With `move`, the creation is moved to `move.to` in the same atomic write; a creation in
        a status outside `move.allowed_from` is left as it is (`moved_on`, with the creation as
        it now is: the caller can tell whether an earlier round of its own made the move). A
        `draft` (or still running) creation is never refunded.
        """

        def attempt() -> RefundOutcome:
            (creation,) = self.store.read(paths.creation(creation_id))
            if not creation.exists:
                return RefundOutcome("missing", None)
            user_id = creation.get("user_id")
            cost = creation.get("cost")
            # A document no code of ours wrote (a hand edit, an old version's): giving back a
            # cost that is not a positive whole number, or to an owner that cannot name a user
            # document, would be wrong or fail on every retry. It is left for people to look at.
            if not names_a_user_document(user_id) or not _is_cost(cost):
                return RefundOutcome("not_refundable", creation)
            user, entry = self.store.read(
                paths.user(user_id), paths.refund_entry(user_id, creation_id)
            )
            try:
                return self.refund_read(creation, user, entry, move=move)
            except InvalidTransition:
                return RefundOutcome("moved_on", creation)

        return run_optimistic(attempt, self.settings, "refund")

    def refund_read(
        self,
        creation: Snapshot,
        user: Snapshot,
        entry: Snapshot,
        *,
        move: FinalMove | None = None,
        move_fields: Mapping[str, Any] | None = None,
    ) -> RefundOutcome:
        """`refund` on documents already read: the creation, its owner, its refund entry.

        `move_fields` are written with the move (e.g. which request made it). Commits at most
        one batch; raises `LostRace` if any of them changed since (read again and call again,
        as `run_optimistic` does).
        """
        if move_fields and (move is None or not RESERVED_FIELDS.isdisjoint(move_fields)):
            raise ValueError(f"move_fields may not name {sorted(RESERVED_FIELDS)}, nor come alone")
        status = str(creation.get("status"))
        if move is not None and status not in move.allowed_from:
            raise InvalidTransition(
                f"the creation is {status}; it cannot become {move.to}",
                current=status,
                wanted=move.to,
            )
        if (move.to if move else status) not in lifecycle.REFUNDABLE_STATUSES:
            return RefundOutcome("not_refundable", creation)
        if creation.get("refunded") and move is None:
            return RefundOutcome("already_refunded", creation)
        batch = Batch()
        balance = None
        if not entry.exists:
            cost = int(creation.get("cost"))
            balance = self.ledger.stage_refund(batch, user, cost=cost, creation_id=creation.id)
        # else: the entry exists but the flag (or the move) is missing: finish them.
        if move is not None:
            lifecycle.stage_move(
                batch,
                creation,
                move.to,
                {**(move_fields or {}), "error": move.error, "refunded": True},
            )
        else:
            batch.update(creation, {"refunded": True, "updated_at": SERVER_TIME})
        now = self.store.commit(batch)[creation.path]
        return RefundOutcome(
            "refunded" if balance is not None else "already_refunded", now, balance
        )


def _names_an_object(item: object) -> bool:
    return isinstance(item, dict) and isinstance(item.get("uri"), str)


def _is_cost(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class RefundHandler:
    """The `refund` function: on a status event, refunds the creation if it now needs it, then
    settles its media once it is final, or finishes its DELETE if one began.

    The event only says which creation to look at: the document, read first, is what is acted
    on, so a late, repeated or odd event changes nothing it should not. Settling rides on this
    stream because it hears of every move to a final status, whoever made it (worker, dead
    letter, sweeper, claim, cancel), and is retried by Pub/Sub: a draft keeps exactly the
    objects its `media` names, a failed or canceled creation keeps none (left by attempts that
    crashed after uploading, or by a provider's own writes). The refund comes first and never
    depends on storage: a storage outage redelivers the event, whose refund is then
    `already_refunded`.
    """

    def __init__(
        self,
        refunds: Refunds,
        *,
        media: MediaSettler | None = None,
        finish_delete: Callable[[str], bool] | None = None,
    ) -> None:
        self._refunds = refunds
        self._media = media
        # A creation marked `deleting` (its DELETE began) is finished here if the DELETE
        # stopped midway: its media and document go (shared.intake.actions).
        self._finish_delete = finish_delete

    def on_status_event(self, event: StatusEvent, *, event_id: str) -> str:
        """What happened to the money (for logs and tests); said in one log line."""
        fields = {"creation_id": event.creation_id, "user_id": event.user_id, "event_id": event_id}
        result, why, balance = self._act_on(event, event_id)
        # The happy path's event (which production's subscription filter does not even send)
        # says nothing worth a line at INFO.
        logger.log(
            logging.DEBUG if event.leaves_nothing_to_settle else logging.INFO,
            f"refund: {result}{why} ({event.status} event)",
            extra=log_fields(**fields, balance=balance),
        )
        return result

    def _act_on(self, event: StatusEvent, event_id: str) -> tuple[str, str, int | None]:
        """(result, why, the owner's balance after a refund made now)."""
        if event.leaves_nothing_to_settle:
            # The happy path's event: a first attempt's draft owes no refund and left nothing.
            return "nothing_to_do", "", None
        (creation,) = self._refunds.store.read(paths.creation(event.creation_id))
        if not creation.exists:
            # Deleting an unrefunded failed/canceled creation refunds it first, and removes its
            # media itself, before the document (intake.actions).
            return "deleted", "", None
        if (creation.get("user_id"), creation.get("type")) != (event.user_id, event.type):
            # Not this creation's event (hand-made, or for another project's creation of the
            # same id): acting on it could settle away media of a creation it does not describe.
            return "ignored", ": the event disagrees with its creation", None
        status, refunded = creation.get("status"), creation.get("refunded", False)
        if not (isinstance(status, str) and status in lifecycle.STATUSES) or not isinstance(
            refunded, bool
        ):
            return "ignored", ": the creation's status or refunded flag is missing or odd", None
        result, balance = "nothing_to_do", None  # a draft, or refunded in its move's own write
        if status in lifecycle.REFUNDABLE_STATUSES and not refunded:
            outcome = self._refunds.refund(event.creation_id)
            result, balance = outcome.result, outcome.balance
        if creation.get(lifecycle.DELETING) is True and self._finish_delete is not None:
            # Usually beside the DELETE itself (which announced it): whichever is first removes it.
            if self._finish_delete(event.creation_id):
                return "deleted", ": finished a DELETE that had begun", balance
        elif status in lifecycle.FINAL_STATUSES:
            self._settle(creation, status, event_id)
        return result, "", balance

    def _settle(self, creation: Snapshot, status: str, event_id: str) -> None:
        user_id = creation.get("user_id")
        if self._media is None or not is_user_id(user_id):
            return
        # A final status never changes, so the document as read is the truth to settle by.
        keep: list[str] = []
        fields = log_fields(creation_id=creation.id, user_id=user_id, event_id=event_id)
        if status == "draft":
            media = creation.get("media")
            items = media if isinstance(media, list) else []
            keep = [str(item["uri"]) for item in items if _names_an_object(item)]
            if not keep or len(keep) != len(items):
                # Every draft names each of its objects; one that does not was written by hand
                # or by an older version: settling by it would delete files it may describe.
                logger.warning(
                    "a draft whose media does not name its objects: left alone", extra=fields
                )
                return
        try:
            removed = self._media.settle(user_id, creation.id, keep)
        except RetryableError:
            raise  # redelivered: the refund is already made, so only the settle runs again
        except Exception:
            # Not a passing trouble (a missing grant, say): retrying would not help, and the
            # money is settled. Left for `delete`, or for the operator reading this log.
            logger.exception("could not settle the creation's media", extra=fields)
            return
        if removed:
            logger.info(f"settled media: {removed} stray objects removed", extra=fields)
