# Topic names are the code's defaults (shared/core/settings.py), also passed to every function as
# GENERATE_TOPIC, STITCH_TOPIC, DEAD_LETTER_TOPIC, SWEEP_TOPIC, STATUS_TOPIC and
# WEBHOOK_EXHAUSTED_TOPIC. Each function's push
# subscription is made by its module instance (functions.tf).

resource "google_pubsub_topic" "generate" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest: job messages carry only ids (creation, user, type), never prompts or media.
  project = var.project_id
  name    = "creations-generate" # jobs for images and videos -> generate

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "stitch" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest: job messages carry only ids (creation, user, type), never prompts or media.
  project = var.project_id
  name    = "creations-stitch" # jobs for reels -> stitch

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest: job messages carry only ids (creation, user, type), never prompts or media.
  project = var.project_id
  name    = "creations-dead-letter" # jobs that failed max_delivery_attempts times -> dead-letter

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "sweep" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest: job messages carry only ids (creation, user, type), never prompts or media.
  project = var.project_id
  name    = "creations-sweep" # Cloud Scheduler's ticks -> sweep

  depends_on = [google_project_service.this]
}

# The creation status stream: one message per move to a final status (draft, failed, canceled)
# and per DELETE begun, published by whoever made the move (shared/creations/status_events.py).
# refund and webhooks subscribe, each with a filter of its own; anything later takes its own
# subscription too.
resource "google_pubsub_topic" "status" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest: status messages carry only ids (creation, user, type), a status and an attempt number, never prompts or media.
  project = var.project_id
  name    = "creations-status" # status moves -> refund, webhooks

  depends_on = [google_project_service.this]
}

# Pub/Sub itself moves dead letters here from the job subscriptions: one grant for the topic,
# shared by every subscription that dead-letters into it (a grant per module instance would be
# the same binding owned twice, and destroying one would revoke it for all).
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

# A copy of every dead letter for people to look at (the dead-letter function acks its own):
#   gcloud pubsub subscriptions pull creations-dead-letter-inspect --limit=10
resource "google_pubsub_subscription" "dead_letter_inspect" {
  project = var.project_id
  name    = "${google_pubsub_topic.dead_letter.name}-inspect"
  topic   = google_pubsub_topic.dead_letter.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s" # 7 days, the most Pub/Sub keeps

  expiration_policy {
    ttl = ""
  }
}

# Webhook events whose 24 hours of retries ran out (shared/webhooks/delivery.py): one message
# each, the status event with what became of its delivery, for an operator to read and replay
# (docs/webhooks.md, "Operating it"). Only the webhooks function publishes here.
resource "google_pubsub_topic" "webhooks_exhausted" {
  #checkov:skip=CKV_GCP_83:Google-managed encryption at rest: these messages carry ids, a status, an event name and a receiver's answer code, never prompts, media or the webhook URL.
  project = var.project_id
  name    = "creations-webhooks-exhausted" # given-up webhook events -> an operator

  depends_on = [google_project_service.this]
}

# What an operator reads:
#   gcloud pubsub subscriptions pull creations-webhooks-exhausted-inspect --limit=10
resource "google_pubsub_subscription" "webhooks_exhausted_inspect" {
  project = var.project_id
  name    = "${google_pubsub_topic.webhooks_exhausted.name}-inspect"
  topic   = google_pubsub_topic.webhooks_exhausted.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s" # 7 days, the most Pub/Sub keeps

  expiration_policy {
    ttl = ""
  }
}
