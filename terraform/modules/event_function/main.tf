/**
 * One Cloud Functions (2nd gen) function and everything that belongs to it alone: its source
 * object, its runtime service account and project roles, access to its secrets, and what feeds
 * it: nothing (HTTP), a push subscription of its own (Pub/Sub), or an Eventarc trigger
 * (Firestore).
 *
 * Pub/Sub-fed functions get their own push subscription instead of an Eventarc Pub/Sub trigger:
 * the subscription Eventarc creates cannot take a dead-letter policy, ours can.
 */

locals {
  service_uri = google_cloudfunctions2_function.this.service_config[0].uri
  # A gen2 function runs as the Cloud Run service of the same name: invoker grants go there.
  service_name = google_cloudfunctions2_function.this.name
  # The Pub/Sub service agent: signs push OIDC tokens, forwards dead letters, and mints the
  # tokens of Eventarc's deliveries.
  pubsub_agent = var.pubsub_service_agent
  event_driven = var.pubsub_trigger != null || var.firestore_trigger != null

  pubsub      = var.pubsub_trigger
  dead_letter = var.pubsub_trigger == null ? null : var.pubsub_trigger.dead_letter
  push_subscription = var.pubsub_trigger == null ? null : coalesce(
    var.pubsub_trigger.subscription, "${var.pubsub_trigger.topic}-push"
  )
  ack_deadline_s = var.pubsub_trigger == null ? null : coalesce(
    var.pubsub_trigger.ack_deadline_s, min(600, max(10, var.timeout_s + 30))
  )
}

# --- identity -------------------------------------------------------------------------------

resource "google_service_account" "function" {
  project      = var.project_id
  account_id   = "${var.name}-fn"
  display_name = "Cloud Function ${var.name} (runtime)"
}

resource "google_project_iam_member" "function" {
  for_each = var.project_roles

  project = var.project_id
  role    = each.value
  member  = google_service_account.function.member
}

resource "google_secret_manager_secret_iam_member" "function" {
  for_each = var.secret_environment_variables

  project   = var.project_id
  secret_id = each.value.secret
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function.member
}

# --- the function ---------------------------------------------------------------------------

resource "google_storage_bucket_object" "source" {
  bucket       = var.source_archive.bucket
  name         = "${var.name}-${var.source_archive.content_hash}.zip"
  source       = var.source_archive.path
  content_type = "application/zip"
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime           = var.runtime
    entry_point       = var.entry_point
    service_account   = var.build.service_account_email == null ? null : "projects/${var.project_id}/serviceAccounts/${var.build.service_account_email}"
    docker_repository = var.build.docker_repository

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function.email
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.max_instance_request_concurrency
    available_memory                 = "${var.available_memory_mb}Mi"
    available_cpu                    = var.available_cpu
    timeout_seconds                  = var.timeout_s
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = var.environment_variables

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment_variables
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }

  dynamic "event_trigger" {
    for_each = var.firestore_trigger == null ? [] : [var.firestore_trigger]
    content {
      trigger_region        = event_trigger.value.region
      event_type            = event_trigger.value.event_type
      retry_policy          = "RETRY_POLICY_RETRY"
      service_account_email = google_service_account.trigger[0].email

      event_filters {
        attribute = "database"
        value     = event_trigger.value.database
      }

      event_filters {
        attribute = "document"
        value     = event_trigger.value.document
        operator  = "match-path-pattern"
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.pubsub_trigger == null || var.firestore_trigger == null
      error_message = "A function is fed by a Pub/Sub topic or by Firestore events, not both."
    }
    precondition {
      condition     = !var.public || var.ingress == "ALLOW_ALL"
      error_message = "A public function needs ingress ALLOW_ALL."
    }
    # What Cloud Functions itself refuses, said at plan time instead of minutes into an apply.
    precondition {
      condition     = !local.event_driven || var.timeout_s <= 540
      error_message = "An event-driven function's timeout_s must be at most 540 (Cloud Functions' limit; HTTP functions may take 3600)."
    }
    precondition {
      condition     = var.min_instances <= var.max_instances
      error_message = "min_instances must not exceed max_instances."
    }
    precondition {
      condition     = var.max_instance_request_concurrency == 1 || var.available_cpu == null || try(tonumber(var.available_cpu) >= 1, false)
      error_message = "Serving more than one request per instance needs available_cpu of at least 1."
    }
  }

  # A revision that cannot read its secrets fails to deploy.
  depends_on = [google_secret_manager_secret_iam_member.function]
}

