variable "project_id" {
  description = "Project the function and everything this module creates live in."
  type        = string
}

variable "region" {
  description = "Region of the function (and of its Cloud Run service)."
  type        = string
}

variable "name" {
  description = "Function name, also its Cloud Run service's name and the stem of its service accounts' ids: lowercase letters, digits and hyphens, 3-21 characters."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}[a-z0-9]$", var.name))
    error_message = "name must be 3-21 lowercase letters, digits or hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "description" {
  description = "What the function does (shown in the console)."
  type        = string
  default     = ""
}

variable "entry_point" {
  description = "The Python function functions-framework runs (the target in main.py)."
  type        = string
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "source_archive" {
  description = "The function's zip from `make build` (local path), the bucket it is uploaded to, and its content hash: the object is `<name>-<content_hash>.zip`, so a change of source is a new object and a redeploy."
  type = object({
    bucket       = string
    path         = string
    content_hash = string
  })
}

variable "build" {
  description = "Cloud Build settings: the service account builds run as (email; null = the platform default) and the Artifact Registry repository images go to (projects/P/locations/L/repositories/R; null = gcf-artifacts)."
  type = object({
    service_account_email = optional(string)
    docker_repository     = optional(string)
  })
  default = {}
}

variable "available_memory_mb" {
  description = "Memory of one instance, in MiB."
  type        = number
  default     = 256

  validation {
    condition     = var.available_memory_mb >= 128 && var.available_memory_mb <= 32768
    error_message = "available_memory_mb must be 128-32768."
  }
}

variable "available_cpu" {
  description = "vCPUs of one instance (\"0.583\", \"1\", \"2\", ...); null lets Cloud Functions derive it from the memory."
  type        = string
  default     = null
}

variable "timeout_s" {
  description = "Request timeout in seconds: at most 3600 for an HTTP function, 540 for an event-driven one (Pub/Sub- or Firestore-fed), as Cloud Functions allows."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_s >= 1 && var.timeout_s <= 3600
    error_message = "timeout_s must be 1-3600."
  }
}

variable "min_instances" {
  description = "Instances kept warm (billed while idle). Set explicitly: there is no default on purpose."
  type        = number

  validation {
    condition     = var.min_instances >= 0
    error_message = "min_instances cannot be negative."
  }
}

variable "max_instances" {
  description = "Upper bound on instances: caps cost and the load on Firestore and the providers."
  type        = number

  validation {
    condition     = var.max_instances >= 1
    error_message = "max_instances must be at least 1."
  }
}

variable "max_instance_request_concurrency" {
  description = "Requests one instance serves at once (1-1000; more than 1 needs at least 1 vCPU)."
  type        = number
  default     = 1

  validation {
    condition     = var.max_instance_request_concurrency >= 1 && var.max_instance_request_concurrency <= 1000
    error_message = "max_instance_request_concurrency must be 1-1000."
  }
}

variable "pubsub_service_agent" {
  description = "The project's Pub/Sub service agent as an IAM member (serviceAccount:service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com): it signs push tokens, forwards dead letters and delivers Eventarc events. The caller makes sure it exists (google_project_service_identity)."
  type        = string

  validation {
    condition     = can(regex("^serviceAccount:service-[0-9]+@gcp-sa-pubsub\\.iam\\.gserviceaccount\\.com$", var.pubsub_service_agent))
    error_message = "pubsub_service_agent must be serviceAccount:service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com."
  }
}

variable "ingress" {
  description = "Who may reach the function's URL at the network level: ALLOW_ALL, ALLOW_INTERNAL_ONLY (Pub/Sub push, Eventarc and Cloud Scheduler of this project count as internal) or ALLOW_INTERNAL_AND_GCLB."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "public" {
  description = "Grant roles/run.invoker to allUsers. Only for an HTTP function that authenticates its callers itself."
  type        = bool
  default     = false
}

variable "environment_variables" {
  description = "Plain environment variables of the function."
  type        = map(string)
  default     = {}
}

variable "secret_environment_variables" {
  description = "Environment variables read from Secret Manager: variable name -> secret id (in this project) and version. The function's service account is granted roles/secretmanager.secretAccessor on each secret."
  type = map(object({
    secret  = string
    version = optional(string, "latest")
  }))
  default = {}
}

variable "project_roles" {
  description = "Project-level roles for the function's service account (resource-level grants are made by the caller on the resources, with the service_account_email output)."
  type        = set(string)
  default     = []
}

variable "pubsub_trigger" {
  description = "Feed the function from a Pub/Sub topic through a push subscription of its own (to the function's URL, authenticated with an OIDC token of a dedicated invoker service account). topic and dead_letter.topic are topic names in this project. dead_letter: after max_delivery_attempts (5-100) failed deliveries the message moves to that topic; the caller grants the Pub/Sub service agent roles/pubsub.publisher on it (once per topic), this module grants it roles/pubsub.subscriber on the subscription."
  type = object({
    topic                   = string
    subscription            = optional(string) # default: "<topic>-push"
    ack_deadline_s          = optional(number) # default: timeout_s + 30, within 10-600
    retry_minimum_backoff_s = optional(number, 10)
    retry_maximum_backoff_s = optional(number, 600)
    message_retention_s     = optional(number, 604800)
    filter                  = optional(string) # a Pub/Sub subscription filter; null: every message
    dead_letter = optional(object({
      topic                 = string
      max_delivery_attempts = number
    }))
  })
  default = null

  validation {
    condition = var.pubsub_trigger == null ? true : (
      var.pubsub_trigger.retry_minimum_backoff_s >= 0 &&
      var.pubsub_trigger.retry_maximum_backoff_s <= 600 &&
      var.pubsub_trigger.retry_minimum_backoff_s <= var.pubsub_trigger.retry_maximum_backoff_s &&
      var.pubsub_trigger.message_retention_s >= 600 &&
      var.pubsub_trigger.message_retention_s <= 604800 &&
      (var.pubsub_trigger.dead_letter == null ? true : (
        var.pubsub_trigger.dead_letter.max_delivery_attempts >= 5 &&
        var.pubsub_trigger.dead_letter.max_delivery_attempts <= 100
      ))
    )
    error_message = "pubsub_trigger: backoffs must be 0-600 s (minimum <= maximum), retention 600-604800 s, max_delivery_attempts 5-100."
  }
}

variable "firestore_trigger" {
  description = "Feed the function from Firestore document events (Eventarc), retried until they succeed. region is the Firestore database's location (e.g. nam5, eur3 or a region); document is a path pattern such as creations/{id}."
  type = object({
    region     = string
    document   = string
    event_type = optional(string, "google.cloud.firestore.document.v1.updated")
    database   = optional(string, "(default)")
  })
  default = null
}

variable "labels" {
  description = "Labels for the function and its subscription."
  type        = map(string)
  default     = {}
}
