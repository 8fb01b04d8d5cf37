"""A stand-in CloudEvent function for stack tests: records every event it gets, as received.

Each event becomes one JSON file in `$RECORD_DIR/<target>/`, written atomically (temp file,
then rename) so a test polling the directory never reads half a file. The `generate` target
fails (HTTP 500) for a Pub/Sub message whose JSON has `"fail": true`, to drive retries and
dead-lettering; every other target always succeeds.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent


def _record(target: str, event: CloudEvent) -> dict[str, Any]:
    data = event.get_data()
    record: dict[str, Any] = {"target": target, "attributes": dict(event.get_attributes())}
    if isinstance(data, bytes):
        record["data_b64"] = base64.b64encode(data).decode()
    else:
        record["data"] = data
    directory = Path(os.environ["RECORD_DIR"]) / target
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{event['id']}-{uuid.uuid4().hex[:8]}"
    tmp = directory / f".{name}.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(directory / f"{name}.json")
    return record


def _message_json(event: CloudEvent) -> dict[str, Any]:
    data = event.get_data()
    if not isinstance(data, dict) or "message" not in data:
        return {}
    raw = base64.b64decode(data["message"].get("data") or b"")
    try:
        decoded = json.loads(raw)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


@functions_framework.cloud_event
def record(event: CloudEvent) -> None:
    _record("record", event)


@functions_framework.cloud_event
def generate(event: CloudEvent) -> None:
    _record("generate", event)
    if _message_json(event).get("fail"):
        raise RuntimeError("told to fail")  # functions-framework answers 500: Pub/Sub retries


@functions_framework.cloud_event
def refund(event: CloudEvent) -> None:
    _record("refund", event)


@functions_framework.cloud_event
def dead_letter(event: CloudEvent) -> None:
    _record("dead_letter", event)


@functions_framework.cloud_event
def sweep(event: CloudEvent) -> None:
    _record("sweep", event)


@functions_framework.cloud_event
def stitch(event: CloudEvent) -> None:
    _record("stitch", event)


@functions_framework.cloud_event
def webhooks(event: CloudEvent) -> None:
    _record("webhooks", event)
