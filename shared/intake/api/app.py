"""The `submit` HTTP API: routing, authentication and the contract's calls.

`SubmitApi` holds its collaborators (passed in, so tests can swap any of them) and turns one
Flask request into one response. `build_submit_api` wires the production collaborators.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import flask
from google.api_core import exceptions as gexc
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound

from shared.core.clients import firestore_client, publisher_client, storage_client
from shared.core.errors import (
    Conflict,
    InvalidRequest,
    InvalidTransition,
    MethodNotAllowed,
    NotFound,
    StoreBusy,
    SuiteError,
)
from shared.core.log import get_logger, log_fields
from shared.core.settings import Settings
from shared.creations.model import (
    REFUNDABLE_STATUSES,
    TRANSITIONS,
    creation_cost,
    parse_creation_request,
    parse_reel_request,
)
from shared.creations.store import CreationStore
from shared.intake.api.bodies import json_response, read_json_body, response_for_error
from shared.intake.api.routes import ROUTES
from shared.intake.auth import AuthenticatedUser, FirebaseTokenVerifier
from shared.intake.submission import Accepted, SubmissionService, request_fingerprint
from shared.media.storage import GcsMediaStore, MediaStore
from shared.money.ledger import Ledger, StatusMove
from shared.store.optimistic import STORE_UNAVAILABLE
from shared.work.jobs import PubSubJobPublisher

logger = get_logger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 255
LIST_QUERY_PARAMS = frozenset({"status", "limit", "cursor"})


@dataclass(frozen=True)
class SubmitApi:
    settings: Settings
    verifier: FirebaseTokenVerifier
    ledger: Ledger
    creations: CreationStore
    submissions: SubmissionService
    media: MediaStore

    def __call__(self, request: flask.Request) -> flask.Response:
        started = time.monotonic()
        context: dict[str, Any] = {}
        try:
            response = self._dispatch(request, context)
        except SuiteError as error:
            response = response_for_error(error, self.settings.busy_retry_after_seconds)
            context["error_code"] = error.code
        except (*STORE_UNAVAILABLE, gexc.GoogleAPICallError) as exc:
            # Firestore (or Storage) could not serve a plain call: retryable for the client,
            # and nothing was written. Errors outside the usual transient set (permission,
            # cancellation) are logged loudly: they point at the deployment, not the request.
            if not isinstance(exc, STORE_UNAVAILABLE):
                logger.error(f"store call failed: {exc!r}", extra=log_fields(**context))
            busy = StoreBusy(f"the store is unavailable: {type(exc).__name__}")
            response = response_for_error(busy, self.settings.busy_retry_after_seconds)
            context["error_code"] = busy.code
        except Exception:
            logger.exception("unhandled error", extra=log_fields(**context))
            response = response_for_error(SuiteError("internal"), 1)
        severity_warning = response.status_code >= 500
        (logger.warning if severity_warning else logger.info)(
            f"{request.method} {request.path} {response.status_code}",
            extra={
                "json_fields": {
                    **context,
                    "status": response.status_code,
                    "latency_ms": round((time.monotonic() - started) * 1000, 1),
                },
                "http_request": {
                    "requestMethod": request.method,
                    "requestUrl": request.path,
                    "status": response.status_code,
                },
            },
        )
        return response

    # --- plumbing -----------------------------------------------------------------------------

    def _dispatch(self, request: flask.Request, context: dict[str, Any]) -> flask.Response:
        adapter = ROUTES.bind("submit", path_info=request.path)
        try:
            endpoint, arguments = adapter.match(request.path, method=request.method)
        except WerkzeugMethodNotAllowed as exc:
            allowed = sorted(exc.valid_methods or [])
            raise MethodNotAllowed(
                f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}",
                allowed=allowed,
            ) from None
        except WerkzeugNotFound:
            raise NotFound(f"no such path: {request.path}") from None
        user = self.verifier.verify_header(request.headers.get("Authorization"))
        context["user_id"] = user.uid
        if "creation_id" in arguments:
            context["creation_id"] = arguments["creation_id"]
        handler = getattr(self, f"_{endpoint}")
        result: flask.Response = handler(request, user, context, **arguments)
        return result

    # --- the calls ----------------------------------------------------------------------------

    def _create_creation(
        self, request: flask.Request, user: AuthenticatedUser, context: dict[str, Any]
    ) -> flask.Response:
        body = read_json_body(request, self.settings.max_body_bytes)
        key = _idempotency_key(request)
        normalised = parse_creation_request(body, self.settings)
        kind = body["type"]
        accepted = self.submissions.submit(
            user_id=user.uid,
            kind=kind,
            request=normalised,
            cost=creation_cost(kind, normalised, self.settings),
            idempotency_key=key,
            fingerprint=request_fingerprint("POST /v1/creations", body),
        )
        return self._accepted(accepted, context)

    def _accepted(self, accepted: Accepted, context: dict[str, Any]) -> flask.Response:
        context["creation_id"] = accepted.creation.id
        headers = {"Location": f"/v1/creations/{accepted.creation.id}"}
        if accepted.replayed:
            headers["Idempotent-Replayed"] = "true"
        return json_response(
            202, {**accepted.creation.to_api(), "balance": accepted.balance}, headers
        )

    def _create_reel(
        self, request: flask.Request, user: AuthenticatedUser, context: dict[str, Any]
    ) -> flask.Response:
        body = read_json_body(request, self.settings.max_body_bytes)
        key = _idempotency_key(request)
        reel = parse_reel_request(body)
        found = self.creations.get_many(reel.clips)
        sources: list[str] = []
        total_seconds = 0.0
        for index, clip_id in enumerate(reel.clips):
            clip = found.get(clip_id)
            if clip is None or clip.user_id != user.uid:
                raise NotFound(f"clips[{index}]: no creation {clip_id}")
            if clip.type != "video":
                raise InvalidRequest(f"clips[{index}]: {clip_id} is a {clip.type}, not a video")
            if clip.status != "draft" or not clip.media:
                raise InvalidRequest(
                    f"clips[{index}]: {clip_id} is {clip.status}; only video drafts can be stitched"
                )
            sources.append(str(clip.media[0]["uri"]))
            total_seconds += float(clip.media[0].get("duration_seconds") or 0)
        normalised: dict[str, Any] = {
            "clips": reel.clips,
            "sources": sources,
            "duration_seconds": round(total_seconds, 3),
        }
        if reel.title:
            normalised["title"] = reel.title
        accepted = self.submissions.submit(
            user_id=user.uid,
            kind="reel",
            request=normalised,
            cost=creation_cost("reel", normalised, self.settings),
            idempotency_key=key,
            fingerprint=request_fingerprint("POST /v1/reels", body),
        )
        return self._accepted(accepted, context)

    def _list_creations(
        self, request: flask.Request, user: AuthenticatedUser, context: dict[str, Any]
    ) -> flask.Response:
        unknown = sorted(set(request.args) - LIST_QUERY_PARAMS)
        if unknown:
            raise InvalidRequest(f"{unknown[0]}: unknown query parameter")
        status = request.args.get("status")
        if status is not None and status not in TRANSITIONS:
            raise InvalidRequest(f"status: must be one of {sorted(TRANSITIONS)}")
        limit = _int_param(
            request.args.get("limit"),
            "limit",
            default=self.settings.list_limit_default,
            maximum=self.settings.list_limit_max,
        )
        cursor = request.args.get("cursor") or None
        items, next_cursor = self.creations.list_for_user(
            user.uid, status=status, limit=limit, cursor=cursor
        )
        return json_response(
            200, {"items": [item.to_api() for item in items], "next_cursor": next_cursor}
        )

    def _get_creation(
        self,
        request: flask.Request,
        user: AuthenticatedUser,
        context: dict[str, Any],
        creation_id: str,
    ) -> flask.Response:
        return json_response(200, self.creations.get_owned(user.uid, creation_id).to_api())

    def _delete_creation(
        self,
        request: flask.Request,
        user: AuthenticatedUser,
        context: dict[str, Any],
        creation_id: str,
    ) -> flask.Response:
        creation = self.creations.get_owned(user.uid, creation_id)
        if creation.status not in ("draft", "failed", "canceled"):
            raise Conflict(f"the creation is {creation.status}; it can be deleted once finished")
        if creation.status in REFUNDABLE_STATUSES and not creation.refunded:
            # The refund must not depend on a document we are about to delete.
            self.ledger.refund(creation_id)
        deleted = self.media.delete_media(creation)
        self.creations.delete_final(user.uid, creation_id)
        logger.info(
            "creation deleted",
            extra=log_fields(user_id=user.uid, creation_id=creation_id, objects_deleted=deleted),
        )
        return flask.Response(status=204)

    def _cancel_creation(
        self,
        request: flask.Request,
        user: AuthenticatedUser,
        context: dict[str, Any],
        creation_id: str,
    ) -> flask.Response:
        creation = self.creations.get_owned(user.uid, creation_id)
        if creation.status == "canceled":
            raise Conflict("the creation is already canceled")
        move = StatusMove(to="canceled", allowed_from=frozenset({"pending"}))
        try:
            self.ledger.refund(creation_id, move=move)
        except InvalidTransition as exc:
            raise Conflict(
                f"the creation is {exc.current}; only pending ones can be canceled"
            ) from None
        return json_response(200, self.creations.get_owned(user.uid, creation_id).to_api())

    def _get_balance(
        self, request: flask.Request, user: AuthenticatedUser, context: dict[str, Any]
    ) -> flask.Response:
        return json_response(200, {"tokens": self.ledger.balance(user.uid)})


def _idempotency_key(request: flask.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if (
        not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH
        or not key.isprintable()
        or not key.isascii()
    ):
        raise InvalidRequest(
            f"Idempotency-Key: must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters"
        )
    return key


def _int_param(raw: str | None, name: str, *, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise InvalidRequest(f"{name}: must be an integer from 1 to {maximum}")
    return int(raw)


def build_submit_api(settings: Settings) -> SubmitApi:
    """The API wired to the real Firestore, Pub/Sub and Cloud Storage clients."""
    db = firestore_client(settings)
    ledger = Ledger(db, settings)
    creations = CreationStore(db, settings)
    publisher = PubSubJobPublisher(publisher_client(settings), settings)
    return SubmitApi(
        settings=settings,
        verifier=FirebaseTokenVerifier(settings),
        ledger=ledger,
        creations=creations,
        submissions=SubmissionService(
            db, settings, ledger=ledger, creations=creations, publisher=publisher
        ),
        media=GcsMediaStore(storage_client(settings), settings.media_bucket),
    )
