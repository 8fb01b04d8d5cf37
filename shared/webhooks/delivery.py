"""The `webhooks` function: on a status event a creation's webhook asks for, sign the event and
POST it, record how that went, and retry (through Pub/Sub) until it is delivered, refused, or
`WEBHOOK_RETRY_SECONDS` have passed since its first attempt.

The event only says which creation to look at; the document, read first, decides. Nothing is
sent for an event that disagrees with its creation (another user or type; a final status the
creation is not in), that its webhook did not ask for, that is finished already (in
`webhook.done`), or for `processing` once the creation is final (superseded: if the record is
still about it, it is finished as `stopped`). The URL is checked again before every attempt
(DNS can change since submit): a refusal stops the delivery (`stopped`, with the reason), a
name that does not resolve is retried.

A retried attempt raises `WebhookNotDelivered` (`WebhookSecretMissing` when no signing secret
is configured), so Pub/Sub redelivers with its backoff (10 s to 600 s in production). Every
attempt is recorded first, whatever failed (a missing secret, an event that could not be
built), so the window starts with the first. Once the event is older than the window, it is
given up: the record says `exhausted` and the event goes to `WEBHOOK_EXHAUSTED_TOPIC`, where an
operator can read and replay it (`replay=True`: an exhausted event is tried afresh, with a new
window, and retried as any event is until it is delivered, stopped or exhausted again).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import ValidationError

from shared.core.errors import RetryableError
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations import lifecycle
from shared.creations.status_events import StatusEvent
from shared.media.urls import MediaLinks
from shared.store import paths
from shared.store.documents import Documents, Snapshot
from shared.webhooks.exhausted import ExhaustedEvents
from shared.webhooks.model import EVENT_OF_STATUS, DeliveryStatus, event_type, wanted_events
from shared.webhooks.payload import event_body, rfc3339
from shared.webhooks.records import PROCESSING, Attempt, DeliveryRecords, state_of
from shared.webhooks.sender import Sender, SendOutcome, Verdict
from shared.webhooks.signing import WebhookSecretMissing, WebhookSigner, webhook_id
from shared.webhooks.targets import (
    Resolver,
    UnsafeWebhookUrl,
    WebhookHostNotFound,
    WebhookTarget,
    check_target,
)

__all__ = ["REPLAY_ATTRIBUTE", "WebhookDelivery", "WebhookNotDelivered"]


logger = get_logger(__name__)

# The message attribute an operator's replay carries (docs/webhooks.md).
REPLAY_ATTRIBUTE: Final = "webhook_replay"
NO_SIGNER: Final = "no webhook signing secret is configured (WEBHOOK_SECRET)"
# Why a `processing` event is dropped once the creation is final (its final event follows).
SUPERSEDED: Final = "the creation is final already (its final event follows)"


STATUS_OF_VERDICT: Final[dict[Verdict, DeliveryStatus]] = {
    "delivered": "delivered",
    "stop": "stopped",
    "retry": "retrying",
}


class WebhookNotDelivered(RetryableError, code="webhook_not_delivered"):
    """This attempt failed in a way a later one may not: Pub/Sub redelivers the event."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WebhookDelivery:
    """The `webhooks` function's handler (see the module docstring)."""

    def __init__(
        self,
        store: Documents,
        settings: Settings,
        *,
        signer: WebhookSigner | None,
        sender: Sender,
        media_links: MediaLinks,
        exhausted: ExhaustedEvents,
        resolver: Resolver,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._store = store
        self._settings = settings
        self._signer = signer
        self._sender = sender
        self._media_links = media_links
        self._exhausted = exhausted
        self._resolver = resolver
        self._clock = clock
        self._records = DeliveryRecords(store, settings)

    def on_status_event(self, event: StatusEvent, *, event_id: str, replay: bool = False) -> str:
        """The result (`delivered`, `retrying`, `stopped`, `exhausted`, or why nothing was
        sent); a retryable attempt raises `WebhookNotDelivered` after recording itself."""
        fields = {"creation_id": event.creation_id, "event_id": event_id}
        if not event.webhook:
            # The production subscription never sends these (WEBHOOK_FILTER); the emulator does.
            logger.debug(
                f"webhook: not asked for ({event.status} event)", extra=log_fields(**fields)
            )
            return "not_asked"
        name = EVENT_OF_STATUS.get(event.status)
        (creation,) = self._store.read(paths.creation(event.creation_id))
        skip = _why_not(event, name, creation)
        if skip == SUPERSEDED:
            return self._supersede(creation, fields)
        if skip is not None or name is None:
            logger.info(
                f"webhook: nothing sent: {skip} ({event.status} event)", extra=log_fields(**fields)
            )
            return "ignored"
        webhook: dict[str, Any] = creation.get("webhook")
        kind = event_type(name)
        state = state_of(webhook, kind)
        if state.done and not (replay and state.status == "exhausted"):
            logger.info(
                f"webhook: {kind} finished already ({state.status or 'done'})",
                extra=log_fields(**fields),
            )
            return "already_done"
        now = self._clock()
        fresh = replay and state.status == "exhausted"
        first = now if fresh or state.first_attempt_at is None else state.first_attempt_at
        number = 1 if fresh else state.attempts + 1
        attempt = _Attempting(creation, name, kind, webhook_id(creation.id, name), first, number)
        if now - first >= dt.timedelta(seconds=self._settings.webhook_retry_seconds):
            return self._give_up(event, attempt, webhook, now, fields)
        signer = self._signer
        if signer is None:
            logger.error(
                "webhook: no signing secret is configured (WEBHOOK_SECRET); the event is "
                "retried until one is, or its retries run out",
                extra=log_fields(**fields, webhook_id=attempt.webhook_id),
            )
            # Recorded as an attempt: the window starts, so the event is given up (and an
            # operator alerted) in time, not dropped unseen when Pub/Sub's retention ends.
            self._records.record(
                attempt.creation.id,
                attempt.recorded("retrying", now, error=NO_SIGNER, replay=fresh),
            )
            raise WebhookSecretMissing(NO_SIGNER)
        return self._attempt(attempt, signer, str(webhook.get("url")), now, fields, replay=fresh)

    # --- one attempt -------------------------------------------------------------------------

    def _attempt(
        self,
        attempt: _Attempting,
        signer: WebhookSigner,
        url: str,
        now: dt.datetime,
        fields: dict[str, Any],
        *,
        replay: bool,
    ) -> str:
        try:
            target = check_target(
                url,
                resolver=self._resolver,
                allow_loopback=self._settings.webhook_allow_loopback,
            )
        except WebhookHostNotFound as exc:
            outcome = SendOutcome("retry", error=_the_url(exc))
        except UnsafeWebhookUrl as exc:
            outcome = SendOutcome("stop", error=f"the URL was refused: {_phrase(exc)}")
        else:
            outcome = self._send(attempt, signer, target, now, fields)
        status = STATUS_OF_VERDICT[outcome.verdict]
        self._records.record(
            attempt.creation.id,
            attempt.recorded(
                status, now, status_code=outcome.status_code, error=outcome.error, replay=replay
            ),
        )
        level = logging.INFO if status in ("delivered", "retrying") else logging.WARNING
        logger.log(
            level,
            f"webhook: {attempt.kind} {status} (attempt {attempt.number}"
            + (f", answered {outcome.status_code}" if outcome.status_code is not None else "")
            + (f": {outcome.error}" if outcome.error else "")
            + ")",
            extra=log_fields(
                **fields,
                webhook_id=attempt.webhook_id,
                webhook_event=attempt.kind,
                outcome=status,
                status_code=outcome.status_code,
                attempt=attempt.number,
                receiver=_without_query(url),
            ),
        )
        if status == "retrying":
            raise WebhookNotDelivered(
                f"webhook {attempt.webhook_id} not delivered (attempt {attempt.number}); "
                "Pub/Sub redelivers it"
            )
        return status

    def _send(
        self,
        attempt: _Attempting,
        signer: WebhookSigner,
        target: WebhookTarget,
        now: dt.datetime,
        fields: dict[str, Any],
    ) -> SendOutcome:
        try:
            body = event_body(
                attempt.creation, attempt.name, media_links=self._media_links, now=now
            )
            headers = signer.headers(attempt.webhook_id, now, body)
        except ValidationError as exc:
            # Not a creation the API could show: no retry will make it one.
            return SendOutcome(
                "stop", error=f"the creation cannot be shown: {exc.error_count()} errors"
            )
        except Exception as exc:
            # Signing its media URLs failed, say: retried, and recorded like any failed
            # attempt so the window runs. The record (which the API shows) names only the
            # error's type; the log has the whole of it.
            logger.exception(
                f"webhook: {attempt.kind} could not be built (attempt {attempt.number})",
                extra=log_fields(**fields, webhook_id=attempt.webhook_id),
            )
            return SendOutcome(
                "retry", error=f"the event could not be built ({type(exc).__name__})"
            )
        return self._sender.send(target, body, headers)

    # --- a processing event overtaken by the final status --------------------------------------

    def _supersede(self, creation: Snapshot, fields: dict[str, Any]) -> str:
        """A `processing` event dropped because the creation is final: nothing is sent, and a
        record still about it (not finished) is finished, or it would say `retrying` forever
        when the webhook asked for no final event to take the record over."""
        status = creation.get("status")
        webhook = creation.get("webhook")
        state = state_of(webhook, PROCESSING) if isinstance(webhook, dict) else None
        if state is None or state.status is None or state.done:
            logger.info(
                f"webhook: nothing sent: {SUPERSEDED} (processing event)",
                extra=log_fields(**fields),
            )
            return "ignored"
        now = self._clock()
        self._records.record(
            creation.id,
            Attempt(
                event=PROCESSING,
                status="stopped",
                number=max(state.attempts, 1),
                first_attempt_at=state.first_attempt_at or now,
                at=now,
                error=f"superseded: the creation is {status}",
            ),
        )
        logger.info(
            f"webhook: {PROCESSING} stopped: superseded (the creation is {status})",
            extra=log_fields(
                **fields,
                webhook_id=webhook_id(creation.id, "processing"),
                webhook_event=PROCESSING,
                outcome="stopped",
            ),
        )
        return "stopped"

    # --- giving up ------------------------------------------------------------------------------

    def _give_up(
        self,
        event: StatusEvent,
        attempt: _Attempting,
        webhook: dict[str, Any],
        now: dt.datetime,
        fields: dict[str, Any],
    ) -> str:
        # Published first: if the record's write then fails, the redelivery publishes again
        # (an operator may read one event twice, never none).
        last = webhook.get("last_response") if webhook.get("event") == attempt.kind else None
        message = {
            **event.model_dump(mode="json", exclude={"trace"}),
            "event": attempt.kind,
            "webhook_id": attempt.webhook_id,
            "attempts": attempt.number - 1,
            "first_attempt_at": rfc3339(attempt.first),
            "exhausted_at": rfc3339(now),
            "last_response": last,
        }
        attributes = {**event.attributes(), "webhook_id": attempt.webhook_id}
        self._exhausted.publish(message, attributes)
        self._records.record(
            attempt.creation.id,
            Attempt(
                event=attempt.kind,
                status="exhausted",
                number=max(attempt.number - 1, 1),
                first_attempt_at=attempt.first,
                at=now,
                error=f"given up after {self._settings.webhook_retry_seconds:g} s of retries",
            ),
        )
        logger.error(
            f"webhook: {attempt.kind} exhausted after {attempt.number - 1} attempts; "
            f"published to {self._settings.webhook_exhausted_topic} for an operator",
            extra=log_fields(
                **fields,
                webhook_id=attempt.webhook_id,
                webhook_event=attempt.kind,
                outcome="exhausted",
                attempt=attempt.number - 1,
            ),
        )
        return "exhausted"


@dataclass(frozen=True)
class _Attempting:
    creation: Snapshot
    name: str  # `completed`
    kind: str  # `creation.completed`
    webhook_id: str
    first: dt.datetime
    number: int

    def recorded(
        self,
        status: DeliveryStatus,
        at: dt.datetime,
        *,
        status_code: int | None = None,
        error: str | None = None,
        replay: bool = False,
    ) -> Attempt:
        """This attempt as the record keeps it."""
        return Attempt(
            event=self.kind,
            status=status,
            number=self.number,
            first_attempt_at=self.first,
            at=at,
            status_code=status_code,
            error=error,
            replay=replay,
        )


def _why_not(event: StatusEvent, name: str | None, creation: Snapshot) -> str | None:
    """Why this event sends nothing, or None if it may."""
    if name is None:
        return "no webhook event is announced for this status"
    if not creation.exists:
        return "the creation is gone"
    if (creation.get("user_id"), creation.get("type")) != (event.user_id, event.type):
        return "the event disagrees with its creation"
    status = creation.get("status")
    if name == "processing":
        if status in lifecycle.FINAL_STATUSES:
            return SUPERSEDED
        if status != "processing":
            return "the creation is not processing"
    elif status != event.status:
        return "the event disagrees with its creation's status"
    webhook = creation.get("webhook")
    if not isinstance(webhook, dict) or not isinstance(webhook.get("url"), str):
        return "the creation has no webhook"
    if name not in wanted_events(webhook):
        return f"its webhook did not ask for {name}"
    return None


def _phrase(exc: UnsafeWebhookUrl) -> str:
    """A refusal as a phrase about the URL: "its host resolves to ..." as it is, "must be an
    https URL" with its subject ("it must be ...")."""
    text = str(exc)
    return text if text.startswith("its ") else f"it {text}"


def _the_url(exc: UnsafeWebhookUrl) -> str:
    """A refusal as a sentence: "the URL's host ... does not resolve"."""
    text = str(exc)
    return (
        f"the URL's {text.removeprefix('its ')}" if text.startswith("its ") else f"the URL {text}"
    )


def _without_query(url: str) -> str:
    """The URL as logged: scheme, host, port and path only (a query, a fragment or a
    `user:password@` may hold a receiver's secret)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(not a URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"
