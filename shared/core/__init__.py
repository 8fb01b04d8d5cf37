"""What every function needs from its platform: settings, errors, logs, clients, events.

settings   the typed settings object, read once from the environment
errors     errors by what the caller must do (4xx, retry, give up)
calls      which Google API failures are transient, and how one call retries
clients    Firestore, Pub/Sub and Cloud Storage clients (emulators when their hosts are set)
events     decoding Pub/Sub and Firestore CloudEvents
handling   an event function's ack-or-redeliver policy (`event_handler`)
log        structured JSON logs for Cloud Logging
tracing    the trace id of the work at hand, and how it travels (headers, messages, documents)
runtime    a function's collaborators, built once per process
"""

from shared.core import tracing
from shared.core.calls import TRANSIENT_ERRORS, bounded_retry
from shared.core.clients import firestore_client, publisher_client, storage_client
from shared.core.errors import (
    ClientError,
    Conflict,
    InsufficientTokens,
    InvalidJson,
    InvalidRequest,
    InvalidTransition,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PermanentError,
    QueueUnavailable,
    RateLimited,
    RetryableError,
    StoreBusy,
    SuiteError,
    TooManyActive,
    TooManyRequests,
    Unauthenticated,
    UnsupportedMediaType,
)
from shared.core.events import (
    MalformedEvent,
    PubSubMessage,
    json_model_in,
    pubsub_message,
)
from shared.core.handling import event_handler
from shared.core.log import get_logger, http_request_log, log_fields, setup_logging
from shared.core.runtime import per_process
from shared.core.settings import Pricing, Settings, load_settings

__all__ = [
    "TRANSIENT_ERRORS",
    "ClientError",
    "Conflict",
    "InsufficientTokens",
    "InvalidJson",
    "InvalidRequest",
    "InvalidTransition",
    "MalformedEvent",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PermanentError",
    "Pricing",
    "PubSubMessage",
    "QueueUnavailable",
    "RateLimited",
    "RetryableError",
    "Settings",
    "StoreBusy",
    "SuiteError",
    "TooManyActive",
    "TooManyRequests",
    "Unauthenticated",
    "UnsupportedMediaType",
    "bounded_retry",
    "event_handler",
    "firestore_client",
    "get_logger",
    "http_request_log",
    "json_model_in",
    "load_settings",
    "log_fields",
    "per_process",
    "publisher_client",
    "pubsub_message",
    "setup_logging",
    "storage_client",
    "tracing",
]
