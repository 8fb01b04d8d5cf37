"""The google-genai provider through the real SDK (google-genai 3.6.1) against a local API
double (tests/support/genai_double.py), with Veo's output, our media and the creations on
the emulators.

Each test asserts what the SDK put on the wire (paths, prompt, negativePrompt, aspectRatio,
durationSeconds, sampleCount, seed, storageUri) as well as what the provider made of the
answer. Poll intervals are a few milliseconds (GENAI_POLL_*_SECONDS) and deadlines a fraction
of a second where a test waits for one.
"""

from __future__ import annotations

import base64
import io
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import google.oauth2.credentials
import pytest
from google.cloud import firestore
from google.cloud.storage import Bucket
from PIL import Image

from shared.core.clients import firestore_client
from shared.core.settings import Settings, load_settings
from shared.creations.claims import ClaimStore
from shared.creations.model import CreationType, Job
from shared.creations.requests import StoredRequest, stored_request
from shared.creations.status_events import SilentAnnouncer
from shared.media.ffmpeg import run_ffmpeg
from shared.media.probe import probe
from shared.media.providers import GeneratedMedia, GenerationContext
from shared.media.providers.base import (
    EmptyResult,
    InvalidGenerationRequest,
    ProviderPermanent,
    ProviderTimeout,
    ProviderTransient,
    SafetyBlocked,
)
from shared.media.providers.genai import GenaiProvider
from shared.media.providers.offline import video_ffmpeg_args
from shared.media.providers.source_image import SourceImageMissing
from shared.media.storage import split_gs_uri
from shared.money.ledger import Ledger
from shared.money.refunds import RefundHandler, Refunds
from shared.store.firestore import FirestoreDocuments
from shared.wiring import media_store
from shared.work.worker import GenerationWorker
from tests.support.chain import PROJECT, Chain, doc, job_of, kinds, submit
from tests.support.contract import ContractClient
from tests.support.events import status_event
from tests.support.genai_double import (
    GenAIDouble,
    Reply,
    api_error,
    gemini_blocked_answer,
    gemini_image_reply,
    gemini_prompt_blocked_answer,
    service_account_file,
)

Auth = Callable[[str], dict[str, str]]

VEO = "veo-3.0-fast-generate-001"
IMAGEN = "imagen-4.0-generate-001"
GEMINI = "gemini-2.5-flash-image"
PNG_SIZE = (64, 48)
MP4_SIZE = (64, 36)
VERTEX_BASE = f"/v1beta1/projects/{PROJECT}/locations/us-central1/publishers/google/models"


# --- media, the double and settings ----------------------------------------------------------


@pytest.fixture(scope="session")
def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", PNG_SIZE, (200, 40, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real one-second H.264 clip, rendered by the offline provider's recipe."""
    path = tmp_path_factory.mktemp("veo") / "sample.mp4"
    args = video_ffmpeg_args("veo", None, size=MP4_SIZE, fps=8, duration_seconds=1, output=path)
    run_ffmpeg(args, deadline=time.monotonic() + 60)
    return path.read_bytes()


@pytest.fixture
def double(png: bytes, mp4: bytes, bucket: Bucket) -> Iterator[GenAIDouble]:
    def write_gcs(uri: str, data: bytes) -> None:
        bucket_name, name = split_gs_uri(uri)
        bucket.client.bucket(bucket_name).blob(name).upload_from_string(
            data, content_type="video/mp4"
        )

    with GenAIDouble(png=png, mp4=mp4, write_gcs=write_gcs) as started:
        yield started


