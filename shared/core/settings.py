"""The suite's settings: read once from the environment into one typed, frozen object."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

GOOGLE_SECURETOKEN_CERTS_URL = (
    "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
)


class Pricing(BaseModel):
    """Token prices. Cost of a request = the matching unit price times its size."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_tokens_per_image: PositiveInt = 1
    video_tokens_per_second: PositiveInt = 1
    reel_tokens: PositiveInt = 2
    # Per-model unit prices (per image or per video second), replacing the defaults above.
    model_unit_tokens: dict[str, PositiveInt] = {}


class Settings(BaseSettings):
    """Everything the functions read from their environment. Names are the env var names."""

    model_config = SettingsConfigDict(frozen=True, case_sensitive=False, extra="ignore")

    # Where we run.
    gcp_project: str = Field(default="demo-creations", min_length=1)
    firestore_emulator_host: str | None = None
    pubsub_emulator_host: str | None = None
    storage_emulator_host: str | None = None

    # Resources.
    media_bucket: str = Field(default="demo-creations-media", min_length=3)
    generate_topic: str = Field(default="creations-generate", min_length=3)
    stitch_topic: str = Field(default="creations-stitch", min_length=3)
    # Where Pub/Sub moves job messages that failed `max_delivery_attempts` times.
    dead_letter_topic: str = Field(default="creations-dead-letter", min_length=3)
    # Cloud Scheduler publishes here to run the sweeper.
    sweep_topic: str = Field(default="creations-sweep", min_length=3)
    # One message per move to a final status (and per DELETE begun): refund consumes it, and
    # so can anything else (shared.creations.status_events).
    status_topic: str = Field(default="creations-status", min_length=3)

    # Money.
    pricing: Pricing = Pricing()

    # Models the deployment allows: model name -> the creation type it makes.
    allowed_models: dict[str, str] = {
        "imagen-4.0-generate-001": "image",
        "gemini-2.5-flash-image": "image",
        "veo-3.0-generate-001": "video",
        "veo-3.0-fast-generate-001": "video",
    }
    default_image_model: str = "imagen-4.0-generate-001"
    default_video_model: str = "veo-3.0-fast-generate-001"

    # Auth (Firebase ID tokens). Issuer and audience derive from the project id.
    auth_certs_url: str = GOOGLE_SECURETOKEN_CERTS_URL
    auth_clock_skew_seconds: int = Field(default=30, ge=0, le=300)
    # While the certificate fetch keeps failing, expired keys are still used for this long;
    # after that `submit` answers `503 busy` (a key Google withdrew may have been compromised).
    auth_certs_max_stale_seconds: float = Field(default=3600.0, ge=0)

    # Limits and timeouts.
    max_body_bytes: PositiveInt = 64 * 1024
    list_limit_default: PositiveInt = 20
    list_limit_max: PositiveInt = 100
    # docs/contract.md promises 48 hours; a deployment may keep keys longer, never under a day.
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    store_timeout_seconds: float = Field(default=10.0, gt=0)
    publish_timeout_seconds: float = Field(default=10.0, gt=0)
    # One Cloud Storage call (an upload, a download, a listing), its retries included. Without
    # it the storage client's own default (120 s of retries of 60 s requests) holds a worker
    # past its lease while storage is down.
    media_timeout_seconds: float = Field(default=60.0, gt=0)
    # How long a media download URL the API answers stays valid (V4 signed URLs: 7 days at most).
    media_url_ttl_seconds: int = Field(default=900, ge=60, le=604800)
    # A service-account key file that signs media URLs; unset in production, where the
    # function's own account signs through IAM signBlob (against the storage emulator, unset
    # means a key made for the process).
    media_signing_key_file: str | None = None
    # Rounds of read-decide-commit a guarded write gets while other writers keep winning (the
    # ledger, claims, refunds, deletes) before the caller hears `503 busy`.
    store_max_attempts: PositiveInt = 25
    busy_retry_after_seconds: PositiveInt = 1

    # Per-user limits on submits (images, videos and reels alike; shared.intake.limits). At
    # most this many of a user's creations `pending` or `processing`; the next submit is
    # `429 too_many_active`, with this `Retry-After` (no one can tell when a slot frees).
    max_active_per_user: PositiveInt = 5
    too_many_active_retry_after_seconds: PositiveInt = 10
    # A token bucket per user, kept on the user document: `submit_burst` accepted submits at
    # once, refilled at `submit_rate_per_minute`; past it, `429 rate_limited`.
    submit_rate_per_minute: float = Field(default=60.0, gt=0)
    submit_burst: PositiveInt = 30

    # Work after submit: leases, attempts and deadlines (seconds).
    max_delivery_attempts: int = Field(default=5, ge=5, le=100)  # Pub/Sub's allowed range
    # How often a creation may be taken up (claimed) in all, redeliveries and re-enqueues
    # together, before it fails as `too_many_attempts`.
    max_generation_attempts: PositiveInt = 5
    # How often the sweeper re-enqueues a stuck creation before it fails it (`not_processed`).
    sweep_max_requeues: PositiveInt = 5
    generation_timeout_seconds: float = Field(default=480.0, gt=0)  # under GCF's 540 s
    lease_seconds: float = Field(default=540.0, gt=0)  # a claim outlives one function run
    sweep_pending_after_seconds: float = Field(default=120.0, gt=0)
    sweep_refund_after_seconds: float = Field(default=60.0, gt=0)
    sweep_batch_size: PositiveInt = 200

    # Generation. `offline` makes real media locally (no API key needed); `genai` calls Google.
    provider: Literal["offline", "genai"] = "offline"
    offline_latency_seconds: float = Field(default=0.0, ge=0, le=600)
    offline_image_long_side_px: int = Field(default=1024, ge=64, le=4096)
    offline_video_long_side_px: int = Field(default=640, ge=64, le=1920)
    offline_video_fps: int = Field(default=24, ge=1, le=60)
    # google-genai (PROVIDER=genai). Vertex AI mode uses the function's service account;
    # the Gemini Developer API mode uses GENAI_API_KEY (from Secret Manager in production).
    genai_mode: Literal["vertex", "developer"] = "vertex"
    genai_location: str = "us-central1"
    genai_api_key: SecretStr | None = None
    genai_base_url: str | None = None  # only to point the SDK at a local API double
    genai_poll_initial_seconds: float = Field(default=5.0, gt=0)
    genai_poll_max_seconds: float = Field(default=20.0, gt=0)
    genai_request_timeout_seconds: float = Field(default=120.0, gt=0)

    # Signed webhooks (shared.webhooks). The Standard Webhooks signing secret (`whsec_...`):
    # from Secret Manager, and read only by the `webhooks` function, in production; from the
    # stack's config locally (`make -s env` exports it, so a local receiver can verify).
    webhook_secret: SecretStr | None = None
    # The local stack and tests only, never production: lets a webhook be http to a loopback
    # host (127.0.0.1, ::1, localhost). Every other private address stays refused.
    webhook_allow_loopback: bool = False
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)  # one attempt
    # How long one event is retried (Pub/Sub's backoff, 10-600 s in production) before it is
    # given up as `exhausted` and published to `webhook_exhausted_topic`.
    webhook_retry_seconds: float = Field(default=24 * 3600.0, gt=0)
    webhook_exhausted_topic: str = Field(default="creations-webhooks-exhausted", min_length=3)

    log_level: str = "INFO"

    @property
    def auth_issuer(self) -> str:
        return f"https://securetoken.google.com/{self.gcp_project}"

    @property
    def auth_audience(self) -> str:
        return self.gcp_project

    @model_validator(mode="after")
    def _defaults_are_allowed(self) -> Settings:
        for kind, model in (
            ("image", self.default_image_model),
            ("video", self.default_video_model),
        ):
            if self.allowed_models.get(model) != kind:
                raise ValueError(f"default {kind} model {model!r} is not an allowed {kind} model")
        for model, kind in self.allowed_models.items():
            if kind not in ("image", "video"):
                raise ValueError(f"allowed model {model!r} has unknown kind {kind!r}")
        return self


@lru_cache(maxsize=1)
def load_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings()
