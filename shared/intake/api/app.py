"""The `submit` HTTP API: routing, authentication, error answers, and one handler per call.

`SubmitApi` turns one Flask request into one response. It finds the route (`ROUTES`), checks
the caller's token, runs the route's handler (`SubmitApi.handlers`: a handler parses the
request and calls one service), and maps errors to the contract's answers. The services (what
a call does) live beside it in `shared.intake`; `shared.wiring.build_submit_api` builds it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import flask
from google.api_core import exceptions as gexc
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound

from shared.core import tracing
from shared.core.calls import TRANSIENT_ERRORS
from shared.core.errors import InvalidRequest, MethodNotAllowed, NotFound, StoreBusy, SuiteError
from shared.core.log import get_logger, http_request_log, log_fields
from shared.core.settings import Settings
from shared.creations.lifecycle import STATUSES
from shared.creations.reading import CreationReader
from shared.creations.requests import StoredRequest
from shared.intake.actions import CreationActions
from shared.intake.api.bodies import json_response, read_json_body, response_for_error
from shared.intake.api.routes import ROUTES
from shared.intake.auth import AuthenticatedUser, FirebaseTokenVerifier
from shared.intake.idempotency import request_fingerprint
from shared.intake.parsing import (
    checked_webhook,
    parse_creation_request,
    parse_reel_body,
    parse_webhook,
)
from shared.intake.prices import PRICE_LIST_CACHE_CONTROL, estimate, price_list, price_list_etag
from shared.intake.reels import plan_reel
from shared.intake.source_images import SourceImages
from shared.intake.submission import SubmissionService
from shared.media.urls import MediaLinks
from shared.money.ledger import Ledger
from shared.webhooks import Resolver, WebhookBody

logger = get_logger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 255
LIST_QUERY_PARAMS = frozenset({"status", "limit", "cursor"})
# Leading zeros, then at most 9 significant ASCII digits (far above any limit, far below
# what `int()` refuses).
_POSITIVE_INT = re.compile(r"0*([1-9][0-9]{0,8})")


@dataclass(frozen=True)
class Call:
    """One request on its way through a handler: the request, its authenticated caller, and the
    fields the access log line will carry (a handler may add the creation it made)."""

    request: flask.Request
    user: AuthenticatedUser
    log: dict[str, Any]


# A handler gets the call and the route's arguments (`creation_id`).
Handler = Callable[..., flask.Response]


@dataclass(frozen=True)
class SubmitApi:
    settings: Settings
    verifier: FirebaseTokenVerifier
    ledger: Ledger
    creations: CreationReader
    submissions: SubmissionService
    actions: CreationActions
    media_links: MediaLinks
    # Resolves a webhook URL's host at submit, to refuse private addresses (`system_resolver`
    # in production; tests pass a stub, so no test resolves a name).
    resolver: Resolver

    def __call__(self, request: flask.Request) -> flask.Response:
        """Answer `request` under the trace it continues (or a new one), named back to the caller
        in the answer's `traceparent` header; a creation it makes keeps that trace."""
        trace = tracing.from_headers(request.headers)
        with tracing.bound(trace):
            response = self._answer(request)
        response.headers[tracing.TRACEPARENT] = tracing.traceparent(trace)
        return response

    def _answer(self, request: flask.Request) -> flask.Response:
        started = time.monotonic()
        context: dict[str, Any] = {}
        try:
            response = self._dispatch(request, context)
        except SuiteError as error:
            response = response_for_error(error, self.settings.busy_retry_after_seconds)
            context["error_code"] = error.code
        except (*TRANSIENT_ERRORS, gexc.GoogleAPICallError) as exc:
            # A Google service could not serve a plain call: retryable for the client, and
            # nothing was written. Errors outside the usual transient set (permission,
            # cancellation) are logged loudly: they point at the deployment, not the request.
            if not isinstance(exc, TRANSIENT_ERRORS):
                logger.error(f"store call failed: {exc!r}", extra=log_fields(**context))
            busy = StoreBusy(f"the store is unavailable: {type(exc).__name__}")
            response = response_for_error(busy, self.settings.busy_retry_after_seconds)
            context["error_code"] = busy.code
        except Exception:
            logger.exception("unhandled error", extra=log_fields(**context))
            response = response_for_error(SuiteError("internal"), 1)
        latency_ms = round((time.monotonic() - started) * 1000, 1)
        (logger.warning if response.status_code >= 500 else logger.info)(
            f"{request.method} {request.path} {response.status_code}",
            extra={
                **log_fields(**context, status=response.status_code, latency_ms=latency_ms),
                **http_request_log(request.method, request.path, response.status_code),
            },
        )
        return response

    @cached_property
    def handlers(self) -> dict[str, Handler]:
        """Each endpoint of `ROUTES` and the method that answers it."""
        return {
            "create_creation": self._create_creation,
            "create_reel": self._create_reel,
            "list_creations": self._list_creations,
            "get_creation": self._get_creation,
            "delete_creation": self._delete_creation,
            "cancel_creation": self._cancel_creation,
            "get_balance": self._get_balance,
            "get_pricing": self._get_pricing,
            "estimate_creation": self._estimate_creation,
            "estimate_reel": self._estimate_reel,
        }

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
        return self.handlers[endpoint](Call(request, user, context), **arguments)

    # --- the calls ----------------------------------------------------------------------------

    def _create_creation(self, call: Call) -> flask.Response:
        body = read_json_body(call.request, self.settings.max_body_bytes)
        return self._submit(call, ("POST /v1/creations", body), self._creation_in(call, body))

    def _create_reel(self, call: Call) -> flask.Response:
        body = read_json_body(call.request, self.settings.max_body_bytes)
        return self._submit(call, ("POST /v1/reels", body), self._reel_in(call, body))

    def _estimate_creation(self, call: Call) -> flask.Response:
        body = read_json_body(call.request, self.settings.max_body_bytes)
        return self._estimate(call, body, self._creation_in(call, body))

    def _estimate_reel(self, call: Call) -> flask.Response:
        body = read_json_body(call.request, self.settings.max_body_bytes)
        return self._estimate(call, body, self._reel_in(call, body))

    def _creation_in(self, call: Call, body: Any) -> Callable[[], StoredRequest]:
        """Builds the request a `POST /v1/creations` body asks for (a submit's and an
        estimate's: one parser, one set of refusals)."""
        return lambda: parse_creation_request(
            body,
            self.settings,
            find_source_image=SourceImages(self.creations, call.user.uid).find,
        )

    def _reel_in(self, call: Call, body: Any) -> Callable[[], StoredRequest]:
        return lambda: plan_reel(parse_reel_body(body), call.user.uid, self.creations)

    def _checked(
        self, body: Any, wanted: Callable[[], StoredRequest]
    ) -> tuple[StoredRequest, WebhookBody | None]:
        """The request `wanted` builds, then the body's webhook with its address checked: the
        whole body's rules first, then the webhook's address (submit and estimate alike)."""
        request = wanted()
        return request, self._webhook_in(body)

    def _estimate(
        self, call: Call, body: Any, wanted: Callable[[], StoredRequest]
    ) -> flask.Response:
        """What a submit of `body` would debit, refused exactly as that submit would be; reads
        the balance and writes nothing (no debit, no creation, no `Idempotency-Key` record)."""
        request, _webhook = self._checked(body, wanted)
        balance = self.ledger.balance(call.user.uid)
        return json_response(200, estimate(request, balance, self.settings).view())

    def _get_pricing(self, call: Call) -> flask.Response:
        listed = price_list(self.settings)
        etag = price_list_etag(listed)
        headers = {"ETag": f'"{etag}"', "Cache-Control": PRICE_LIST_CACHE_CONTROL}
        if call.request.if_none_match.contains_weak(etag):  # RFC 9110: a weak comparison
            response = flask.Response(status=304)
            response.headers.update(headers)
            return response
        return json_response(200, listed, headers)

    def _submit(
        self, call: Call, asked: tuple[str, Any], wanted: Callable[[], StoredRequest]
    ) -> flask.Response:
        """Debit and enqueue the request `wanted` builds from `asked` (operation, body).

        A repeat of an `Idempotency-Key` is answered before `wanted` runs: the replay is what
        was made, even if the same body would be refused today (a clip deleted since, a model
        no longer allowed, a webhook host that now resolves elsewhere). The body's `webhook`
        is checked after `wanted` (its shape is the body parser's), and only for a new
        submission: its host is resolved, and nothing is sent to it.
        """
        key = _idempotency_key(call.request)
        fingerprint = request_fingerprint(*asked)
        accepted = None
        if key is not None:
            accepted = self.submissions.replay(
                user_id=call.user.uid, idempotency_key=key, fingerprint=fingerprint
            )
        if accepted is None:
            request, webhook = self._checked(asked[1], wanted)
            accepted = self.submissions.submit(
                user_id=call.user.uid,
                request=request,
                idempotency_key=key,
                fingerprint=fingerprint,
                webhook=webhook,
            )
        call.log["creation_id"] = accepted.creation.id
        headers = {"Location": f"/v1/creations/{accepted.creation.id}"}
        if accepted.replayed:
            headers["Idempotent-Replayed"] = "true"
        body = {**self.media_links.api_view(accepted.creation), "balance": accepted.balance}
        return json_response(202, body, headers)

    def _webhook_in(self, body: Any) -> WebhookBody | None:
        return checked_webhook(
            parse_webhook(body),
            resolver=self.resolver,
            allow_loopback=self.settings.webhook_allow_loopback,
        )

    def _list_creations(self, call: Call) -> flask.Response:
        args = call.request.args
        unknown = sorted(set(args) - LIST_QUERY_PARAMS)
        if unknown:
            raise InvalidRequest(f"{unknown[0]}: unknown query parameter")
        status = args.get("status")
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"status: must be one of {sorted(STATUSES)}")
        limit = _int_param(
            args.get("limit"),
            "limit",
            default=self.settings.list_limit_default,
            maximum=self.settings.list_limit_max,
        )
        cursor = args.get("cursor") or None
        items, next_cursor = self.creations.list_for_user(
            call.user.uid, status=status, limit=limit, cursor=cursor
        )
        return json_response(
            200,
            {
                "items": [self.media_links.api_view(item) for item in items],
                "next_cursor": next_cursor,
            },
        )

    def _get_creation(self, call: Call, creation_id: str) -> flask.Response:
        creation = self.creations.get_owned(call.user.uid, creation_id)
        return json_response(200, self.media_links.api_view(creation))

    def _delete_creation(self, call: Call, creation_id: str) -> flask.Response:
        self.actions.delete(call.user.uid, creation_id)
        return flask.Response(status=204)

    def _cancel_creation(self, call: Call, creation_id: str) -> flask.Response:
        canceled = self.actions.cancel(call.user.uid, creation_id)
        return json_response(200, self.media_links.api_view(canceled))

    def _get_balance(self, call: Call) -> flask.Response:
        return json_response(200, {"tokens": self.ledger.balance(call.user.uid)})


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
    # ASCII digits only, and few of them: `str.isdigit` also takes "²" (which `int()` then
    # refuses) and "٣" (which it reads as 3), and `int()` refuses more than 4300 digits.
    digits = _POSITIVE_INT.fullmatch(raw)
    if digits is None or not 1 <= int(digits[1]) <= maximum:
        raise InvalidRequest(f"{name}: must be an integer from 1 to {maximum}")
    return int(digits[1])
