# The sweeper's clock: a message on the sweep topic every few minutes (its body is ignored, but
# Pub/Sub push needs one).
resource "google_cloud_scheduler_job" "sweep" {
  project     = var.project_id
  region      = var.region
  name        = "creations-sweep"
  description = "Runs the sweeper: re-enqueues stuck creations, refunds missed refunds."
  schedule    = var.sweep_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.sweep.id
    data       = base64encode("{}")
  }

  depends_on = [google_project_service.this]
}
