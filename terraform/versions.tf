terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8"
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
