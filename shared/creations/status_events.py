"""The creation status stream: one message per move to a final status (and per DELETE begun),
and per move to `processing` of a creation whose webhook asks to hear of it.

Whoever makes such a move (a worker's draft or failure, a claim out of attempts, a dead letter,
the sweeper, a cancel, a job that could not be queued, a DELETE's `deleting` mark) announces it
on `STATUS_TOPIC` after its commit (a worker announces `processing` after its claim, only
for a webhook that wants it). Every consumer subscribes to that one topic with a filter of its
own: `refund` (refunds, settles media, finishes deletes: `NEEDS_A_LOOK_FILTER`) and `webhooks`
(signs and sends a creation's webhook events: `WEBHOOK_FILTER`); anything later takes its own
subscription rather than one more trigger each.

An event is a wake-up, not the truth: it names the creation and the status it moved to, and a
consumer reads the document before it acts (an event that disagrees with its document, or a
message no code of ours published, changes nothing). Delivery is at least once, so consumers
are idempotent. A lost announcement (the process died between commit and publish, Pub/Sub was
down) is made up for: a worker's job is redelivered and announces the status it then finds;
the sweeper refunds a failed or canceled creation left unrefunded and finishes a DELETE left
midway.
"""

from __future__ import annotations

import json
from typing import Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, PositiveInt

from shared.core.errors import RetryableError
from shared.core.events import PubSubMessage, json_model_in
from shared.creations.model import CreationIdField, CreationType, Job, UserIdField
from shared.webhooks import EVENT_OF_STATUS

# `deleting`: a DELETE has marked the creation (its status is final and stays what it was).
# `processing`: announced only for a webhook that asks for it (`StatusEvent.webhook`).
AnnouncedStatus = Literal["processing", "draft", "failed", "canceled", "deleting"]

# An event is three ids and a word; anything much bigger was not published by us.
MAX_EVENT_BYTES: Final = 4096


class StatusEvent(BaseModel):
    """The body of a status message (JSON)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    creation_id: CreationIdField
    user_id: UserIdField
    type: CreationType
    status: AnnouncedStatus
    # The attempt that made the move, when a worker made it: a first attempt's image or reel
    # draft leaves nothing to settle (no earlier attempt uploaded, and only Veo stages).
    attempt: PositiveInt | None = None
    # The creation's trace id, when the announcer's own work is under another trace (a cancel
    # or a DELETE request's); None: the trace of the work at hand (`shared.core.tracing`).
    trace: str | None = None
    # Whether the creation's webhook asks to hear of this move (its job said so).
    webhook: bool = False

    @classmethod
    def of(
        cls,
        job: Job,
        status: AnnouncedStatus,
        *,
        attempt: int | None = None,
        trace: str | None = None,
    ) -> StatusEvent:
        return cls(
            creation_id=job.creation_id,
            user_id=job.user_id,
            type=job.type,
            status=status,
            attempt=attempt,
            trace=trace,
            webhook=EVENT_OF_STATUS.get(status) in job.webhook_events,
        )

    @property
    def leaves_nothing_to_settle(self) -> bool:
        """Whether this move can have left no stray object and owes no refund (so `refund`
        need not look): a move to `processing`, or a first attempt's image or reel draft.
        Saying so wrongly (a hand-made event) only leaves strays for the creation's delete."""
        if self.status == "processing":
            return True
        return self.status == "draft" and self.type != "video" and self.attempt == 1

    @property
    def key(self) -> str:
        """The same for every announcement of one move (consumers may dedupe by it)."""
        return f"{self.creation_id}:{self.status}"

    def attributes(self) -> dict[str, str]:
        """Message attributes, so a subscription can filter without decoding the body (see
        `NEEDS_A_LOOK_FILTER`)."""
        attributes = {
            "creation_id": self.creation_id,
            "status": self.status,
            "type": self.type,
            "event_key": self.key,
        }
        if self.attempt is not None:
            attributes["attempt"] = str(self.attempt)
        if self.webhook:
            attributes["webhook"] = "1"
        return attributes

    def encode(self) -> bytes:
        return json.dumps(self.model_dump(), separators=(",", ":")).encode()


# The Pub/Sub subscription filter that keeps the happy path's event (a first attempt's image or
# reel draft) from waking refund: refund's subscription in production (terraform/functions.tf).
# A `processing` event (only for a webhook that asks for one) passes it, and refund's handler
# drops it before reading anything (`leaves_nothing_to_settle`): a subscription's filter cannot
# be changed in place, so a new one would replace refund's subscription, and what it held, on
# upgrade. (The emulator stores filters but does not apply them; the handler checks first.)
NEEDS_A_LOOK_FILTER: Final = (
    'NOT (attributes.status = "draft" AND attributes.attempt = "1" '
    'AND NOT attributes.type = "video")'
)
# The webhook function's subscription: only the events a creation's webhook asks for. (Its
# handler checks `StatusEvent.webhook` first, for the emulator.)
WEBHOOK_FILTER: Final = 'attributes.webhook = "1"'


class StatusNotAnnounced(RetryableError):
    """A creation is final, but the status stream could not be told: redeliver what made the
    move (a job, a dead letter), whose redelivery finds it final and announces it again."""


class StatusAnnouncer(Protocol):
    def announce(self, event: StatusEvent) -> bool:
        """Publish `event`; False (logged, never raised) if it could not be published."""
        ...


class SilentAnnouncer:
    """Announces nothing: for tools and tests that have no status stream."""

    def announce(self, event: StatusEvent) -> bool:
        return True


def announce_or_redeliver(announcer: StatusAnnouncer, event: StatusEvent) -> None:
    """Announce `event`, or raise `StatusNotAnnounced` so what made the move is redelivered."""
    if not announcer.announce(event):
        raise StatusNotAnnounced(
            f"creation {event.creation_id} is {event.status}, but that could not be announced"
        )


def status_event_in(message: PubSubMessage) -> StatusEvent:
    """The status event in a Pub/Sub message; `MalformedEvent` (acked, logged) if none."""
    return json_model_in(message, StatusEvent, what="a status event", max_bytes=MAX_EVENT_BYTES)