# Anyone may call the URL; the function itself must authenticate every request.
resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.public ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = local.service_name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- Pub/Sub push ---------------------------------------------------------------------------

# Only signs the push requests' OIDC tokens; may invoke this function and nothing else.
resource "google_service_account" "push" {
  count = local.pubsub == null ? 0 : 1

  project      = var.project_id
  account_id   = "${var.name}-push"
  display_name = "Pub/Sub push to ${var.name}"
}

resource "google_cloud_run_v2_service_iam_member" "push" {
  count = local.pubsub == null ? 0 : 1

  project  = var.project_id
  location = var.region
  name     = local.service_name
  role     = "roles/run.invoker"
  member   = google_service_account.push[0].member
}

# Pub/Sub mints the OIDC tokens as the push service account (needed by projects created before
# April 2021, harmless after).
resource "google_service_account_iam_member" "push_token_creator" {
  count = local.pubsub == null ? 0 : 1

  service_account_id = google_service_account.push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_pubsub_subscription" "push" {
  count = local.pubsub == null ? 0 : 1

  project = var.project_id
  name    = local.push_subscription
  topic   = "projects/${var.project_id}/topics/${local.pubsub.topic}"
  labels  = var.labels

  # How long Pub/Sub waits for the function's answer before it redelivers: past the timeout.
  ack_deadline_seconds       = local.ack_deadline_s
  message_retention_duration = "${local.pubsub.message_retention_s}s"
  # Messages that do not match are acknowledged by Pub/Sub and never delivered.
  filter = local.pubsub.filter

  retry_policy {
    minimum_backoff = "${local.pubsub.retry_minimum_backoff_s}s"
    maximum_backoff = "${local.pubsub.retry_maximum_backoff_s}s"
  }

  # Never expire for inactivity: a quiet topic (the dead letters) must keep its subscriber.
  expiration_policy {
    ttl = ""
  }

  dynamic "dead_letter_policy" {
    for_each = local.dead_letter == null ? [] : [local.dead_letter]
    content {
      dead_letter_topic     = "projects/${var.project_id}/topics/${dead_letter_policy.value.topic}"
      max_delivery_attempts = dead_letter_policy.value.max_delivery_attempts
    }
  }

  push_config {
    # The path names the topic: functions-framework builds the CloudEvent's `source` from it.
    push_endpoint = "${local.service_uri}/projects/${var.project_id}/topics/${local.pubsub.topic}"

    oidc_token {
      service_account_email = google_service_account.push[0].email
      audience              = local.service_uri
    }
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.push,
    google_service_account_iam_member.push_token_creator,
  ]
}

# Dead-lettering needs the Pub/Sub service agent to acknowledge on the source subscription.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  count = local.dead_letter == null ? 0 : 1

  project      = var.project_id
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# --- Firestore (Eventarc) -------------------------------------------------------------------

# The identity Eventarc delivers events as: receives events, may invoke this function only.
resource "google_service_account" "trigger" {
  count = var.firestore_trigger == null ? 0 : 1

  project      = var.project_id
  account_id   = "${var.name}-trigger"
  display_name = "Eventarc trigger of ${var.name}"
}

resource "google_project_iam_member" "trigger_event_receiver" {
  count = var.firestore_trigger == null ? 0 : 1

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = google_service_account.trigger[0].member
}

# Eventarc delivers through Pub/Sub, whose agent mints the trigger account's tokens: projects
# whose Pub/Sub agent predates April 2021 need this grant (Eventarc's docs), later ones ignore it.
resource "google_service_account_iam_member" "trigger_token_creator" {
  count = var.firestore_trigger == null ? 0 : 1

  service_account_id = google_service_account.trigger[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_cloud_run_v2_service_iam_member" "trigger" {
  count = var.firestore_trigger == null ? 0 : 1

  project  = var.project_id
  location = var.region
  name     = local.service_name
  role     = "roles/run.invoker"
  member   = google_service_account.trigger[0].member
}
