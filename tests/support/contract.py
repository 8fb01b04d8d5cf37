"""API clients for tests that check every answer against docs/openapi.yaml."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.test import TestResponse


def check_answer(
    spec: OpenAPI,
    method: str,
    path: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    mimetype: str | None,
) -> None:
    """Fail unless the answer `status`/`body`/`headers` to `method path` is what the spec says."""
    if status == 404 and not path.startswith("/v1/creations"):
        return  # a path outside the API has no operation to check against
    if status == 405:
        assert mimetype == "application/json", (status, body)
        assert headers.get("Allow"), headers
        return  # the spec documents 405 per path, but not for methods it lacks
    # The request body was consumed by the app; the response check needs only the route.
    request = MockRequest("http://127.0.0.1:8080", method.lower(), path.split("?")[0])
    spec.validate_response(
        request,
        MockResponse(
            body,
            status_code=status,
            headers=dict(headers),
            content_type=mimetype or "application/json",
        ),
    )


class ContractClient:
    """The submit app's Flask test client; every answer is checked against the OpenAPI spec."""

    def __init__(self, client: FlaskClient, spec: OpenAPI) -> None:
        self._client = client
        self._spec = spec

    def open(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        response = self._client.open(path, method=method, **kwargs)
        self.check(method, path, response)
        return response

    def check(self, method: str, path: str, response: TestResponse) -> None:
        if response.status_code == 405:
            assert response.json is not None
            assert response.json["error"]["code"] == "method_not_allowed"
        check_answer(
            self._spec,
            method,
            path,
            response.status_code,
            response.get_data(),
            dict(response.headers),
            response.mimetype,
        )

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("DELETE", path, **kwargs)


class HttpContractClient:
    """The same checks for a server reached over real HTTP (functions-framework's gunicorn):
    what the socket, the HTTP parser and the WSGI layer do to odd input is part of the test."""

    def __init__(self, base_url: str, spec: OpenAPI) -> None:
        self.base_url = base_url
        self._spec = spec
        self._session = requests.Session()

    def open(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        response = self._session.request(method, f"{self.base_url}{path}", **kwargs)
        mimetype = response.headers.get("Content-Type", "").split(";")[0].strip() or None
        if response.status_code == 405:
            assert response.json()["error"]["code"] == "method_not_allowed"
        check_answer(
            self._spec,
            method,
            path,
            response.status_code,
            response.content,
            response.headers,
            mimetype,
        )
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.open("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.open("DELETE", path, **kwargs)
