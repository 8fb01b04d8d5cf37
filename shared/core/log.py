"""Structured JSON logs on stdout, in the shape Cloud Logging parses (`severity`, `message`).

Context fields (creation id, user id, event id) go in `extra={"json_fields": {...}}` or through
`log_fields(...)`; Cloud Logging indexes every top-level key of the JSON line.

Every line also carries:
- `time`: when it was written (RFC 3339, UTC, microseconds), which Cloud Logging takes as the
  entry's timestamp, and which local log files would otherwise lack;
- the trace it belongs to: `logging.googleapis.com/trace` = `projects/{project}/traces/{id}`
  (Cloud Logging groups by it), with `.../spanId` and `.../trace_sampled`. The trace bound by
  `shared.core.tracing` wins; with none bound, Cloud Logging's handler reads the Flask request's
  `traceparent` / `X-Cloud-Trace-Context` itself (in an HTTP function), as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Any

from google.cloud.logging_v2.handlers import StructuredLogHandler

from shared.core import tracing

_CONFIGURED = False
# Set on a record whose trace came from the bound trace (not from `extra=`).
_TRACED_BY_BINDING = "_trace_from_binding"


class BoundTraceFilter(logging.Filter):
    """Puts the bound trace on each record, in the attributes `CloudLoggingFilter` reads first
    (`trace`, `span_id`, `trace_sampled`), so it beats the one that filter infers from the
    request. A trace passed in `extra=` wins over both."""

    def __init__(self, project: str | None) -> None:
        super().__init__()
        self._project = project

    def filter(self, record: logging.LogRecord) -> bool:
        trace = tracing.current()
        # A record passes every handler's filters in turn: one this kind of filter traced (for
        # another handler's project) is traced again; one traced in `extra=` is left alone.
        ours = getattr(record, _TRACED_BY_BINDING, False)
        if trace is not None and (ours or not hasattr(record, "trace")):
            record.trace = trace_resource(trace.id, self._project)
            # No span rather than the request's: a span of another trace would mislead.
            record.span_id = trace.span_id or ""
            record.trace_sampled = trace.sampled
            setattr(record, _TRACED_BY_BINDING, True)
        return True


class JsonLineHandler(StructuredLogHandler):
    """Cloud Logging's structured handler, plus `time` and the bound trace on every line."""

    def __init__(self, *, project: str | None = None, stream: Any = None) -> None:
        super().__init__(stream=stream, project_id=project)  # type: ignore[no-untyped-call]
        # Before Cloud Logging's own filter, which keeps the attributes this one sets.
        self.filters.insert(0, BoundTraceFilter(project))

    def format(self, record: logging.LogRecord) -> str:
        line: str = super().format(record)  # type: ignore[no-untyped-call]
        # The handler's format always starts with "{" and strips `time` from the fields.
        return f'{{"time": "{log_time(record.created)}", {line[1:]}'


def log_time(created: float) -> str:
    """A record's time as RFC 3339 in UTC with microseconds, e.g. 2025-01-31T12:00:00.123456Z."""
    moment = dt.datetime.fromtimestamp(created, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def trace_resource(trace_id: str, project: str | None) -> str:
    """The value Cloud Logging groups by: `projects/{project}/traces/{id}` (the bare id when
    no project is known, as Cloud Logging's handler writes it then)."""
    return f"projects/{project}/traces/{trace_id}" if project else trace_id


def setup_logging(level: str = "INFO", *, project: str | None = None) -> None:
    """Send the root logger's records to stdout as one JSON object per line (idempotent).

    `project` is the project traces are named in (`projects/{project}/traces/{id}`)."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    handler = JsonLineHandler(project=project, stream=sys.stdout)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Client libraries are chatty at INFO (Pillow at DEBUG); their warnings still come through.
    for noisy in ("google", "urllib3", "grpc", "werkzeug", "PIL"):
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
