"""Events as the platform sends them, for driving functions through functions-framework.

Pub/Sub push bodies are POSTed to the function (functions-framework turns them into
CloudEvents, as in production); Firestore events are binary-mode CloudEvents whose body is a
serialized `DocumentEventData`, as Eventarc sends them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from typing import Any

from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import Document as FirestoreDocument
from google.events.cloud.firestore import Document as EventDocument
from google.events.cloud.firestore import DocumentEventData, DocumentMask

from shared.creations.status_events import StatusEvent


def push_body(
    project: str,
    subscription: str,
    payload: dict[str, Any],
    *,
    message_id: str | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(json.dumps(payload).encode()).decode(),
            "attributes": attributes or {},
            "messageId": message_id or uuid.uuid4().hex,
            "publishTime": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        },
        "subscription": f"projects/{project}/subscriptions/{subscription}",
    }


def status_event_of(creation_id: str, creation: dict[str, Any]) -> dict[str, Any]:
    """The body of the status event announcing `creation` as it now is (a document's data)."""
    status = "deleting" if creation.get("deleting") is True else creation.get("status")
    return {
        "creation_id": creation_id,
        "user_id": creation.get("user_id"),
        "type": creation.get("type"),
        "status": status,
    }


def status_event(creation_id: str, creation: dict[str, Any]) -> StatusEvent:
    """`status_event_of`, as the refund function decodes it."""
    return StatusEvent.model_validate(status_event_of(creation_id, creation))


def topic_path(project: str, topic: str) -> str:
    """The push endpoint path; functions-framework reads the CloudEvent source from it."""
    return f"/projects/{project}/topics/{topic}"


def _event_document(project: str, path: str, data: dict[str, Any]) -> EventDocument:
    name = f"projects/{project}/databases/(default)/documents/{path}"
    stored = FirestoreDocument(name=name, fields=_helpers.encode_dict(data))
    # Same wire format, different generated classes: round-trip through bytes.
    document: EventDocument = EventDocument.deserialize(FirestoreDocument.serialize(stored))
    return document


def firestore_update(
    project: str,
    path: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> tuple[dict[str, str], bytes]:
    """Headers and body of a binary-mode `document.v1.updated` event for `path`."""
    payload = DocumentEventData()
    if after is not None:
        payload.value = _event_document(project, path, after)
    if before is not None:
        payload.old_value = _event_document(project, path, before)
    if before is not None and after is not None:
        changed = sorted(k for k in after if before.get(k) != after[k])
        payload.update_mask = DocumentMask(field_paths=changed)
    event = CloudEvent(
        {
            "type": "google.cloud.firestore.document.v1.updated",
            "source": f"//firestore.googleapis.com/projects/{project}/databases/(default)",
            "subject": f"documents/{path}",
            "id": uuid.uuid4().hex,
            "datacontenttype": "application/protobuf",
        },
        DocumentEventData.serialize(payload),
    )
    headers, body = to_binary(event)
    return dict(headers), body if isinstance(body, bytes) else bytes(body or b"")
