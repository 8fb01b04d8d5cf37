"""The HTTP API, one method per call (docs/openapi.yaml), and downloads of media URLs.

Every answer is the API's JSON, unchanged; an error answer raises `ApiError` with its `code`
and `message`, and no answer at all raises `Unreachable` naming the URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

from creations_cli.exits import ApiError, CliError, Unreachable

# The API's creation ids (its CreationId parameter); anything else is refused before sending.
CREATION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
TIMEOUT_SECONDS = 30.0
USER_AGENT = "creations-cli/0.1"

JsonObject = dict[str, Any]


def check_creation_id(value: str) -> str:
    if not CREATION_ID.fullmatch(value):
        raise CliError(f"{value!r} is not a creation id (1-128 of A-Z a-z 0-9 _ -)")
    return value


class ApiClient:
    """Calls the API at `base_url` with `token`; `transport` replaces the network in tests."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
        )
        # Media URLs are signed: they need no credentials, and the user's token must never
        # travel to the storage host, so downloads go through a client without it.
        self._media = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._api.close()
        self._media.close()

    # --- the API's calls ----------------------------------------------------------------------

    def submit(self, body: JsonObject, idempotency_key: str | None = None) -> JsonObject:
        return self._object("POST", "/v1/creations", json=body, key=idempotency_key)

    def create_reel(self, body: JsonObject, idempotency_key: str | None = None) -> JsonObject:
        return self._object("POST", "/v1/reels", json=body, key=idempotency_key)

    def list_page(self, *, status: str | None, limit: int, cursor: str | None) -> JsonObject:
        params: dict[str, str] = {"limit": str(limit)}
        if status is not None:
            params["status"] = status
        if cursor is not None:
            params["cursor"] = cursor
        return self._object("GET", "/v1/creations", params=params)

    def get(self, creation_id: str) -> JsonObject:
        return self._object("GET", _creation_path(creation_id))

    def cancel(self, creation_id: str) -> JsonObject:
        return self._object("POST", f"{_creation_path(creation_id)}:cancel")

    def delete(self, creation_id: str) -> None:
        self._send("DELETE", _creation_path(creation_id))

    def balance(self) -> JsonObject:
        return self._object("GET", "/v1/balance")

    def pricing(self) -> JsonObject:
        return self._object("GET", "/v1/pricing")

    def estimate(self, body: JsonObject) -> JsonObject:
        """What `submit(body)` would debit; debits nothing."""
        return self._object("POST", "/v1/creations:estimate", json=body)

    def estimate_reel(self, body: JsonObject) -> JsonObject:
        """What `create_reel(body)` would debit; debits nothing."""
        return self._object("POST", "/v1/reels:estimate", json=body)

    # --- media --------------------------------------------------------------------------------

    @contextmanager
    def media(self, url: str) -> Iterator[httpx.Response]:
        """The streamed answer to a plain GET of a media `url` (raises unless it is a 200)."""
        try:
            with self._media.stream("GET", url) as response:
                if response.status_code != httpx.codes.OK:
                    response.read()
                    raise _api_error(response)
                yield response
        except httpx.TransportError as exc:
            raise Unreachable(_origin(url), _reason(exc)) from exc

    # --- plumbing -----------------------------------------------------------------------------

    def _object(
        self,
        method: str,
        path: str,
        *,
        json: JsonObject | None = None,
        params: dict[str, str] | None = None,
        key: str | None = None,
    ) -> JsonObject:
        response = self._send(method, path, json=json, params=params, key=key)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(
                response.status_code,
                "not_json",
                f"{method} {path} answered {response.status_code} without a JSON object",
                response.text,
            )
        return body

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: JsonObject | None = None,
        params: dict[str, str] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        try:
            response = self._api.request(method, path, json=json, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise Unreachable(self.base_url, _reason(exc)) from exc
        if response.is_error:
            raise _api_error(response)
        return response


def _creation_path(creation_id: str) -> str:
    return f"/v1/creations/{quote(check_creation_id(creation_id), safe='')}"


def _api_error(response: httpx.Response) -> ApiError:
    """The error the answer carries: the API's code and message, or the HTTP status."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    retry_after = response.headers.get("Retry-After", "")
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return ApiError(
            response.status_code,
            error["code"],
            str(error.get("message", "")),
            body,
            retry_after=int(retry_after) if retry_after.isdigit() else None,
        )
    text = response.text.strip().splitlines()[0][:200] if response.text.strip() else ""
    return ApiError(
        response.status_code,
        f"http_{response.status_code}",
        text or response.reason_phrase or "error",
        body if body is not None else response.text,
    )


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def _reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time ({type(exc).__name__})"
    return str(exc) or type(exc).__name__
