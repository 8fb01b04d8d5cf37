"""What happens after submit: the job queue, the worker that makes media, the backstops.

jobs             the job message: publishing it (`submit`, the sweeper), reading it (workers)
publishing       one Pub/Sub publish with a bounded wait (jobs and status events)
status_publisher announcing status moves on the creation status stream (STATUS_TOPIC)
worker           claim, generate, store, finish as draft; the error policy of `generate`/`stitch`
phases           how long each phase of a job took, for its one summary line
progress_writes  progress writes thinned to about one a second
sweeper          re-enqueues, fails or refunds what got stuck
dead_letters     a job Pub/Sub gave up on ends its creation `failed`
"""

from shared.work.dead_letters import DeadLetterHandler
from shared.work.jobs import JobPublisher, PubSubJobPublisher, job_from_event, topic_for
from shared.work.progress_writes import ThrottledProgress
from shared.work.publishing import BoundedPublisher
from shared.work.status_publisher import PubSubStatusAnnouncer
from shared.work.sweeper import Sweeper, SweepReport
from shared.work.worker import GenerationWorker, Outcome

__all__ = [
    "BoundedPublisher",
    "DeadLetterHandler",
    "GenerationWorker",
    "JobPublisher",
    "Outcome",
    "PubSubJobPublisher",
    "PubSubStatusAnnouncer",
    "SweepReport",
    "Sweeper",
    "ThrottledProgress",
    "job_from_event",
    "topic_for",
]
