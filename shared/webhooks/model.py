"""A creation's webhook: the events it asks for, and the delivery record kept beside them.

A `POST /v1/creations` or `POST /v1/reels` body may carry `webhook: {"url", "events"}`. Submit
checks it (`WebhookBody`, then `shared.webhooks.targets`) and stores it on the creation as its
`webhook` map (`webhook_document`); the job names the events (`Job.webhook_events`), so each
status event says whether the creation's webhook wants it, and the webhook function's
subscription lets through only those. The function that signs and sends keeps the delivery
record in the same map (`RECORD_FIELDS`).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, cast, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# What a webhook may ask to hear of; each is a creation status (a draft is `completed`).
WebhookEventName = Literal["processing", "completed", "failed", "canceled"]
WEBHOOK_EVENTS: Final[tuple[str, ...]] = get_args(WebhookEventName)
DEFAULT_EVENTS: Final[tuple[WebhookEventName, ...]] = ("completed", "failed", "canceled")
# The status a creation moves to -> the event that move is.
EVENT_OF_STATUS: Final[dict[str, WebhookEventName]] = {
    "processing": "processing",
    "draft": "completed",
    "failed": "failed",
    "canceled": "canceled",
}
MAX_URL_CHARS: Final = 2048

# How a delivery stands (the record's `status`): nothing sent yet; the last attempt failed and
# another follows; the receiver answered 2xx; it answered a 4xx that says stop (410, or any
# other but 408/429), its address was refused, or a `processing` event was overtaken by the
# final status before it got through; the retries ran out.
DeliveryStatus = Literal["pending", "retrying", "delivered", "stopped", "exhausted"]
DELIVERY_STATUSES: Final[tuple[str, ...]] = get_args(DeliveryStatus)
# The record's fields, beside `url` and `events`: the delivery status, the event it is about
# (`creation.completed`), attempts at that event, when that event was first attempted (the
# retry window counts from it), the last answer (`{"status_code": 503, "at": ...}` or
# `{"error": "...", "at": ...}`), when it was delivered, and the events finished (delivered,
# stopped or exhausted), so a repeated status event sends nothing.
RECORD_FIELDS: Final = (
    "status",
    "event",
    "attempts",
    "first_attempt_at",
    "last_response",
    "delivered_at",
    "done",
)


def event_type(name: str) -> str:
    """The `type` of a webhook event (`creation.completed`)."""
    return f"creation.{name}"


def _distinct(events: list[WebhookEventName]) -> list[WebhookEventName]:
    return list(dict.fromkeys(events))


class WebhookBody(BaseModel):
    """The `webhook` field of a submit body (its URL is checked by `shared.webhooks.targets`)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_CHARS)]
    events: Annotated[
        list[WebhookEventName],
        Field(min_length=1, max_length=len(WEBHOOK_EVENTS)),
        AfterValidator(_distinct),
    ] = Field(default_factory=lambda: list(DEFAULT_EVENTS))


def webhook_document(body: WebhookBody) -> dict[str, Any]:
    """The creation's `webhook` map as submit writes it: nothing delivered yet."""
    return {"url": body.url, "events": list(body.events), "status": "pending", "attempts": 0}


def wanted_events(webhook: object) -> tuple[WebhookEventName, ...]:
    """The events a stored `webhook` map asks for (none if it is missing or odd)."""
    if not isinstance(webhook, dict):
        return ()
    events = webhook.get("events")
    if not isinstance(events, list):
        return ()
    return known_events(events)


def known_events(events: object) -> tuple[WebhookEventName, ...]:
    """The known event names in `events`, in order, each once; anything else is dropped."""
    if not isinstance(events, list | tuple):
        return ()
    known: dict[WebhookEventName, None] = {}
    for name in events:
        if isinstance(name, str) and name in WEBHOOK_EVENTS:
            known[cast(WebhookEventName, name)] = None
    return tuple(known)
