"""Request parsing and response building shared by every endpoint."""

from __future__ import annotations

import json
from typing import Any

import flask

from shared.core.errors import (
    ClientError,
    InvalidJson,
    NotFound,
    PayloadTooLarge,
    RetryableError,
    SuiteError,
    UnsupportedMediaType,
)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        mimetype="application/json",
    )
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> flask.Response:
    return json_response(
        status, {"error": {"code": code, "message": message}, **(extra or {})}, headers
    )


def response_for_error(error: SuiteError, retry_after_seconds: int) -> flask.Response:
    """The contract's answer for a deliberate error."""
    if isinstance(error, ClientError):
        return error_response(
            error.http_status,
            error.code,
            error.message,
            headers=error.answer_headers(),
            extra=error.answer_fields(),
        )
    if isinstance(error, RetryableError):
        return error_response(
            503,
            error.code,
            error.message,
            extra=error.answer_fields(),
            headers={**error.answer_headers(), "Retry-After": str(retry_after_seconds)},
        )
    return error_response(500, "internal", "internal error")


def unrouted_path_response(path: str) -> flask.Response:
    """The 404 for a path the function was never handed (the platform's router took it)."""
    return response_for_error(NotFound(f"no such path: {path!r}"), 1)


def read_json_body(request: flask.Request, max_bytes: int) -> Any:
    """The JSON body, checked in the contract's order: size, media type, syntax."""
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise PayloadTooLarge(f"the body is over {max_bytes} bytes")
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    # Read at most one byte past the limit: a chunked body without a length is bounded too.
    raw = request.stream.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"the body is over {max_bytes} bytes")
    charset = request.mimetype_params.get("charset", "utf-8")
    try:
        return json.loads(raw.decode(charset), parse_constant=_refuse_non_json_constant)
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        # The parser recurses once per `[` or `{`; 64 KiB of them is far past the interpreter's
        # limit. No body of the contract is more than two levels deep.
        raise InvalidJson("the body is not valid JSON: it is nested too deeply") from None


def _refuse_non_json_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not.
    raise ValueError(f"{name} is not JSON")
