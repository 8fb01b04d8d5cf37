terraform {
  required_version = ">= 1.5"

  # One major each, the one `make terraform-check` checks the configuration against (the
  # provider schema of google and google-beta 7.46.1: tools/tfcheck/pins.py). Moving to a new
  # major is a change of those pins and of these lines together.
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 7.46"
    }
    # Service agents (google_project_service_identity) are only in google-beta.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 7.46"
    }
    # time_sleep: new service agents' grants need a minute to take effect (service_agents.tf).
    time = {
      source  = "hashicorp/time"
      version = "~> 0.14"
    }
  }

  # State lives in a GCS bucket the infra team owns; bucket and prefix are given at init:
  #   terraform init -backend-config="bucket=<state bucket>" -backend-config="prefix=creations/<env>"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = var.labels
}

provider "google-beta" {
  project = var.project_id
  region  = var.region

  default_labels = var.labels
}
