terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source = "hashicorp/google"
      # The major `make terraform-check` checks against (tools/tfcheck/pins.py).
      version = "~> 7.46"
    }
  }
}
