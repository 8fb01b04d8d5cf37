# Google's service agents that the grants name. A service's agent exists only once something
# creates it: on a brand-new project, granting a role to the Pub/Sub or Vertex AI agent right
# after its API is enabled fails ("service account does not exist"). Terraform creates them
# (google_project_service_identity, as terraform-google-modules' secure-cloud-function module
# does), then waits for IAM to see them before the first grant names them.

resource "google_project_service_identity" "pubsub" {
  provider = google-beta
  project  = var.project_id
  service  = "pubsub.googleapis.com"

  depends_on = [google_project_service.this]
}

# Veo (vertex mode) stages its videos in the media bucket as this agent (iam.tf).
resource "google_project_service_identity" "vertex" {
  count    = var.grant_vertex_agent_media_write && local.calls_vertex_ai ? 1 : 0
  provider = google-beta
  project  = var.project_id
  service  = "aiplatform.googleapis.com"

  depends_on = [google_project_service.this]
}

# A new agent is not yet known to IAM everywhere; a grant to it in the same apply can fail
# without this pause (about a minute is what Google's modules wait).
resource "time_sleep" "service_agents_known_to_iam" {
  create_duration = "60s"

  triggers = {
    pubsub = google_project_service_identity.pubsub.member
    vertex = join(",", google_project_service_identity.vertex[*].member)
  }
}

locals {
  # Read through the pause, so every grant to an agent waits for it.
  pubsub_agent = time_sleep.service_agents_known_to_iam.triggers["pubsub"]
  vertex_agent = time_sleep.service_agents_known_to_iam.triggers["vertex"]
}
