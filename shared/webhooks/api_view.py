"""A creation's `webhook` map as the HTTP API shows it: what was asked, and how delivery stands.

The map in the document (`shared.webhooks.model`) also holds the deliverer's own bookkeeping
(`done`: the events finished); a client reads only the URL, the events and the record below.
Everything is read defensively: a field that is missing or odd is shown as nothing yet, so an
answer never breaks over a record the deliverer is midway through writing.
"""

from __future__ import annotations

from typing import Any, Final

from shared.webhooks.model import DELIVERY_STATUSES, wanted_events

__all__ = ["webhook_view"]

# Shown only once there is something to show (an attempt has been made, or has succeeded).
OPTIONAL_FIELDS: Final = ("event", "last_response", "delivered_at")


def webhook_view(webhook: object) -> dict[str, Any] | None:
    """A stored `webhook` map (JSON-ready: timestamps as text) as the API shows it; None when
    the creation asks for no webhook."""
    if not isinstance(webhook, dict) or not isinstance(webhook.get("url"), str):
        return None
    attempts = webhook.get("attempts")
    status = webhook.get("status")
    view: dict[str, Any] = {
        "url": webhook["url"],
        "events": list(wanted_events(webhook)),
        "status": status if status in DELIVERY_STATUSES else "pending",
        "attempts": attempts if type(attempts) is int and attempts >= 0 else 0,
    }
    for name in OPTIONAL_FIELDS:
        if webhook.get(name) is not None:
            view[name] = webhook[name]
    return view
