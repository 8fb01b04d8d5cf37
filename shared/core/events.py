"""Decoding the events that drive the functions.

Every function but `submit` is fed by Pub/Sub push (through functions-framework): a
`google.cloud.pubsub.topic.v1.messagePublished` CloudEvent whose data is
`{"message": {"data": base64, "attributes": ..., "messageId": ...}}`. An event that cannot be
what it claims is `MalformedEvent` (permanent: acked and logged, see `shared.core.handling`).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TypeVar

from cloudevents.http import CloudEvent
from pydantic import BaseModel, ValidationError

from shared.core.errors import PermanentError

PUBSUB_MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


class MalformedEvent(PermanentError, code="malformed_event"):
    """The event can never be handled (wrong type, undecodable body): ack and log it."""


@dataclass(frozen=True)
class PubSubMessage:
    message_id: str
    data: bytes
    attributes: dict[str, str]


def pubsub_message(event: CloudEvent) -> PubSubMessage:
    if event["type"] != PUBSUB_MESSAGE_PUBLISHED:
        raise MalformedEvent(f"expected a Pub/Sub message, got {event['type']}")
    payload = event.data
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, dict):
        raise MalformedEvent("the event has no Pub/Sub message")
    encoded = message.get("data") or ""
    if not isinstance(encoded, str):
        raise MalformedEvent("the message data is not a base64 string")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedEvent("the message data is not base64") from None
    # Pub/Sub's attributes are a string-to-string map, and its message id a string: anything
    # else was not sent by Pub/Sub.
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(value, str) for value in attributes.values()
    ):
        raise MalformedEvent("the message attributes are not a map of strings")
    message_id = message.get("messageId") or message.get("message_id") or event["id"]
    if not isinstance(message_id, str):
        raise MalformedEvent("the message id is not a string")
    return PubSubMessage(
        message_id=message_id,
        data=data,
        attributes={str(k): v for k, v in attributes.items()},
    )


M = TypeVar("M", bound=BaseModel)


def json_model_in(message: PubSubMessage, model: type[M], *, what: str, max_bytes: int) -> M:
    """The `model` a message's JSON body holds; `MalformedEvent` if it holds none.

    Whatever cannot be one is malformed here, so it is acked (once, with one log line) rather
    than failing the same way on every delivery. A body over `max_bytes` is refused unparsed.
    """
    if len(message.data) > max_bytes:
        raise MalformedEvent(f"the message is not {what}: {len(message.data)} bytes")
    try:
        return model.model_validate(json.loads(message.data))
    except RecursionError:  # deep nesting: json.loads gives up with this, not a ValueError
        raise MalformedEvent(f"the message is not {what}: nested too deeply") from None
    except ValidationError as exc:
        # One short line: the errors without the input, which may be long.
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise MalformedEvent(f"the message is not {what}: {problems}") from None
    except ValueError as exc:  # not JSON, or not UTF-8
        raise MalformedEvent(f"the message is not {what}: {exc}") from None
