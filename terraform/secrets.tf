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
