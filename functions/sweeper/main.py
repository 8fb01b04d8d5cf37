"""`sweep`: moves stuck creations on; Cloud Scheduler publishes to its topic on a schedule."""

from __future__ import annotations

from functools import lru_cache

import functions_framework
from cloudevents.http import CloudEvent

from shared.events import event_handler, pubsub_message
from shared.log import setup_logging
from shared.settings import load_settings
from shared.sweeper import Sweeper
from shared.wiring import build_sweeper


@lru_cache(maxsize=1)
def _sweeper() -> Sweeper:
    settings = load_settings()
    setup_logging(settings.log_level)
    return build_sweeper(settings)


@functions_framework.cloud_event
@event_handler
def sweep(event: CloudEvent) -> None:
    pubsub_message(event)  # only checks the event is a Pub/Sub message; its body is unused
    _sweeper().sweep()
