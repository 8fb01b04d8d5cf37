"""In-memory stand-ins for the collaborators the fast tests do not run for real: the job queue,
a provider, the media store, a clock. Each records what it was asked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.core.errors import QueueUnavailable, StoreBusy
from shared.core.settings import Pricing, Settings
from shared.creations.model import Creation, Job
from shared.creations.requests import StoredRequest
from shared.creations.status_events import StatusEvent
from shared.intake.auth import AuthenticatedUser
from shared.media.providers.base import GeneratedMedia, GenerationContext
from shared.media.storage import attempt_prefix, media_prefix, split_gs_uri, staging_prefix

# Settings for the fast tests of the money and claim logic: few rounds before `busy`, and an
# image that costs 3 tokens (so a refund is told from a grant of 1).
SETTINGS = Settings(store_max_attempts=5, pricing=Pricing(image_tokens_per_image=3))


class RecordingPublisher:
    """A job queue that keeps what it is sent; `fail` makes every publish fail."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[tuple[Job, str]] = []
        self.fail = fail

    def publish(self, job: Job, *, topic: str) -> str:
        if self.fail:
            raise QueueUnavailable("the queue is down")
        self.sent.append((job, topic))
        return str(len(self.sent))

    @property
    def jobs(self) -> list[Job]:
        return [job for job, _topic in self.sent]


class RecordingAnnouncer:
    """A status stream that keeps what it is told; `fail` makes every announcement fail."""

    def __init__(self, *, fail: bool = False) -> None:
        self.events: list[StatusEvent] = []
        self.fail = fail

    def announce(self, event: StatusEvent) -> bool:
        if self.fail:
            return False
        self.events.append(event)
        return True

    @property
    def told(self) -> list[tuple[str, str]]:
        """(creation id, status) of each event, in order."""
        return [(event.creation_id, event.status) for event in self.events]


@dataclass
class ScriptedProvider:
    """Makes one small file per call, or raises what `fail_with` says (one per attempt)."""

    fail_with: list[BaseException] = field(default_factory=list)
    calls: list[tuple[Job, StoredRequest, int]] = field(default_factory=list)
    during: Callable[[GenerationContext], None] | None = None  # runs while "generating"
    makes: int = 1
    # Why the answer is short, said to the context (`GenerationContext.say_short`) with it.
    short: str | None = None

    def generate(
        self, job: Job, request: StoredRequest, context: GenerationContext
    ) -> list[GeneratedMedia]:
        self.calls.append((job, request, context.attempt))
        if self.during is not None:
            self.during(context)
        if self.fail_with:
            raise self.fail_with.pop(0)
        made = []
        for index in range(self.makes):
            path = context.workdir / f"image-{index}.png"
            path.write_bytes(b"\x89PNG made by the test")
            made.append(GeneratedMedia(path, "image/png", 8, 8))
        if self.short is not None:
            context.say_short(self.short)
        return made


@dataclass
class RecordingMediaStore:
    """Uploads by remembering names and bytes; deletes by forgetting them. The names are the
    real store's (`shared.media.storage`), so tests can tell one attempt's objects from
    another's. `down` makes that many calls raise `StoreBusy`, as a storage outage would."""

    objects: dict[str, bytes] = field(default_factory=dict)
    down: int = 0
    uploaded: list[str] = field(default_factory=list)  # every name ever written, in order

    def upload(
        self, user_id: str, creation_id: str, items: list[GeneratedMedia], *, scope: str
    ) -> list[dict[str, Any]]:
        self._answer()
        media = []
        for index, item in enumerate(items):
            name = f"{attempt_prefix(user_id, creation_id, scope)}{index}{item.path.suffix}"
            self.objects[name] = Path(item.path).read_bytes()
            self.uploaded.append(name)
            media.append(
                {
                    "uri": f"gs://media/{name}",
                    "content_type": item.content_type,
                    "bytes": item.bytes,
                    "width": item.width,
                    "height": item.height,
                }
            )
        return media

    def discard(self, media: list[dict[str, Any]]) -> int:
        self._answer()
        return self._forget([split_gs_uri(str(item["uri"]))[1] for item in media])

    def settle(self, user_id: str, creation_id: str, keep: Collection[str]) -> int:
        self._answer()
        kept = {split_gs_uri(uri)[1] for uri in keep}
        prefixes = (media_prefix(user_id, creation_id), staging_prefix(user_id, creation_id))
        return self._forget([n for n in self.objects if n.startswith(prefixes) and n not in kept])

    def delete_media(self, creation: Creation) -> int:
        self._answer()
        prefixes = (
            media_prefix(creation.user_id, creation.id),
            staging_prefix(creation.user_id, creation.id),
        )
        return self._forget([n for n in self.objects if n.startswith(prefixes)])

    def under(self, user_id: str, creation_id: str) -> list[str]:
        """The names under the creation's media prefix, sorted."""
        return sorted(n for n in self.objects if n.startswith(media_prefix(user_id, creation_id)))

    def _forget(self, names: list[str]) -> int:
        gone = [name for name in names if self.objects.pop(name, None) is not None]
        return len(gone)

    def _answer(self) -> None:
        if self.down:
            self.down -= 1
            raise StoreBusy("media storage is unavailable: injected")


class Clock:
    """A settable UTC clock: `clock()` is now; `clock.advance(seconds)` moves it on."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self.now = start or dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


# --- the HTTP API's collaborators, for SubmitApi built in a unit test ------------------------


class OneUser:
    """Stands in for the token check: every caller is `uid`."""

    def __init__(self, uid: str = "u") -> None:
        self.uid = uid

    def verify_header(self, authorization: str | None) -> AuthenticatedUser:
        return AuthenticatedUser(self.uid, {})


class UnsignedMediaLinks:
    """The API's media links, unsigned (no storage client): the creation as the API shows it."""

    def api_view(self, creation: Creation) -> dict[str, Any]:
        return creation.to_api()


class StubResolver:
    """Answers every name with `addresses` (or, with none, fails to resolve it), and keeps what
    it was asked: no test resolves a real name."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if not self.addresses:
            raise OSError("Name or service not known")
        return self.addresses
