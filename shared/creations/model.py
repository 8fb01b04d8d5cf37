"""A creation as the suite reads it: the `creations/{id}` document, and the job that names one."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Final, Literal, TypeGuard

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from shared.store.documents import Snapshot
from shared.webhooks import WebhookEventName, known_events, wanted_events
from shared.webhooks.api_view import webhook_view

CreationType = Literal["image", "video", "reel"]
Status = Literal["pending", "processing", "draft", "failed", "canceled"]

# A creation id: what `new_creation_id` makes, and all the API's paths accept.
CREATION_ID_PATTERN: Final = r"[A-Za-z0-9_-]{1,128}"
CREATION_ID: Final = re.compile(CREATION_ID_PATTERN)


# A user id (a Firebase uid): 1-128 characters. It is a document id too (`users/{uid}`), so no
# '/' (it would name another document), not '.' or '..' and not `__...__` (Firestore refuses
# those); and part of object names (`media/{uid}/...`), so no control characters (Cloud Storage
# refuses CR and LF). Firebase's own uids are 28 letters and digits; custom ones outside this
# rule are refused at sign-in (401) rather than failing later, deep in a job.
MAX_USER_ID_LENGTH: Final = 128


def new_creation_id() -> str:
    return uuid.uuid4().hex


def is_creation_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and CREATION_ID.fullmatch(value) is not None


def names_a_user_document(value: object) -> TypeGuard[str]:
    """Whether `value` can be the id of a `users/{uid}` document (what the money needs: a
    refund to an owner who signed in before the sign-in rule below was tightened still
    lands)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_USER_ID_LENGTH
        and "/" not in value
        and value not in (".", "..")
        and not (value.startswith("__") and value.endswith("__"))
    )


def is_user_id(value: object) -> TypeGuard[str]:
    """Whether `value` is a uid this suite accepts at sign-in and in jobs."""
    return names_a_user_document(value) and value.isprintable()


def _creation_id(value: str) -> str:
    if not is_creation_id(value):
        raise ValueError(f"not a creation id (must match {CREATION_ID_PATTERN})")
    return value


def _user_id(value: str) -> str:
    if not is_user_id(value):
        raise ValueError("not a user id (1-128 characters, no '/', not '.' or '..')")
    return value


# Ids as message bodies carry them, checked where a message becomes a model.
CreationIdField = Annotated[str, AfterValidator(_creation_id)]
UserIdField = Annotated[str, AfterValidator(_user_id)]


class Job(BaseModel):
    """Which creation to work on: the body of a job message, and what a claim is for."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    # Checked here, where a message becomes a job: an id that cannot name a document would
    # otherwise fail deep in the store (ValueError) on every delivery until it is dead-lettered.
    creation_id: CreationIdField
    user_id: UserIdField
    type: CreationType
    # The events the creation's webhook asks for (none: it has no webhook), so each status
    # event can say whether it is one (`StatusEvent.webhook`) without reading the document.
    # Unknown names are dropped, not refused: a job is never lost over a notification.
    webhook_events: Annotated[tuple[WebhookEventName, ...], BeforeValidator(known_events)] = ()

    @classmethod
    def of(cls, creation: Snapshot) -> Job:
        """The job of a `creations/{id}` document (pydantic's ValidationError if it is odd)."""
        return cls(
            creation_id=creation.id,
            user_id=creation.get("user_id"),
            type=creation.get("type"),
            webhook_events=wanted_events(creation.get("webhook")),
        )


class Partial(BaseModel):
    """A draft with fewer items than asked for (`creations/{id}.partial`): what was asked, what
    was made, why the rest is missing (for people), and the tokens given back for it (the
    ledger's `refund:{creation}:partial` entry, made in the same write as the draft)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    asked: int
    made: int
    reason: str
    refund: int


class Creation(BaseModel):
    """A `creations/{id}` document as read back (or as just written)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    user_id: str
    type: CreationType
    status: Status
    progress: int = 0
    request: dict[str, Any] = Field(default_factory=dict)
    cost: int
    media: list[dict[str, Any]] = Field(default_factory=list)
    error: dict[str, Any] | None = None
    refunded: bool = False
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    # The trace id its logs share, from submit on (absent on creations made before traces).
    trace: str | None = None
    # The webhook it asks for and its delivery record (`shared.webhooks.model`); None: none.
    webhook: dict[str, Any] | None = None
    # A draft with fewer items than asked for, refunded for the rest; None: not partial.
    partial: Partial | None = None

    @classmethod
    def of(cls, snapshot: Snapshot) -> Creation:
        return cls.model_validate({"id": snapshot.id, **(snapshot.data or {})})

    def to_api(self) -> dict[str, Any]:
        """The creation as the HTTP API shows it (timestamps as RFC 3339 strings); `webhook` is
        null when it asks for none."""
        view = self.model_dump(mode="json")
        view["webhook"] = webhook_view(view["webhook"])
        return view

    @property
    def job(self) -> Job:
        return Job(
            creation_id=self.id,
            user_id=self.user_id,
            type=self.type,
            webhook_events=wanted_events(self.webhook),
        )
