"""The delivery record: how a creation's webhook stands, kept in its `webhook` map.

Only the record's own fields are written (`webhook.status`, `webhook.event`, ...; see
`shared.webhooks.model.RECORD_FIELDS`), never the creation's `status`, and each write is
guarded (re-read and decided again if the document changed meanwhile). Writes are idempotent:
once an event is in `webhook.done` (delivered, stopped or exhausted), a repeated attempt at it
records nothing; only an operator's replay of an `exhausted` event writes again, and a replayed
attempt that does not finish it takes it out of `done`, so its redeliveries are retried as any
event's are. A creation deleted meanwhile is left deleted (nothing is written).

The record follows one event at a time: the latest one attempted. A `processing` attempt
that finishes after the creation's final event has taken the record over only adds itself to
`done`, so it never hides how the final event stands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared.core.settings import Settings
from shared.store import paths
from shared.store.documents import Batch, Documents, Snapshot
from shared.store.optimistic import run_optimistic
from shared.webhooks.model import DeliveryStatus, event_type

WEBHOOK: Final = "webhook"
# When the record's current event was first attempted: the retry window is measured from it.
FIRST_ATTEMPT_AT: Final = "first_attempt_at"
PROCESSING: Final = event_type("processing")
FINISHED: Final[frozenset[str]] = frozenset({"delivered", "stopped", "exhausted"})


@dataclass(frozen=True)
class EventState:
    """What a creation's record says of one event (its `type`, `creation.completed`)."""

    done: bool
    attempts: int  # attempts at it made so far (0: none)
    first_attempt_at: dt.datetime | None
    status: str | None  # the record's status, when the record is about this event


def state_of(webhook: Mapping[str, Any], event: str) -> EventState:
    done = event in done_events(webhook)
    if webhook.get("event") != event:
        return EventState(done=done, attempts=0, first_attempt_at=None, status=None)
    attempts = webhook.get("attempts")
    first = webhook.get(FIRST_ATTEMPT_AT)
    status = webhook.get("status")
    return EventState(
        done=done,
        attempts=attempts if isinstance(attempts, int) and attempts > 0 else 0,
        first_attempt_at=first if isinstance(first, dt.datetime) else None,
        status=status if isinstance(status, str) else None,
    )


def done_events(webhook: Mapping[str, Any]) -> list[str]:
    done = webhook.get("done")
    return [name for name in done if isinstance(name, str)] if isinstance(done, list) else []


@dataclass(frozen=True)
class Attempt:
    """One attempt at an event, as the record keeps it."""

    event: str  # `creation.completed`
    status: DeliveryStatus
    number: int  # 1 for the first attempt at the event
    first_attempt_at: dt.datetime
    at: dt.datetime
    status_code: int | None = None
    error: str | None = None
    # An operator's replay of an exhausted event: written even though the event is `done`.
    replay: bool = False

    @property
    def last_response(self) -> dict[str, Any]:
        if self.status_code is not None:
            return {"status_code": self.status_code, "at": self.at}
        return {"error": self.error or "no answer", "at": self.at}


class DeliveryRecords:
    """Writes attempts into creations' delivery records."""

    def __init__(self, store: Documents, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    def record(self, creation_id: str, attempt: Attempt) -> Snapshot | None:
        """Write `attempt`; the document as now stored (None: it is gone, or has no webhook)."""

        def once() -> Snapshot | None:
            (creation,) = self._store.read(paths.creation(creation_id))
            webhook = creation.get(WEBHOOK)
            if not creation.exists or not isinstance(webhook, dict):
                return None
            fields = fields_for(webhook, attempt)
            if not fields:
                return creation
            batch = Batch()
            batch.update(creation, {f"{WEBHOOK}.{name}": value for name, value in fields.items()})
            return self._store.commit(batch)[creation.path]

        return run_optimistic(once, self._settings, "webhook record")


def fields_for(webhook: Mapping[str, Any], attempt: Attempt) -> dict[str, Any]:
    """The record fields `attempt` changes in `webhook` (none: nothing to write)."""
    done = done_events(webhook)
    state = state_of(webhook, attempt.event)
    replaying = attempt.replay and state.status == "exhausted"
    if state.done and not replaying:
        return {}  # finished already: a repeated delivery records nothing
    finished = attempt.status in FINISHED
    with_done = [*done, attempt.event] if attempt.event not in done else done
    current = webhook.get("event")
    if attempt.event == PROCESSING and isinstance(current, str) and current != PROCESSING:
        # The final event has the record now: `processing` only notes that it is finished.
        return {"done": with_done} if finished and attempt.event not in done else {}
    fields: dict[str, Any] = {
        "status": attempt.status,
        "event": attempt.event,
        "attempts": attempt.number,
        FIRST_ATTEMPT_AT: attempt.first_attempt_at,
        "last_response": attempt.last_response,
    }
    if attempt.status == "delivered":
        fields["delivered_at"] = attempt.at
    if finished:
        fields["done"] = with_done
    elif attempt.event in done:
        # A replay not delivered yet: the event is under way again (retried, then exhausted
        # afresh), no longer finished.
        fields["done"] = [name for name in done if name != attempt.event]
    return fields
