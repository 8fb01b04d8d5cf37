"""Signed webhooks: what a creation asks to hear of, and where it may be sent.

model       the `webhook` a creation asks for (URL, events) and its delivery record
targets     where a webhook may be sent: public https addresses only
payload     the JSON event a webhook POSTs (the creation as the API shows it)
signing     the Standard Webhooks signature headers
sender      one POST to a checked address, and what its answer means
records     the delivery record kept in the creation's `webhook` map
exhausted   where an event whose retries ran out goes, for an operator
delivery    the `webhooks` function: a status event in, a signed event out, retried

Only `model` and `targets` are imported here: submit and the workers use them, and the
rest needs `standardwebhooks`, which only the webhooks function ships.
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
