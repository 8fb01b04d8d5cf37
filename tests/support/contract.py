"""An API client for tests that checks every answer against docs/openapi.yaml."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse
from werkzeug.test import TestResponse


class ContractClient:
    """The submit app's Flask test client; every answer is checked against the OpenAPI spec."""

    def __init__(self, client: FlaskClient, spec: OpenAPI) -> None:
        self._client = client
        self._spec = spec

    def open(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        response = self._client.open(path, method=method, **kwargs)
        self.check(method, path, response, kwargs)
        return response

    def check(self, method: str, path: str, response: TestResponse, kwargs: dict[str, Any]) -> None:
        if response.status_code == 404 and not path.startswith("/v1/creations"):
            return  # a path outside the API has no operation to check against
        if response.status_code == 405:
            assert response.json is not None
            assert response.json["error"]["code"] == "method_not_allowed"
            assert response.headers.get("Allow")
            return  # the spec documents 405 per path, but not for methods it lacks
        # The request body was consumed by the app; the response check needs only the route.
        request = MockRequest("http://127.0.0.1:8080", method.lower(), path.split("?")[0])
        self._spec.validate_response(
            request,
            MockResponse(
                response.get_data(),
                status_code=response.status_code,
                headers=dict(response.headers),
                content_type=response.mimetype or "application/json",
            ),
        )

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.open("DELETE", path, **kwargs)
