"""Signing a webhook as the Standard Webhooks spec says: `webhook-id`, `webhook-timestamp`,
`webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), with the
`standardwebhooks` package, so receivers verify with the same package (docs/webhooks.md).

The id is the event's, the same on every attempt at it (receivers deduplicate by it); the
timestamp is the attempt's (a receiver refuses one more than five minutes off its clock).
"""

from __future__ import annotations

import datetime as dt

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from shared.core.errors import RetryableError
from shared.core.log import get_logger

__all__ = ["WebhookSecretMissing", "WebhookSigner", "signer_from", "webhook_id"]


logger = get_logger(__name__)


class WebhookSecretMissing(RetryableError, code="webhook_secret_missing"):
    """No usable signing secret: a misconfiguration an operator fixes (WEBHOOK_SECRET), so the
    event is retried rather than sent unsigned or dropped."""


def webhook_id(creation_id: str, event_name: str) -> str:
    """The `webhook-id` of one event of one creation: stable across retries and replays."""
    return f"evt_{creation_id}_{event_name}"


class WebhookSigner:
    """Signs bodies with the one signing secret (`whsec_<base64>`)."""

    def __init__(self, secret: str) -> None:
        try:
            self._webhook = Webhook(secret.strip())
        except (EmptyWebhookSecretError, ValueError, RuntimeError) as exc:
            # ValueError: not base64. Never the secret itself in the message.
            raise WebhookSecretMissing(
                f"WEBHOOK_SECRET is not a signing secret ({type(exc).__name__})"
            ) from None

    def headers(self, event_id: str, at: dt.datetime, body: bytes) -> dict[str, str]:
        """The three Standard Webhooks headers for `body`, sent at `at` (aware)."""
        utc = at.astimezone(dt.UTC)  # the package reads the time as UTC whatever its zone
        signature = self._webhook.sign(event_id, utc, body.decode())
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(utc.timestamp())),
            "webhook-signature": signature,
        }


def signer_from(secret: str | None) -> WebhookSigner | None:
    """A signer for `secret`, or None when none (or an unusable one) is configured: each
    delivery then logs an ERROR and is retried until an operator sets it."""
    if not secret or not secret.strip():
        return None
    try:
        return WebhookSigner(secret)
    except WebhookSecretMissing as exc:
        logger.error(exc.message)
        return None
