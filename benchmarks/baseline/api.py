"""The baseline's HTTP API: `POST /v1/creations` (and `GET /healthz` for readiness).

Served by gunicorn as `benchmarks.baseline.api:app` (one process, gthread, cpu x 4 threads:
functions-framework's defaults). A submit verifies the ID token, checks the body, commits the
debit and the pending creation in one write, enqueues the Celery task and answers 202. If the
enqueue fails the creation is failed and refunded before the 503.
"""

from __future__ import annotations

import logging
import os
from functools import cache
from typing import Any

from flask import Flask, Response, jsonify, request
from google.cloud import firestore

from benchmarks.baseline.auth import TokenVerifier, Unauthenticated
from benchmarks.baseline.config import settings
from benchmarks.baseline.creations import Contended, Creations, TokensShort
from benchmarks.baseline.jsonlog import log, setup
from benchmarks.baseline.tasks import generate_task

MAX_PROMPT_CHARS = 2000
OPTIONAL_FIELDS = {"seed": int, "negative_prompt": str}

setup(os.environ.get("LOG_LEVEL", "INFO"))
logger = logging.getLogger("baseline.api")
app = Flask("baseline")


class BadRequest(Exception):
    pass


@cache
def _verifier() -> TokenVerifier:
    return TokenVerifier(settings())


@cache
def _creations(pid: int) -> Creations:
    """Made on first use in the serving process (after gunicorn forked it); `pid` keys it."""
    return Creations(firestore.Client(project=settings().project), settings())


def parse(body: Any) -> dict[str, Any]:
    """The stored request of a valid body: {"type": "image", "prompt": str, seed?, ...}."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    if body.get("type") != "image":
        raise BadRequest("type: must be 'image'")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"prompt: must be a non-empty string of at most {MAX_PROMPT_CHARS}")
    unknown = set(body) - {"type", "prompt", *OPTIONAL_FIELDS}
    if unknown:
        raise BadRequest(f"unknown fields: {sorted(unknown)}")
    stored: dict[str, Any] = {"type": "image", "prompt": prompt, "count": 1}
    for name, kind in OPTIONAL_FIELDS.items():
        value = body.get(name)
        if value is not None:
            if not isinstance(value, kind) or isinstance(value, bool):
                raise BadRequest(f"{name}: must be a {kind.__name__}")
            stored[name] = value
    return stored


def _error(status: int, code: str, message: str, **fields: Any) -> tuple[Response, int]:
    return jsonify({"error": {"code": code, "message": message, **fields}}), status


@app.get("/healthz")
def healthz() -> tuple[Response, int]:
    return jsonify({"ok": True}), 200


@app.post("/v1/creations")
def submit() -> tuple[Response, int]:
    try:
        uid = _verifier().uid_of(request.headers.get("Authorization"))
    except Unauthenticated as exc:
        return _error(401, "unauthenticated", str(exc))
    try:
        stored = parse(request.get_json(silent=True))
    except BadRequest as exc:
        return _error(400, "invalid_request", str(exc))
    creations = _creations(os.getpid())
    try:
        accepted = creations.accept(uid, stored)
    except TokensShort as exc:
        return _error(402, "insufficient_tokens", str(exc), balance=exc.balance, cost=exc.cost)
    except Contended as exc:
        return _error(503, "busy", str(exc))
    try:
        generate_task.delay(accepted.creation_id)
    except Exception:
        logger.exception("enqueue failed; failing and refunding the creation")
        creations.fail(accepted.creation_id, "queue_unavailable", "not queued", owner=None)
        return _error(503, "queue_unavailable", "the job could not be queued; refunded")
    log(logger, "creation accepted", creation_id=accepted.creation_id, user_id=uid)
    body = {
        "id": accepted.creation_id,
        "status": "pending",
        "cost": accepted.cost,
        "balance": accepted.balance,
    }
    return jsonify(body), 202
