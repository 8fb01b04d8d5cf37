variable "project_id" {
  description = "The project to deploy to. It is also the Firebase project whose ID tokens the API accepts."
  type        = string
}

variable "region" {
  description = "Region of the functions, buckets, Artifact Registry and the Cloud Scheduler job."
  type        = string
  default     = "us-central1"
}

variable "firestore_location" {
  description = "Location of the Firestore database: a multi-region (nam5, eur3) or a region. Fixed once the database exists. The refund trigger is created there too."
  type        = string
  default     = "nam5"
}

variable "dist_dir" {
  description = "Folder with the zips and manifest.json written by `make build`; null = ../dist next to this folder."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels put on every resource that takes them."
  type        = map(string)
  default     = { app = "creations" }
}

variable "media_bucket_name" {
  description = "Name of the bucket for generated media; null = \"<project_id>-creations-media\"."
  type        = string
  default     = null
}

variable "media_soft_delete_retention_s" {
  description = "How long deleted media stay recoverable (Cloud Storage soft delete), in seconds: 0 (off) or 604800-7776000. Off by default: a user who deletes a creation expects its media gone, and soft-deleted bytes are billed."
  type        = number
  default     = 0

  validation {
    condition     = var.media_soft_delete_retention_s == 0 || (var.media_soft_delete_retention_s >= 604800 && var.media_soft_delete_retention_s <= 7776000)
    error_message = "media_soft_delete_retention_s must be 0 or 604800-7776000."
  }
}

variable "media_abandoned_prefixes" {
  description = "Object prefixes in the media bucket that only hold scratch data, deleted media_abandoned_after_days days after upload. Must include tmp/, where Veo writes (a late video of a failed or deleted creation is removed only by this rule)."
  type        = list(string)
  default     = ["tmp/"]

  validation {
    condition     = contains(var.media_abandoned_prefixes, "tmp/")
    error_message = "media_abandoned_prefixes must include \"tmp/\": Veo's staging folder (shared.media.storage.staging_prefix)."
  }
}

variable "media_abandoned_after_days" {
  description = "Age in days after which objects under media_abandoned_prefixes are deleted."
  type        = number
  default     = 1
}

variable "incomplete_upload_abort_days" {
  description = "Age in days after which unfinished multipart uploads to the media bucket are aborted."
  type        = number
  default     = 1
}

variable "firestore_delete_protection" {
  description = "Keep the Firestore database from being deleted (by Terraform or anyone else)."
  type        = bool
  default     = true
}

variable "pricing" {
  description = "Token prices (PRICING): per image, per video second, per reel, and optional per-model unit prices."
  type = object({
    image_tokens_per_image  = number
    video_tokens_per_second = number
    reel_tokens             = number
    model_unit_tokens       = optional(map(number), {})
  })
  default = {
    image_tokens_per_image  = 1
    video_tokens_per_second = 1
    reel_tokens             = 2
  }
}

variable "allowed_models" {
  description = "Models a request may name, with the type each makes (ALLOWED_MODELS): model -> image | video."
  type        = map(string)
  default = {
    "imagen-4.0-generate-001"   = "image"
    "gemini-2.5-flash-image"    = "image"
    "veo-3.0-generate-001"      = "video"
    "veo-3.0-fast-generate-001" = "video"
  }

  validation {
    condition     = alltrue([for kind in values(var.allowed_models) : contains(["image", "video"], kind)])
    error_message = "Every allowed model makes an image or a video."
  }
}

variable "default_image_model" {
  description = "Model used when an image request names none (DEFAULT_IMAGE_MODEL); must be an allowed image model."
  type        = string
  default     = "imagen-4.0-generate-001"
}

variable "default_video_model" {
  description = "Model used when a video request names none (DEFAULT_VIDEO_MODEL); must be an allowed video model."
  type        = string
  default     = "veo-3.0-fast-generate-001"
}

variable "generation" {
  description = "How media is made. provider: genai (Google's models) or offline (synthetic media, for a test environment). mode: vertex (Vertex AI, as the generate function's service account) or developer (Gemini Developer API with the API key in the Secret Manager secret genai_api_key_secret_id; add a version to it before applying). location: Vertex AI region."
  type = object({
    provider = optional(string, "genai")
    mode     = optional(string, "vertex")
    location = optional(string, "us-central1")
  })
  default = {}

  validation {
    condition     = contains(["genai", "offline"], var.generation.provider) && contains(["vertex", "developer"], var.generation.mode)
    error_message = "generation.provider is genai or offline; generation.mode is vertex or developer."
  }
}

variable "genai_api_key_secret_id" {
  description = "Secret Manager secret (created here, without a version) that holds the Gemini Developer API key, read as GENAI_API_KEY by the generate function in developer mode."
  type        = string
  default     = "genai-api-key"
}

variable "webhook_secret_id" {
  description = "Secret Manager secret (created here, without a version) that holds the Standard Webhooks signing secret (whsec_...), read as WEBHOOK_SECRET by the webhooks function only."
  type        = string
  default     = "webhook-signing-secret"
}

variable "webhook_secret_has_version" {
  description = "Whether the webhook signing secret (webhook_secret_id) has a version yet. Leave false for the first apply, add the version (terraform/README.md, Secrets), then set true and apply: until then the webhooks function has no WEBHOOK_SECRET, logs an ERROR per event and retries it."
  type        = bool
  default     = false
}

variable "grant_vertex_agent_media_write" {
  description = "Let the Vertex AI service agent write under media/ in the media bucket (Veo writes its videos straight there in vertex mode; ignored in developer and offline modes). The agent must exist first: `gcloud beta services identity create --service=aiplatform.googleapis.com`."
  type        = bool
  default     = true
}

variable "max_delivery_attempts" {
  description = "Deliveries of a job message before it moves to the dead-letter topic (5-100); also MAX_DELIVERY_ATTEMPTS of the functions."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be 5-100 (Pub/Sub's range)."
  }
}

variable "sweep_schedule" {
  description = "Cron schedule (UTC) of the sweeper, which re-enqueues stuck creations and refunds missed ones."
  type        = string
  default     = "*/5 * * * *"
}

variable "log_level" {
  description = "LOG_LEVEL of every function."
  type        = string
  default     = "INFO"
}

variable "scaling" {
  description = "Per-function overrides of instances, memory and timeout (keys: submit, generate, stitch, refund, dead-letter, sweep, webhooks); anything left out keeps the default in functions.tf."
  type = map(object({
    min_instances       = optional(number)
    max_instances       = optional(number)
    available_memory_mb = optional(number)
    available_cpu       = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for name in keys(var.scaling) : contains(["submit", "generate", "stitch", "refund", "dead-letter", "sweep", "webhooks"], name)])
    error_message = "scaling keys are function names: submit, generate, stitch, refund, dead-letter, sweep, webhooks."
  }
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channels (ids: projects/P/notificationChannels/N) every alert policy notifies; empty: the alerts still open incidents in the console."
  type        = list(string)
  default     = []
}

variable "alert_stuck_creations_per_hour" {
  description = "Alert when the sweeper finds more stuck creations than this in an hour (re-enqueued, failed as not_processed, refunded or deleted where the status stream did not)."
  type        = number
  default     = 0
}

variable "alert_function_errors_per_5m" {
  description = "Alert when one function logs more ERROR lines than this in 5 minutes."
  type        = number
  default     = 5
}
