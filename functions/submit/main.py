"""`submit`: the HTTP API of the suite (see docs/openapi.yaml). All logic lives in `shared/`."""

from __future__ import annotations

import flask
import functions_framework

from shared.core.runtime import per_process
from shared.wiring import build_submit_api

_api = per_process(build_submit_api)


@functions_framework.http
def submit(request: flask.Request) -> flask.Response:
    return _api()(request)