@pytest.fixture
def use_settings(
    stack: Settings, double: GenAIDouble, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    """Settings for PROVIDER=genai against the double; keyword arguments add env vars."""

    def configure(**env: str) -> Settings:
        values = {
            "PROVIDER": "genai",
            "GENAI_BASE_URL": double.url,
            "GENAI_POLL_INITIAL_SECONDS": "0.01",
            "GENAI_POLL_MAX_SECONDS": "0.02",
            **{key.upper(): value for key, value in env.items()},
        }
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        load_settings.cache_clear()
        return load_settings()

    return configure


@pytest.fixture
def settings(use_settings: Callable[..., Settings]) -> Settings:
    return use_settings()


def provider_for(settings: Settings, *, veo_output_to_bucket: bool | None = None) -> GenaiProvider:
    # Vertex mode needs credentials; production takes them from the environment (see the
    # end-to-end tests below, which do too). Developer mode uses GENAI_API_KEY instead.
    token = google.oauth2.credentials.Credentials(token="x")  # type: ignore[no-untyped-call]
    return GenaiProvider(settings, credentials=token, veo_output_to_bucket=veo_output_to_bucket)


@dataclass
class _Context(GenerationContext):
    """A context whose deadline passes when `expired()` says so (or after its seconds).

    Tests that wait for the deadline count status checks instead of seconds, so they do not
    depend on how fast the machine is."""

    expired: Callable[[], bool] = lambda: False

    def seconds_left(self) -> float:
        return 0.0 if self.expired() else super().seconds_left()


class Run:
    """A GenerationContext that records what the provider saved and reported."""

    def __init__(
        self,
        workdir: Path,
        *,
        checkpoint: dict[str, Any] | None = None,
        expired: Callable[[], bool] = lambda: False,
    ) -> None:
        self.saved: list[dict[str, Any]] = []
        self.progress: list[int] = []
        self.context = _Context(
            workdir=workdir,
            deadline=time.monotonic() + 60,
            checkpoint=dict(checkpoint or {}),
            save_checkpoint=self.saved.append,
            report_progress=self.progress.append,
            expired=expired,
        )


def after_checks(double: GenAIDouble, count: int) -> Callable[[], bool]:
    """A deadline that passes once the double has answered `count` Veo status checks."""
    return lambda: len(double.calls("fetchPredictOperation")) >= count


class Order(NamedTuple):
    """A creation as the worker hands it to a provider: `provider.generate(*order, context)`."""

    job: Job
    request: StoredRequest

    @property
    def creation_id(self) -> str:
        return self.job.creation_id


def job(kind: CreationType, **request: Any) -> Order:
    # A fresh creation id each time: the storage emulator keeps objects between tests.
    named = Job(creation_id=uuid.uuid4().hex, user_id="u1", type=kind)
    return Order(named, stored_request(kind, request))


def video_job(**request: Any) -> Order:
    return job(
        "video",
        **{"model": VEO, "prompt": "waves", "aspect_ratio": "16:9", "duration_seconds": 4}
        | request,
    )


def image_job(model: str = IMAGEN, **request: Any) -> Order:
    return job(
        "image", **{"model": model, "prompt": "a fox", "aspect_ratio": "1:1", "count": 1} | request
    )


def assert_is_the_clip(item: GeneratedMedia) -> None:
    assert item.content_type == "video/mp4"
    assert (item.width, item.height) == MP4_SIZE
    assert item.duration_seconds == pytest.approx(1.0, abs=0.2)
    assert probe(item.path).video_codec == "h264"


# --- Vertex AI: one success per family --------------------------------------------------------


def test_veo_on_vertex_writes_to_our_bucket_and_saves_the_operation_first(
    settings: Settings, double: GenAIDouble, bucket: Bucket, tmp_path: Path
) -> None:
    double.veo.polls_before_done = 2
    run = Run(tmp_path)
    requests_at_save: list[int] = []

    def save(values: dict[str, Any]) -> None:
        requests_at_save.append(len(double.requests))
        run.saved.append(values)

    run.context.save_checkpoint = save

    request = video_job(prompt="waves at dusk", negative_prompt="fog", seed=7)
    [item] = provider_for(settings).generate(*request, run.context)
    # The starting attempt's own staging folder, outside media/ (Run's context: scope "1").
    prefix = f"tmp/u1/{request.creation_id}/1/"

    [start] = double.calls("predictLongRunning")
    assert start.path == f"{VERTEX_BASE}/{VEO}:predictLongRunning"
    assert start.headers["Authorization"] == "Bearer x"
    assert start.body == {
        "instances": [{"prompt": "waves at dusk"}],
        "parameters": {
            "sampleCount": 1,
            "durationSeconds": 4,
            "aspectRatio": "16:9",
            "negativePrompt": "fog",
            "seed": 7,
            "storageUri": f"gs://{settings.media_bucket}/{prefix}",
            "generateAudio": True,
        },
    }
    name = run.saved[0]["veo_operation"]
    assert name.startswith(f"projects/{PROJECT}/locations/us-central1/") and "/operations/" in name
    assert requests_at_save == [1]  # saved right after the start, before any status check
    checks = double.calls("fetchPredictOperation")
    assert len(checks) == 3
    assert {c.body["operationName"] for c in checks} == {name}
    assert_is_the_clip(item)
    # Veo's own copy is in our bucket, in the attempt's staging folder; nothing under media/.
    [veo_object] = bucket.client.list_blobs(bucket.name, prefix=prefix)
    assert veo_object.name.endswith("/sample_0.mp4")
    assert (
        list(bucket.client.list_blobs(bucket.name, prefix=f"media/u1/{request.creation_id}/")) == []
    )
    assert run.progress == sorted(run.progress)
    assert all(0 <= percent < 100 for percent in run.progress)


def test_veo_on_vertex_without_bucket_output_takes_the_video_inline(
    settings: Settings, double: GenAIDouble, bucket: Bucket, tmp_path: Path
) -> None:
    # What the local stack against the real API does: Google cannot write to the emulator.
    provider = provider_for(settings, veo_output_to_bucket=False)
    request = video_job()
    [item] = provider.generate(*request, Run(tmp_path).context)
    assert "storageUri" not in double.calls("predictLongRunning")[0].body["parameters"]
    assert_is_the_clip(item)
    prefix = f"media/u1/{request.creation_id}/"
    assert list(bucket.client.list_blobs(bucket.name, prefix=prefix)) == []


# --- Veo: a video from an image draft ------------------------------------------------------------


def stored_image(bucket: Bucket, png: bytes) -> dict[str, Any]:
    """An image draft's object in our bucket, as a video's `source_image`."""
    creation_id = uuid.uuid4().hex
    name = f"media/u1/{creation_id}/1-owner/0.png"
    bucket.blob(name).upload_from_string(png, content_type="image/png")
    uri = f"gs://{bucket.name}/{name}"
    return {"creation_id": creation_id, "index": 0, "uri": uri, "mime_type": "image/png"}


@pytest.mark.parametrize("to_bucket", [True, False], ids=["vertex_writes_our_bucket", "answer"])
def test_veo_gets_the_source_image_bytes_read_from_our_bucket(
    settings: Settings,
    double: GenAIDouble,
    bucket: Bucket,
    png: bytes,
    tmp_path: Path,
    to_bucket: bool,
) -> None:
    # Never its gs:// URI, even where Veo writes into our bucket: the Vertex AI service agent,
    # shared by every Vertex caller in the project, may read nothing there.
    source = stored_image(bucket, png)
    provider = provider_for(settings, veo_output_to_bucket=to_bucket)
    [item] = provider.generate(
        *video_job(prompt="the fox looks up", source_image=source), Run(tmp_path).context
    )
    [start] = double.calls("predictLongRunning")
    [instance] = start.body["instances"]
    assert instance["prompt"] == "the fox looks up"
    image = instance["image"]
    assert image == {"bytesBase64Encoded": image["bytesBase64Encoded"], "mimeType": "image/png"}
    assert base64.b64decode(image["bytesBase64Encoded"]) == png
    assert_is_the_clip(item)


@pytest.mark.parametrize("to_bucket", [True, False], ids=["vertex_writes_our_bucket", "answer"])
def test_a_deleted_source_image_fails_the_video_before_veo_is_called(
    settings: Settings,
    double: GenAIDouble,
    bucket: Bucket,
    png: bytes,
    tmp_path: Path,
    to_bucket: bool,
) -> None:
    source = stored_image(bucket, png)
    bucket.blob(split_gs_uri(source["uri"])[1]).delete()
    provider = provider_for(settings, veo_output_to_bucket=to_bucket)
    with pytest.raises(SourceImageMissing, match=source["creation_id"]) as failure:
        provider.generate(*video_job(source_image=source), Run(tmp_path).context)
    assert failure.value.code == "source_image_missing"
    assert double.requests == []  # nothing started, nothing paid


def test_a_resumed_operation_does_not_need_the_source_image_any_more(
    settings: Settings, double: GenAIDouble, bucket: Bucket, png: bytes, tmp_path: Path
) -> None:
    # The image was read when the operation started; deleting it since changes nothing.
    source = stored_image(bucket, png)
    bucket.blob(split_gs_uri(source["uri"])[1]).delete()
    name = f"projects/{PROJECT}/locations/us-central1/publishers/google/models/{VEO}/operations/o1"
    double.add_operation(name, VEO, vertex=True)
    run = Run(tmp_path, checkpoint={"veo_operation": name, "veo_started_at": time.time()})
    [item] = provider_for(settings).generate(*video_job(source_image=source), run.context)
    assert double.calls("predictLongRunning") == []
    assert_is_the_clip(item)


def test_imagen_on_vertex(settings: Settings, double: GenAIDouble, tmp_path: Path) -> None:
    run = Run(tmp_path)
    made = provider_for(settings).generate(
        *image_job(count=2, aspect_ratio="4:3", negative_prompt="blur", seed=11), run.context
    )
    [call] = double.calls("predict")
    assert call.path == f"{VERTEX_BASE}/{IMAGEN}:predict"
    assert call.body == {
        "instances": [{"prompt": "a fox"}],
        "parameters": {
            "sampleCount": 2,
            "aspectRatio": "4:3",
            "negativePrompt": "blur",
            "seed": 11,
            "addWatermark": False,  # Vertex takes a seed only without the watermark
            "includeRaiReason": True,
            "outputOptions": {"mimeType": "image/png"},
        },
    }
    assert [(m.content_type, m.width, m.height) for m in made] == [("image/png", *PNG_SIZE)] * 2
    assert [m.path.name for m in made] == ["image-0.png", "image-1.png"]
    assert run.saved == []  # images keep no checkpoint


def test_imagen_without_a_seed_keeps_the_watermark(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    provider_for(settings).generate(*image_job(), Run(tmp_path).context)
    parameters = double.calls("predict")[0].body["parameters"]
    assert "seed" not in parameters
    assert "addWatermark" not in parameters
    assert "negativePrompt" not in parameters


def test_gemini_image_on_vertex_calls_once_per_image(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    made = provider_for(settings).generate(
        *image_job(GEMINI, count=2, aspect_ratio="16:9", negative_prompt="text", seed=5),
        Run(tmp_path).context,
    )
    calls = double.calls("generateContent")
    assert [c.path for c in calls] == [f"{VERTEX_BASE}/{GEMINI}:generateContent"] * 2
    for call, seed in zip(calls, (5, 6), strict=True):
        assert call.body == {
            "contents": [{"role": "user", "parts": [{"text": "a fox\n\nAvoid: text"}]}],
            "generationConfig": {
                "responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "16:9"},
                "seed": seed,
            },
        }
    assert [(m.content_type, m.width, m.height) for m in made] == [("image/png", *PNG_SIZE)] * 2


# --- Gemini Developer API mode ---------------------------------------------------------------


def test_gemini_image_in_developer_mode_uses_the_api_key(
    use_settings: Callable[..., Settings], double: GenAIDouble, tmp_path: Path
) -> None:
    settings = use_settings(genai_mode="developer", genai_api_key="dev-key")
    [item] = GenaiProvider(settings).generate(*image_job(GEMINI), Run(tmp_path).context)
    [call] = double.requests
    assert call.path == f"/v1/models/{GEMINI}:generateContent"
    assert call.headers["x-goog-api-key"] == "dev-key"
    assert "Authorization" not in call.headers
    assert call.body["generationConfig"]["responseModalities"] == ["IMAGE"]
    assert (item.width, item.height) == PNG_SIZE


@pytest.mark.parametrize("request_job", [video_job(), image_job(IMAGEN)], ids=["veo", "imagen"])
def test_veo_and_imagen_in_developer_mode_are_refused_before_any_request(
    use_settings: Callable[..., Settings],
    double: GenAIDouble,
    tmp_path: Path,
    request_job: Order,
) -> None:
    # google-genai 3.6.1 raises ValueError for generate_videos / generate_images in this mode.
    settings = use_settings(genai_mode="developer", genai_api_key="dev-key")
    with pytest.raises(InvalidGenerationRequest, match="Vertex AI") as failure:
        GenaiProvider(settings).generate(*request_job, Run(tmp_path).context)
    assert failure.value.code == "invalid_request"
    assert double.requests == []


def test_developer_mode_resumes_a_saved_veo_operation_and_downloads_its_file(
    use_settings: Callable[..., Settings], double: GenAIDouble, tmp_path: Path
) -> None:
    settings = use_settings(genai_mode="developer", genai_api_key="dev-key")
    name = f"models/{VEO}/operations/abc123"
    double.add_operation(name, VEO, vertex=False)
    double.veo.polls_before_done = 1
    run = Run(tmp_path, checkpoint={"veo_operation": name, "veo_started_at": time.time()})
    [item] = GenaiProvider(settings).generate(*video_job(), run.context)
    assert [(r.method, r.action) for r in double.requests] == [
        ("GET", "getOperation"),
        ("GET", "getOperation"),
        ("GET", "download"),
    ]
    assert double.requests[0].path == f"/v1/{name}"
    assert double.requests[-1].query == {"alt": "media"}
    assert_is_the_clip(item)


# --- safety and empty results ------------------------------------------------------------------


def test_veo_safety_filter(settings: Settings, double: GenAIDouble, tmp_path: Path) -> None:
    double.veo.outcome = "filtered"
    with pytest.raises(SafetyBlocked, match="usage guidelines") as failure:
        provider_for(settings).generate(*video_job(), Run(tmp_path).context)
    assert failure.value.code == "safety_blocked"


@pytest.mark.parametrize(
    ("model", "scripted", "error", "words"),
    [
        (IMAGEN, [Reply(json={})], EmptyResult, "no picture"),
        (
            IMAGEN,
            [api_error(400, "INVALID_ARGUMENT", "The prompt violates Responsible AI practices.")],
            SafetyBlocked,
            "safety rules",
        ),
        (GEMINI, [gemini_blocked_answer("IMAGE_SAFETY")], SafetyBlocked, "IMAGE_SAFETY"),
        (GEMINI, [gemini_prompt_blocked_answer()], SafetyBlocked, "PROHIBITED_CONTENT"),
        (
            GEMINI,
            [
                Reply(
                    json={
                        "candidates": [
                            {
                                "content": {"role": "model", "parts": [{"text": "I can't."}]},
                                "finishReason": "STOP",
                            }
                        ]
                    }
                )
            ],
            EmptyResult,
            "I can't",
        ),
    ],
    ids=["imagen-empty", "imagen-400-rai", "gemini-image-safety", "gemini-prompt", "gemini-text"],
)
def test_image_safety_and_empty_answers(
    settings: Settings,
    double: GenAIDouble,
    tmp_path: Path,
    model: str,
    scripted: list[Reply],
    error: type[Exception],
    words: str,
) -> None:
    double.script("predict" if model == IMAGEN else "generateContent", *scripted)
    with pytest.raises(error, match=words):
        provider_for(settings).generate(*image_job(model), Run(tmp_path).context)


def test_imagen_withholding_some_images_returns_the_rest_and_says_why(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    double.imagen_filtered = ["Filtered: 58061214"]
    run = Run(tmp_path)
    made = provider_for(settings).generate(*image_job(count=3), run.context)
    assert [item.path.name for item in made] == ["image-0.png", "image-1.png"]
    assert run.context.shortfall == "1 image withheld by Imagen's safety filter: Filtered: 58061214"
    [call] = double.calls("predict")
    assert call.body["parameters"]["sampleCount"] == 3


def test_imagen_withholding_every_image_fails(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    double.imagen_filtered = ["Filtered: 1", "Filtered: 2"]
    with pytest.raises(SafetyBlocked, match="withheld all 2 images"):
        provider_for(settings).generate(*image_job(count=2), Run(tmp_path).context)


def test_gemini_withholding_some_images_returns_the_rest_and_says_why(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    # Four calls (one image each): the second withheld, the fourth answered in words.
    text_only = Reply(
        json={
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "No."}]}, "finishReason": "STOP"}
            ]
        }
    )
    image = gemini_image_reply(double.png, GEMINI)
    double.script("generateContent", image, gemini_blocked_answer("IMAGE_SAFETY"), image, text_only)
    run = Run(tmp_path)
    made = provider_for(settings).generate(*image_job(GEMINI, count=4), run.context)
    assert [item.path.name for item in made] == ["image-0.png", "image-1.png"]
    assert run.context.shortfall == (
        "1 image withheld by the model's safety filter; 1 image not returned by the model."
    )
    assert len(double.calls("generateContent")) == 4


def test_gemini_refusing_the_prompt_stops_at_once(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    double.script("generateContent", gemini_prompt_blocked_answer())
    with pytest.raises(SafetyBlocked, match="refused the prompt"):
        provider_for(settings).generate(*image_job(GEMINI, count=3), Run(tmp_path).context)
    assert len(double.calls("generateContent")) == 1


# --- HTTP errors ------------------------------------------------------------------------------


HTML_502 = Reply(502, content=b"<html>Bad Gateway</html>", content_type="text/html")


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (api_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded."), ProviderTransient, None),
        (api_error(503, "UNAVAILABLE", "Try again."), ProviderTransient, None),
        (HTML_502, ProviderTransient, None),
        (
            api_error(400, "INVALID_ARGUMENT", "aspect_ratio 4:3 is not supported."),
            InvalidGenerationRequest,
            "invalid_request",
        ),
        (
            api_error(403, "PERMISSION_DENIED", "Vertex AI API has not been used."),
            ProviderPermanent,
            "provider_error",
        ),
        (api_error(404, "NOT_FOUND", "Model not found."), ProviderPermanent, "provider_error"),
    ],
    ids=["429", "503", "502-html", "400", "403", "404"],
)
def test_http_errors_are_mapped(
    settings: Settings,
    double: GenAIDouble,
    tmp_path: Path,
    reply: Reply,
    error: type[Exception],
    code: str | None,
) -> None:
    double.script("predict", reply)
    with pytest.raises(error) as failure:
        provider_for(settings).generate(*image_job(), Run(tmp_path).context)
    if code is not None:
        assert getattr(failure.value, "code", None) == code
    assert type(failure.value) is not ProviderTimeout


def test_an_unreachable_service_is_transient(
    use_settings: Callable[..., Settings], double: GenAIDouble, tmp_path: Path
) -> None:
    closed = GenAIDouble(png=b"", mp4=b"")  # bound to a port, never serving, then closed
    url = closed.url
    with closed:
        pass
    settings = use_settings(genai_base_url=url)
    with pytest.raises(ProviderTransient, match="could not be reached"):
        provider_for(settings).generate(*image_job(), Run(tmp_path).context)


# --- Veo: operations that fail, never finish, or keep failing checks -------------------------


def test_veo_operation_that_ends_with_an_invalid_argument_error(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    double.veo.outcome = "error"
    double.veo.error = {"code": 3, "message": "Duration 5s is not supported by this model."}
    with pytest.raises(InvalidGenerationRequest, match="Duration 5s"):
        provider_for(settings).generate(*video_job(), Run(tmp_path).context)


def test_veo_operation_that_ends_with_an_internal_error_is_retried_afresh(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    double.veo.outcome = "error"
    double.veo.error = {"code": 13, "message": "Internal error."}
    run = Run(tmp_path)
    with pytest.raises(ProviderTransient):
        provider_for(settings).generate(*video_job(), run.context)
    # The saved operation is forgotten: resuming it could only read the same error.
    assert run.saved[-1] == {"veo_operation": None, "veo_started_at": None}


def test_veo_operation_that_never_finishes_times_out_with_its_name_saved(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    double.veo.polls_before_done = 10**9
    run = Run(tmp_path, expired=after_checks(double, 2))
    with pytest.raises(ProviderTimeout, match="resumes the same operation") as failure:
        provider_for(settings).generate(*video_job(), run.context)
    assert failure.value.code == "provider_timeout"
    assert run.saved[0]["veo_operation"]
    assert len(double.calls("predictLongRunning")) == 1
    assert len(double.calls("fetchPredictOperation")) == 2


def test_veo_status_checks_failing_until_the_deadline(
    settings: Settings, double: GenAIDouble, tmp_path: Path
) -> None:
    double.always("fetchPredictOperation", api_error(500, "INTERNAL", "Backend error."))
    run = Run(tmp_path, expired=after_checks(double, 3))
    with pytest.raises(ProviderTimeout, match="status checks kept failing"):
        provider_for(settings).generate(*video_job(), run.context)
    assert len(double.calls("fetchPredictOperation")) == 3  # checked again, not given up
    assert len(double.calls("predictLongRunning")) == 1
    assert run.saved[0]["veo_operation"]


# --- redelivery, through the worker and the creation's claim on Firestore ---------------------


def worker_for(settings: Settings) -> GenerationWorker:
    return GenerationWorker(
        claims=ClaimStore(FirestoreDocuments(firestore_client(settings), settings), settings),
        provider=provider_for(settings),
        uploader=media_store(settings),
        settings=settings,
        announcer=SilentAnnouncer(),
    )


def handle(worker: GenerationWorker, created: dict[str, Any]) -> str:
    return worker.handle(Job.model_validate(job_of(created)), event_id="e").kind


def test_redelivery_resumes_the_running_veo_operation_instead_of_starting_another(
    use_settings: Callable[..., Settings],
    double: GenAIDouble,
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
    bucket: Bucket,
) -> None:
    # The first attempt polls until its deadline (a second) while Veo works on.
    settings = use_settings(generation_timeout_seconds="1")
    ledger.grant("alice", 10)
    created = submit(
        api, auth, "alice", {"type": "video", "prompt": "waves", "duration_seconds": 4}
    )
    double.veo.polls_before_done = 10**9
    with pytest.raises(ProviderTimeout):
        handle(worker_for(settings), created)  # the event would be redelivered
    saved = doc(db, created["id"])
    assert saved["status"] == "processing"
    name = saved["checkpoint"]["veo_operation"]

    double.veo.polls_before_done = 0  # Veo finishes meanwhile
    assert handle(worker_for(settings), created) == "draft"

    [start] = double.calls("predictLongRunning")  # exactly one, paid once
    staging = f"tmp/alice/{created['id']}/1-"  # the first attempt's folder, outside media/
    assert start.body["parameters"]["storageUri"].startswith(
        f"gs://{settings.media_bucket}/{staging}"
    )
    assert double.calls("fetchPredictOperation")[-1].body == {"operationName": name}
    creation = doc(db, created["id"])
    assert creation["attempts"] == 2
    [item] = creation["media"]
    # Stored under the second attempt's own folder: the one that published it.
    assert item["uri"].startswith(f"gs://{settings.media_bucket}/media/alice/{created['id']}/2-")
    assert item["uri"].endswith("/0.mp4")
    assert (item["width"], item["height"]) == MP4_SIZE

    # Once it is a draft, the refund function settles it on its status event: exactly its one
    # media set is left, and Veo's staging copy is gone.
    handler = RefundHandler(
        Refunds(FirestoreDocuments(firestore_client(settings), settings), settings, ledger),
        media=media_store(settings),
    )
    event = status_event(created["id"], creation)
    assert handler.on_status_event(event, event_id="e") == "nothing_to_do"
    left = [
        b.name
        for b in bucket.client.list_blobs(bucket.name, prefix=f"media/alice/{created['id']}/")
    ]
    assert [f"gs://{settings.media_bucket}/{name}" for name in left] == [item["uri"]]
    assert list(bucket.client.list_blobs(bucket.name, prefix=f"tmp/alice/{created['id']}/")) == []


def test_rate_limited_then_redelivered_succeeds_with_one_debit(
    use_settings: Callable[..., Settings],
    double: GenAIDouble,
    api: ContractClient,
    auth: Auth,
    ledger: Ledger,
    db: firestore.Client,
) -> None:
    settings = use_settings()
    ledger.grant("alice", 10)
    created = submit(api, auth, "alice", {"type": "image", "prompt": "a fox", "count": 2})
    double.script("predict", api_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded."))
    with pytest.raises(ProviderTransient, match="rate limited"):
        handle(worker_for(settings), created)
    assert doc(db, created["id"])["status"] == "processing"
    assert handle(worker_for(settings), created) == "draft"
    assert len(doc(db, created["id"])["media"]) == 2
    assert len(double.calls("predict")) == 2
    assert kinds(ledger, "alice") == ["debit", "grant"]


# --- end to end: the `generate` function as deployed, with ADC credentials --------------------


@pytest.fixture
def deployed(
    use_settings: Callable[..., Settings],
    load_chain: Callable[..., Chain],
    double: GenAIDouble,
    tmp_path: Path,
) -> Chain:
    """generate and refund loaded by functions-framework, PROVIDER=genai, Vertex AI mode.

    No credentials are injected: the SDK finds a service-account key through
    GOOGLE_APPLICATION_CREDENTIALS, as production finds the function's service account, and
    trades it for a token at the double."""
    key = service_account_file(tmp_path, token_uri=f"{double.url}/token", project=PROJECT)
    use_settings(genai_mode="vertex")
    return load_chain("generate", "refund", GOOGLE_APPLICATION_CREDENTIALS=str(key))


def test_end_to_end_video_draft_with_media_in_our_bucket(
    deployed: Chain, double: GenAIDouble, bucket: Bucket, tmp_path: Path
) -> None:
    deployed.ledger.grant("alice", 10)
    created = deployed.submit(
        "alice", {"type": "video", "prompt": "a lighthouse", "duration_seconds": 4, "seed": 3}
    )
    double.veo.polls_before_done = 1
    assert deployed.work(created) == 200

    creation = deployed.doc(created["id"])
    assert creation["status"] == "draft", creation.get("error")
    assert creation["progress"] == 100
    [item] = creation["media"]
    assert item["content_type"] == "video/mp4"
    local = tmp_path / "draft.mp4"
    bucket.blob(split_gs_uri(item["uri"])[1]).download_to_filename(str(local))
    found = probe(local)
    assert (found.width, found.height) == (item["width"], item["height"]) == MP4_SIZE
    assert item["duration_seconds"] == pytest.approx(1.0, abs=0.2)
    assert double.calls("token"), "the SDK used the service-account credentials"
    [start] = double.calls("predictLongRunning")
    assert start.headers["Authorization"] == "Bearer double-token"
    assert start.body["parameters"]["seed"] == 3
    assert deployed.settle(created["id"]) == 200
    assert deployed.kinds("alice") == ["debit", "grant"]


def test_end_to_end_safety_block_fails_and_is_refunded(
    deployed: Chain, double: GenAIDouble
) -> None:
    deployed.ledger.grant("alice", 10)
    created = deployed.submit("alice", {"type": "image", "prompt": "something forbidden"})
    double.imagen_filtered = ["This prompt may violate the usage guidelines."]
    assert deployed.work(created) == 200  # acked
    creation = deployed.doc(created["id"])
    assert creation["status"] == "failed"
    assert creation["error"]["code"] == "safety_blocked"
    assert "usage guidelines" in creation["error"]["message"]
    for _ in range(2):  # the trigger may fire more than once
        assert deployed.settle(created["id"]) == 200
    assert deployed.doc(created["id"])["refunded"] is True
    assert deployed.ledger.balance("alice") == 10
    assert deployed.kinds("alice") == ["debit", "grant", "refund"]


def test_end_to_end_imagen_withholding_one_of_four_makes_a_partial_draft(
    deployed: Chain, double: GenAIDouble
) -> None:
    deployed.ledger.grant("alice", 10)
    created = deployed.submit("alice", {"type": "image", "prompt": "four foxes", "count": 4})
    cost = created["cost"]
    double.imagen_filtered = ["Filtered: 58061214"]
    assert deployed.work(created) == 200
    creation = deployed.doc(created["id"])
    assert creation["status"] == "draft", creation.get("error")
    assert len(creation["media"]) == 3
    assert creation["partial"] == {
        "asked": 4,
        "made": 3,
        "reason": "1 image withheld by Imagen's safety filter: Filtered: 58061214",
        "refund": cost // 4,
    }
    for _ in range(2):  # the trigger may fire more than once: nothing more comes back
        assert deployed.settle(created["id"]) == 200
    assert deployed.doc(created["id"])["refunded"] is False
    assert deployed.ledger.balance("alice") == 10 - cost + cost // 4
    assert deployed.kinds("alice") == ["debit", "grant", "refund"]
