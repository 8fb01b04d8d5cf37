output "submit_url" {
  description = "Base URL of the HTTP API (POST {url}/v1/creations, ...)."
  value       = module.submit.url
}

output "media_bucket" {
  description = "Bucket of the generated media."
  value       = google_storage_bucket.media.name
}

output "sources_bucket" {
  description = "Bucket of the functions' source zips."
  value       = google_storage_bucket.sources.name
}

output "topics" {
  description = "Pub/Sub topics by role."
  value = {
    generate    = google_pubsub_topic.generate.name
    stitch      = google_pubsub_topic.stitch.name
    dead_letter = google_pubsub_topic.dead_letter.name
    sweep       = google_pubsub_topic.sweep.name
  }
}

output "dead_letter_inspect_subscription" {
  description = "Pull subscription holding a copy of every dead-lettered job for 7 days."
  value       = google_pubsub_subscription.dead_letter_inspect.name
}

output "functions" {
  description = "Each function's URL and runtime service account."
  value = {
    for name, fn in {
      submit        = module.submit
      generate      = module.generate
      stitch        = module.stitch
      refund        = module.refund
      "dead-letter" = module.dead_letter
      sweep         = module.sweep
    } : name => { url = fn.url, service_account = fn.service_account_email }
  }
}
