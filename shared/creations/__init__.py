"""A creation: its document, what it asks for, the states it moves through, claims on it.

model      the `creations/{id}` document as read (`Creation`) and the `Job` naming one
requests   the typed, normalised request stored on a creation (image, video, reel)
lifecycle  the state machine, and the only writer of `status`
progress   `progress` as whole percents, 0-99 until draft
store      reading creations; adding a new one to a batch
claims     a worker's hold on a creation (lease, attempts) and the writes only it may make
"""

from shared.creations.claims import Claim, ClaimStore, Skip
from shared.creations.lifecycle import (
    FINAL_STATUSES,
    REFUNDABLE_STATUSES,
    STATUSES,
    TRANSITIONS,
    can_move,
    stage_move,
    stage_new,
)
from shared.creations.model import Creation, CreationType, Job, Status, new_creation_id
from shared.creations.reading import CreationReader
from shared.creations.requests import (
    ImageRequest,
    MediaRequest,
    ReelRequest,
    StoredRequest,
    StoredRequestInvalid,
    VideoRequest,
    document_of,
    stored_request,
)

__all__ = [
    "FINAL_STATUSES",
    "REFUNDABLE_STATUSES",
    "STATUSES",
    "TRANSITIONS",
    "Claim",
    "ClaimStore",
    "Creation",
    "CreationReader",
    "CreationType",
    "ImageRequest",
    "Job",
    "MediaRequest",
    "ReelRequest",
    "Skip",
    "Status",
    "StoredRequest",
    "StoredRequestInvalid",
    "VideoRequest",
    "can_move",
    "document_of",
    "new_creation_id",
    "stage_move",
    "stage_new",
    "stored_request",
]
