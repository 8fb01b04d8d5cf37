output "name" {
  description = "The function's name."
  value       = google_cloudfunctions2_function.this.name
}

output "url" {
  description = "The function's HTTPS URL (its Cloud Run service's URI)."
  value       = local.service_uri
}

output "service_account_email" {
  description = "The function's runtime service account: grant it what the code needs."
  value       = google_service_account.function.email
}

output "service_account_member" {
  description = "The runtime service account as an IAM member (`serviceAccount:...`)."
  value       = google_service_account.function.member
}

output "push_subscription" {
  description = "Name of the function's push subscription (null unless Pub/Sub-fed)."
  value       = local.pubsub == null ? null : google_pubsub_subscription.push[0].name
}

output "source_object" {
  description = "The uploaded source zip, as gs://bucket/object."
  value       = "gs://${google_storage_bucket_object.source.bucket}/${google_storage_bucket_object.source.name}"
}
