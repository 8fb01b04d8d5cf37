"""What the `submit` function does: who is calling, what they ask, taking it on.

auth         Firebase ID token verification
parsing      the bodies of POST /v1/creations and /v1/reels, checked by the contract's rules
reels        a reel's clips, checked, become its request
idempotency  `Idempotency-Key`: a repeated POST answers the same creation
limits       per-user limits: active creations and the submit rate, decided with the debit
submission   the atomic debit + creation + key, then the job on the queue
actions      cancel and delete
api/         the HTTP API: routes, bodies and answers, one handler per call
"""

from shared.intake.actions import CreationActions
from shared.intake.auth import AuthenticatedUser, FirebaseTokenVerifier
from shared.intake.idempotency import request_fingerprint
from shared.intake.parsing import parse_creation_request, parse_reel_body
from shared.intake.reels import plan_reel
from shared.intake.submission import Accepted, QueueUnavailableRefunded, SubmissionService

__all__ = [
    "Accepted",
    "AuthenticatedUser",
    "CreationActions",
    "FirebaseTokenVerifier",
    "QueueUnavailableRefunded",
    "SubmissionService",
    "parse_creation_request",
    "parse_reel_body",
    "plan_reel",
    "request_fingerprint",
]
