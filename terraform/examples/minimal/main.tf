# The smallest deployment an infra team makes: the suite's root module (terraform/) called with
# what has no default, plus where alerts go. Copy this folder into the team's own repository
# (point `source` at a pinned ref of this one), fill in minimal.tfvars.example, and apply.
# terraform/README.md's runbook covers bootstrap, the first apply and verifying it.

terraform {
  required_version = ">= 1.5"

  # The team's state bucket; the prefix names the environment:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=creations/prod"
  backend "gcs" {}
}

variable "project_id" {
  description = "The Google Cloud project to deploy into (billing on, Firebase added)."
  type        = string
}

variable "region" {
  description = "Region of the functions, buckets and topics."
  type        = string
  default     = "us-central1"
}

variable "alert_notification_channels" {
  description = "Notification channel ids (projects/P/notificationChannels/N) the alerts notify."
  type        = list(string)
  default     = []
}

module "creations" {
  source = "../.."

  project_id = var.project_id
  region     = var.region
  # `make build` at the repository root writes dist/ (one zip per function + manifest.json).
  dist_dir                    = "${path.root}/../../../dist"
  alert_notification_channels = var.alert_notification_channels
}

output "submit_url" {
  description = "Base URL of the HTTP API."
  value       = module.creations.submit_url
}
