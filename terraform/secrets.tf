# The Gemini Developer API key (generation.mode = "developer"). Terraform makes the secret, never
# its value, so the key is not in the state: add it with
#   printf %s "$KEY" | gcloud secrets versions add genai-api-key --data-file=- --project=<project>
# before switching to developer mode. Only the generate function may read it.
resource "google_secret_manager_secret" "genai_api_key" {
  project   = var.project_id
  secret_id = var.genai_api_key_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

# The Standard Webhooks signing secret (`whsec_` and base64 of 24-64 random bytes) the webhooks
# function signs every event with. Terraform makes the secret, never its value:
#   printf 'whsec_%s' "$(openssl rand -base64 32)" |
#     gcloud secrets versions add webhook-signing-secret --data-file=- --project=<project>
# then set webhook_secret_has_version = true and apply, and hand the same value to the
# receivers that verify (docs/webhooks.md). Only the webhooks function may read it
# (modules/event_function grants its account alone).
resource "google_secret_manager_secret" "webhook_signing" {
  project   = var.project_id
  secret_id = var.webhook_secret_id

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}
