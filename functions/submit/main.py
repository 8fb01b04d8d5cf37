"""`submit`: the HTTP API of the suite (see docs/openapi.yaml). All logic lives in `shared/`."""

from __future__ import annotations

import flask
import functions_framework
from werkzeug.exceptions import NotFound

from shared.core.runtime import per_process
from shared.intake.api import unrouted_path_response
from shared.wiring import build_submit_api

_api = per_process(build_submit_api)


@functions_framework.http
def submit(request: flask.Request) -> flask.Response:
    return _api()(request)


# functions-framework sends every path to `submit` except the few its own URL map answers
# first: `/robots.txt`, `/favicon.ico`, and any path holding a newline (its `<path:path>` rule
# does not match one). Those get the contract's 404 too, not Flask's HTML page.
@functions_framework.errorhandler(NotFound)  # type: ignore[untyped-decorator]
def _unrouted(error: NotFound) -> flask.Response:
    return unrouted_path_response(flask.request.path)
