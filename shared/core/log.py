"""Structured JSON logs on stdout, in the shape Cloud Logging parses (`severity`, `message`).

Context fields (creation id, user id, event id) go in `extra={"json_fields": {...}}` or through
`log_fields(...)`; Cloud Logging indexes every top-level key of the JSON line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from google.cloud.logging_v2.handlers import StructuredLogHandler

_CONFIGURED = False


def setup_logging(level: str = "INFO") -> None:
    """Send the root logger's records to stdout as one JSON object per line (idempotent)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    handler = StructuredLogHandler(stream=sys.stdout)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Client libraries are chatty at INFO; their warnings still come through.
    for noisy in ("google", "urllib3", "grpc", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _CONFIGURED = True


def log_fields(**fields: Any) -> dict[str, Any]:
    """`extra=` for a log call: the non-empty fields become top-level JSON keys."""
    return {"json_fields": {key: value for key, value in fields.items() if value is not None}}


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def http_request_log(method: str, url: str, status: int) -> dict[str, Any]:
    """`extra=` for an HTTP access line: Cloud Logging shows it as the entry's httpRequest."""
    return {"http_request": {"requestMethod": method, "requestUrl": url, "status": status}}
