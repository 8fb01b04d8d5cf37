# The APIs the suite uses. Left enabled on destroy: other things in the project may use them.
locals {
  services = toset([
    "aiplatform.googleapis.com",       # Vertex AI (Imagen, Veo, Gemini)
    "artifactregistry.googleapis.com", # function images
    "cloudbuild.googleapis.com",       # builds the functions
    "cloudfunctions.googleapis.com",   # the functions (2nd gen)
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com", # runs the sweeper
    "eventarc.googleapis.com",       # Firestore triggers (modules/event_function firestore_trigger; none today)
    "firebaserules.googleapis.com",  # Firestore security rules
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com", # signBlob: submit and webhooks sign media download URLs
    "logging.googleapis.com",
    "monitoring.googleapis.com", # alert policies and the dashboard (monitoring.tf)
    "pubsub.googleapis.com",
    "run.googleapis.com",           # 2nd gen functions run on Cloud Run
    "secretmanager.googleapis.com", # GENAI_API_KEY, WEBHOOK_SECRET
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "this" {
  for_each = local.services

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
