"""A creation: its document, what it asks for, the states it moves through, claims on it.

model      the `creations/{id}` document as read (`Creation`) and the `Job` naming one
requests   the typed, normalised request stored on a creation (image, video, reel)
lifecycle  the state machine, and the only writer of `status`
progress   `progress` as whole percents, 0-99 until draft
reading    reading creations: one, several, a user's pages (with cursors)
claims     a worker's hold on a creation (lease, attempts) and the writes only it may make
status_events  the creation status stream: one event per move to a final status
"""

from shared.creations import lifecycle, requests
from shared.creations.claims import Claim, ClaimStore, Skip, utcnow
from shared.creations.lifecycle import (
    DELETING,
    FINAL_STATUSES,
    REFUNDABLE_STATUSES,
    STATUSES,
    TRANSITIONS,
    can_move,
    stage_move,
    stage_new,
)
from shared.creations.model import (
    CREATION_ID_PATTERN,
    MAX_USER_ID_LENGTH,
    Creation,
    CreationType,
    Job,
    Partial,
    Status,
    is_creation_id,
    is_user_id,
    names_a_user_document,
    new_creation_id,
)
from shared.creations.progress import MAX_WORKING, RisingPercent, working_percent
from shared.creations.reading import CreationReader, being_deleted, owned, owned_draft
from shared.creations.requests import (
    IMAGE_ASPECT_RATIOS,
    SEED_LIMIT,
    ImageRequest,
    MediaRequest,
    ReelRequest,
    SourceImage,
    StoredRequest,
    StoredRequestInvalid,
    VideoRequest,
    document_of,
    stored_request,
)
from shared.creations.status_events import (
    AnnouncedStatus,
    SilentAnnouncer,
    StatusAnnouncer,
    StatusEvent,
    StatusNotAnnounced,
    announce_or_redeliver,
    status_event_in,
)

__all__ = [
    "CREATION_ID_PATTERN",
    "DELETING",
    "FINAL_STATUSES",
    "IMAGE_ASPECT_RATIOS",
    "MAX_USER_ID_LENGTH",
    "MAX_WORKING",
    "REFUNDABLE_STATUSES",
    "SEED_LIMIT",
    "STATUSES",
    "TRANSITIONS",
    "AnnouncedStatus",
    "Claim",
    "ClaimStore",
    "Creation",
    "CreationReader",
    "CreationType",
    "ImageRequest",
    "Job",
    "MediaRequest",
    "Partial",
    "ReelRequest",
    "RisingPercent",
    "SilentAnnouncer",
    "Skip",
    "SourceImage",
    "Status",
    "StatusAnnouncer",
    "StatusEvent",
    "StatusNotAnnounced",
    "StoredRequest",
    "StoredRequestInvalid",
    "VideoRequest",
    "announce_or_redeliver",
    "being_deleted",
    "can_move",
    "document_of",
    "is_creation_id",
    "is_user_id",
    "lifecycle",
    "names_a_user_document",
    "new_creation_id",
    "owned",
    "owned_draft",
    "requests",
    "stage_move",
    "stage_new",
    "status_event_in",
    "stored_request",
    "utcnow",
    "working_percent",
]
