"""Signed webhooks: what a creation asks to hear of, and where it may be sent.

model       the `webhook` a creation asks for (URL, events) and its delivery record
targets     where a webhook may be sent: public https addresses only
"""

from shared.webhooks.model import (
    DEFAULT_EVENTS,
    DELIVERY_STATUSES,
    EVENT_OF_STATUS,
    RECORD_FIELDS,
    WEBHOOK_EVENTS,
    DeliveryStatus,
    WebhookBody,
    WebhookEventName,
    event_type,
    known_events,
    wanted_events,
    webhook_document,
)
from shared.webhooks.targets import (
    Resolver,
    UnsafeWebhookUrl,
    WebhookHostNotFound,
    WebhookTarget,
    address_refusal,
    check_target,
    loopback_only_resolver,
    system_resolver,
)

__all__ = [
    "DEFAULT_EVENTS",
    "DELIVERY_STATUSES",
    "EVENT_OF_STATUS",
    "RECORD_FIELDS",
    "WEBHOOK_EVENTS",
    "DeliveryStatus",
    "Resolver",
    "UnsafeWebhookUrl",
    "WebhookBody",
    "WebhookEventName",
    "WebhookHostNotFound",
    "WebhookTarget",
    "address_refusal",
    "check_target",
    "event_type",
    "known_events",
    "loopback_only_resolver",
    "system_resolver",
    "wanted_events",
    "webhook_document",
]
