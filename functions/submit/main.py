"""`submit`: the HTTP API of the suite (see docs/openapi.yaml). All logic lives in `shared/`."""

from __future__ import annotations

from functools import lru_cache

import flask
import functions_framework

from shared.api import SubmitApi, build_submit_api
from shared.log import setup_logging
from shared.settings import load_settings


@lru_cache(maxsize=1)
def _api() -> SubmitApi:
    # Built on the first request, not at import: clients need the settings of the process.
    settings = load_settings()
    setup_logging(settings.log_level)
    return build_submit_api(settings)


@functions_framework.http
def submit(request: flask.Request) -> flask.Response:
    return _api()(request)
