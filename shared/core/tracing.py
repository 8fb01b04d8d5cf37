"""The trace of the work at hand: one id per creation, from its submit to its refund.

A trace id is 32 lowercase hex digits, not all zero (W3C Trace Context, Cloud Trace). Every log
line written while one is bound carries it in the field Cloud Logging groups by
(`logging.googleapis.com/trace`, see `shared.core.log`). It travels with the work:

- into `submit`, in the request's `traceparent` (`00-<trace id>-<span id>-<flags>`) or else its
  `X-Cloud-Trace-Context` (`<trace id>/<decimal span id>;o=1`). Cloud Run sets one on every
  request, so in production a creation continues the trace of the request that made it; a
  request without one (or with a malformed or all-zero one) starts a new trace;
- onto the creation document, as its `trace` field (`shared.creations.lifecycle.stage_new`);
- across Pub/Sub, in the `traceparent` attribute of each message (`attributes()`), read back by
  the event functions (`from_attributes`; `shared.core.handling.event_handler` does it for every
  Pub/Sub event). A message without one falls back to its creation's `trace` (`from_document`).

`bound(trace)` sets the trace for a block (a request, an event); `adopt(trace)` sets it for the
rest of the innermost such block, for a handler that learns it midway (a worker that has just
read it from the creation it claimed).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeGuard

__all__ = [
    "CLOUD_TRACE_CONTEXT",
    "DOCUMENT_FIELD",
    "TRACEPARENT",
    "HeaderLookup",
    "Trace",
    "adopt",
    "attributes",
    "bound",
    "current",
    "current_id",
    "from_attributes",
    "from_document",
    "from_headers",
    "from_id",
    "is_trace_id",
    "new_trace",
    "parse_cloud_trace_context",
    "parse_traceparent",
    "traceparent",
]

TRACEPARENT: Final = "traceparent"  # the W3C header, and the Pub/Sub attribute
CLOUD_TRACE_CONTEXT: Final = "X-Cloud-Trace-Context"
DOCUMENT_FIELD: Final = "trace"  # on `creations/{id}`

_TRACE_ID: Final = re.compile(r"[0-9a-f]{32}")
_ZERO_TRACE: Final = "0" * 32
_ZERO_SPAN: Final = "0" * 16
# version-traceid-parentid-flags; a version after 00 may append fields ("-..."), 00 may not.
_TRACEPARENT: Final = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})"
    r"-(?P<flags>[0-9a-f]{2})(?P<rest>-.*)?"
)
# TRACE_ID[/SPAN_ID][;o=OPTIONS]; the span id is decimal there.
_CLOUD_TRACE: Final = re.compile(
    r"(?P<trace>[0-9a-fA-F]{32})(?:/(?P<span>[0-9]{1,20}))?(?:;o=(?P<o>[0-9]))?"
)


@dataclass(frozen=True)
class Trace:
    """A trace id, with the span of the HTTP request it came with (only there: a log line of
    that request then names the same span as the platform's) and whether it is sampled."""

    id: str
    span_id: str | None = None
    sampled: bool = False


def is_trace_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(_TRACE_ID.fullmatch(value)) and value != _ZERO_TRACE


def new_trace() -> Trace:
    """A fresh random trace (128 bits; the all-zero id is invalid, and redrawn)."""
    while True:
        trace_id = secrets.token_hex(16)
        if trace_id != _ZERO_TRACE:
            return Trace(trace_id)


def parse_traceparent(value: str | None) -> Trace | None:
    """The trace of a W3C `traceparent` value; None unless it is a valid one."""
    match = _TRACEPARENT.fullmatch((value or "").strip())
    if match is None:
        return None
    version, trace_id, span_id = match["version"], match["trace"], match["span"]
    if version == "ff" or (version == "00" and match["rest"] is not None):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return Trace(trace_id, span_id, sampled=bool(int(match["flags"], 16) & 1))


def parse_cloud_trace_context(value: str | None) -> Trace | None:
    """The trace of an `X-Cloud-Trace-Context` value; None unless its trace id is valid."""
    match = _CLOUD_TRACE.fullmatch((value or "").strip())
    if match is None:
        return None
    trace_id = match["trace"].lower()
    if trace_id == _ZERO_TRACE:
        return None
    span = int(match["span"]) if match["span"] else 0
    span_id = f"{span:016x}" if 0 < span < 2**64 else None
    return Trace(trace_id, span_id, sampled=match["o"] == "1")


class HeaderLookup(Protocol):
    """What is read of a request's headers (Werkzeug's `Headers`, or a plain dict)."""

    def get(self, key: str, /) -> str | None: ...


def from_headers(headers: HeaderLookup) -> Trace:
    """The trace an HTTP request continues (`traceparent` first, as Cloud Logging's own handler
    reads them), or a new one."""
    return (
        parse_traceparent(_header(headers, TRACEPARENT))
        or parse_cloud_trace_context(_header(headers, CLOUD_TRACE_CONTEXT))
        or new_trace()
    )


def from_attributes(attributes: Mapping[str, str] | None) -> Trace | None:
    """The trace a Pub/Sub message carries (its `traceparent` attribute), or None.

    The span is not kept: it is the publisher's, and this handler's lines are not part of it."""
    parsed = parse_traceparent((attributes or {}).get(TRACEPARENT))
    return None if parsed is None else Trace(parsed.id, sampled=parsed.sampled)


def from_document(data: Mapping[str, Any] | None) -> Trace | None:
    """The trace of a creation document (its `trace` field), or None."""
    return from_id((data or {}).get(DOCUMENT_FIELD))


def from_id(trace_id: object) -> Trace | None:
    """The trace of a stored trace id, or None if it is not one."""
    return Trace(trace_id) if is_trace_id(trace_id) else None


# --- the trace of the work at hand --------------------------------------------------------------


@dataclass
class _Scope:
    trace: Trace | None


_scope: ContextVar[_Scope | None] = ContextVar("trace_scope", default=None)


def current() -> Trace | None:
    scope = _scope.get()
    return None if scope is None else scope.trace


def current_id() -> str | None:
    trace = current()
    return None if trace is None else trace.id


@contextmanager
def bound(trace: Trace | None) -> Iterator[Trace | None]:
    """Make `trace` the current trace inside the block (None: no trace), and restore the one
    before after it, however it ends."""
    token = _scope.set(_Scope(trace))
    try:
        yield trace
    finally:
        _scope.reset(token)


def adopt(trace: Trace | None) -> bool:
    """Make `trace` current for the rest of the innermost `bound` block; False (and nothing
    changes) outside one or when `trace` is None."""
    scope = _scope.get()
    if scope is None or trace is None:
        return False
    scope.trace = trace
    return True


# --- how it travels ----------------------------------------------------------------------------


def traceparent(trace: Trace) -> str:
    """`trace` as a W3C `traceparent` value: its own span if it has one, else a new span id (a
    parent id is required, and must not be zero)."""
    span_id = trace.span_id or _new_span_id()
    return f"00-{trace.id}-{span_id}-{'01' if trace.sampled else '00'}"


def attributes(trace: Trace | None = None) -> dict[str, str]:
    """The Pub/Sub message attributes that carry `trace` (default: the current one); empty when
    there is none. Pass them to `PublisherClient.publish(..., **attributes)`."""
    trace = trace or current()
    return {} if trace is None else {TRACEPARENT: traceparent(trace)}


def _new_span_id() -> str:
    while True:
        span_id = secrets.token_hex(8)
        if span_id != _ZERO_SPAN:
            return span_id


def _header(headers: HeaderLookup, name: str) -> str | None:
    """A header by name. Werkzeug's headers ignore case; for a plain dict (a test's, an
    event's), the lowercase name (HTTP/2's) is tried too."""
    return headers.get(name) or headers.get(name.lower())
