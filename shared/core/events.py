"""Decoding the events that drive the functions.

Pub/Sub push (through functions-framework): a `google.cloud.pubsub.topic.v1.messagePublished`
CloudEvent whose data is `{"message": {"data": base64, "attributes": ..., "messageId": ...}}`.
Firestore (Eventarc): `google.cloud.firestore.document.v1.*` in binary mode, the data a
protobuf `DocumentEventData`. An event that cannot be what it claims is `MalformedEvent`
(permanent: acked and logged, see `shared.core.handling`).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cloudevents.http import CloudEvent

from shared.core.errors import PermanentError

PUBSUB_MESSAGE_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
FIRESTORE_DOCUMENT_UPDATED = "google.cloud.firestore.document.v1.updated"


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


@dataclass(frozen=True)
class DocumentChange:
    """A Firestore document event reduced to what the handlers need."""

    path: str  # e.g. "creations/abc"
    document_id: str
    value: dict[str, Any] | None  # None when the document was deleted
    old_value: dict[str, Any] | None


def document_change(event: CloudEvent) -> DocumentChange:
    if not str(event["type"]).startswith("google.cloud.firestore.document.v1."):
        raise MalformedEvent(f"expected a Firestore document event, got {event['type']}")
    body = event.data
    if not isinstance(body, bytes | bytearray):
        raise MalformedEvent("a Firestore event body must be protobuf bytes")
    # Imported here: submit loads this module (through the job queue) but never decodes a
    # Firestore event, and does not ship google-events.
    from google.events.cloud.firestore import DocumentEventData

    data = DocumentEventData()
    try:
        data._pb.ParseFromString(bytes(body))
    except Exception as exc:  # protobuf raises DecodeError, a bare Exception subclass
        raise MalformedEvent(f"the body is not DocumentEventData: {exc}") from None
    name = data.value.name if data.value and data.value.name else data.old_value.name
    if "/documents/" not in name:
        raise MalformedEvent(f"unexpected document name {name!r}")
    path = name.split("/documents/", 1)[1]
    return DocumentChange(
        path=path,
        document_id=path.rsplit("/", 1)[-1],
        value=_fields(data.value) if data.value and data.value.name else None,
        old_value=_fields(data.old_value) if data.old_value and data.old_value.name else None,
    )


def _fields(document: Any) -> dict[str, Any]:
    return {key: _value(value) for key, value in document.fields.items()}


def _value(value: Any) -> Any:
    """A Firestore protobuf `Value` as plain Python (enough for status checks)."""
    kind = value._pb.WhichOneof("value_type")
    if kind == "map_value":
        return {k: _value(v) for k, v in value.map_value.fields.items()}
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "null_value":
        return None
    if kind == "timestamp_value":
        return value.timestamp_value
    return getattr(value, kind) if kind else None
