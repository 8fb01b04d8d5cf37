# Operable on day one: log-based metrics from the functions' structured log lines
# (docs/observability.md lists them), alert policies on what needs a person (money or work
# stuck, errors, a sweeper that does not run), and one dashboard. terraform/README.md's runbook
# says what each alert means and what to do.

locals {
  # Every line the functions write is a Cloud Run revision's log entry; ours are JSON.
  function_logs = "resource.type=\"cloud_run_revision\" AND jsonPayload.message:*"
  # Subscriptions whose messages need a person: jobs Pub/Sub gave up on, and webhook events
  # whose 24 hours of retries ran out.
  dead_letter_subscriptions = {
    jobs     = google_pubsub_subscription.dead_letter_inspect.name
    webhooks = google_pubsub_subscription.webhooks_exhausted_inspect.name
  }
  alert_channels = var.alert_notification_channels
  # The functions' Cloud Run services carry the functions' names.
  function_names = [
    module.submit.name, module.generate.name, module.stitch.name,
    module.refund.name, module.dead_letter.name, module.sweep.name, module.webhooks.name,
  ]
}

# --- log-based metrics ------------------------------------------------------------------------

resource "google_logging_metric" "creations_accepted" {
  project     = var.project_id
  name        = "creations/accepted"
  description = "Creations submit accepted (debited and queued), by type."
  filter      = "${local.function_logs} AND jsonPayload.message=\"creation accepted\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "type"
      value_type = "STRING"
    }
  }
  label_extractors = {
    type = "EXTRACT(jsonPayload.type)"
  }
  depends_on = [google_project_service.this]
}

resource "google_logging_metric" "jobs_finished" {
  project     = var.project_id
  name        = "creations/jobs_finished"
  description = "Jobs generate and stitch finished, by outcome (draft, failed, lost_claim, retried) and error code."
  filter      = "${local.function_logs} AND jsonPayload.message=~\"^job done: \""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "outcome"
      value_type = "STRING"
    }
    labels {
      key        = "error_code"
      value_type = "STRING"
    }
    labels {
      key        = "type"
      value_type = "STRING"
    }
  }
  label_extractors = {
    outcome    = "EXTRACT(jsonPayload.outcome)"
    error_code = "EXTRACT(jsonPayload.detail)"
    type       = "EXTRACT(jsonPayload.type)"
  }
  depends_on = [google_project_service.this]
}

resource "google_logging_metric" "time_to_draft" {
  project     = var.project_id
  name        = "creations/time_to_draft_ms"
  description = "From submit to draft (since_created_ms of the draft's job line), by type."
  filter      = "${local.function_logs} AND jsonPayload.message=\"job done: draft\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "ms"
    labels {
      key        = "type"
      value_type = "STRING"
    }
  }
  value_extractor = "EXTRACT(jsonPayload.since_created_ms)"
  label_extractors = {
    type = "EXTRACT(jsonPayload.type)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 40
      growth_factor      = 1.4
      scale              = 50
    }
  }
  depends_on = [google_project_service.this]
}

resource "google_logging_metric" "refunds" {
  project     = var.project_id
  name        = "creations/refunds"
  description = "Refunds the refund function and the sweeper made (cancels and not-queued refund in their own write)."
  filter      = "${local.function_logs} AND (jsonPayload.message=~\"^refund: refunded\" OR jsonPayload.message=\"sweeper refunded a creation its status event did not\")"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
  depends_on = [google_project_service.this]
}

# The sweeper's own lines about creations it found stuck: re-enqueued, failed after too many
# re-enqueues, refunded or deleted where the status stream did not.
resource "google_logging_metric" "stuck_creations" {
  project     = var.project_id
  name        = "creations/stuck"
  description = "Creations the sweeper found stuck (pending or processing past its limits, or final and unrefunded)."
  filter      = "${local.function_logs} AND jsonPayload.message=~\"^sweeper (re-enqueued|failed|refunded|finished|could not)\""
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
  depends_on = [google_project_service.this]
}

resource "google_logging_metric" "function_errors" {
  project     = var.project_id
  name        = "creations/function_errors"
  description = "Lines at ERROR or above from the functions, by function."
  filter      = "resource.type=\"cloud_run_revision\" AND severity>=ERROR AND resource.labels.service_name=(${join(" OR ", [for name in local.function_names : "\"${name}\""])})"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    labels {
      key        = "function"
      value_type = "STRING"
    }
  }
  label_extractors = {
    function = "EXTRACT(resource.labels.service_name)"
  }
  depends_on = [google_project_service.this]
}

resource "google_logging_metric" "sweep_failures" {
  project     = var.project_id
  name        = "creations/sweep_schedule_failures"
  description = "Cloud Scheduler attempts to start the sweeper that failed."
  filter      = "resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id=\"${google_cloud_scheduler_job.sweep.name}\" AND severity>=ERROR"
  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
  }
  depends_on = [google_project_service.this]
}

# --- alerts -----------------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "dead_letters" {
  for_each = local.dead_letter_subscriptions

  project               = var.project_id
  display_name          = "creations: messages in dead-letter subscription ${each.value}"
  combiner              = "OR"
  notification_channels = local.alert_channels
  conditions {
    display_name = "undelivered messages in ${each.value}"
    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${each.value}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "300s"
      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "Messages wait in `${each.value}`. Read them and act as terraform/README.md's runbook says (section \"Alerts\")."
  }
  depends_on = [google_project_service.this]
}

resource "google_monitoring_alert_policy" "stuck_creations" {
  project               = var.project_id
  display_name          = "creations: creations stuck past the sweeper's limits"
  combiner              = "OR"
  notification_channels = local.alert_channels
  conditions {
    display_name = "stuck creations found by the sweeper"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.stuck_creations.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_stuck_creations_per_hour
      duration        = "0s"
      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "The sweeper keeps finding creations the event chain did not move on (re-enqueued, failed as not_processed, or refunded where the status stream did not). See terraform/README.md, \"Alerts\"."
  }
  depends_on = [google_project_service.this]
}

resource "google_monitoring_alert_policy" "function_errors" {
  project               = var.project_id
  display_name          = "creations: function errors"
  combiner              = "OR"
  notification_channels = local.alert_channels
  conditions {
    display_name = "ERROR lines per function"
    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.function_errors.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_function_errors_per_5m
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.function"]
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "A function logs errors. Open its logs at severity>=ERROR. See terraform/README.md, \"Alerts\"."
  }
  depends_on = [google_project_service.this]
}

resource "google_monitoring_alert_policy" "sweep_failures" {
  project               = var.project_id
  display_name          = "creations: the sweeper's schedule fails"
  combiner              = "OR"
  notification_channels = local.alert_channels
  conditions {
    display_name = "failed Cloud Scheduler attempts"
    condition_threshold {
      filter          = "resource.type=\"cloud_scheduler_job\" AND metric.type=\"logging.googleapis.com/user/${google_logging_metric.sweep_failures.name}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "900s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }
  documentation {
    mime_type = "text/markdown"
    content   = "Cloud Scheduler could not start the sweeper: stuck creations are not re-enqueued and missed refunds wait. See terraform/README.md, \"Alerts\"."
  }
  depends_on = [google_project_service.this]
}

# --- dashboard --------------------------------------------------------------------------------

locals {
  dashboard_charts = [
    { title = "Creations accepted (per type)", metric = google_logging_metric.creations_accepted.name, reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", group = ["metric.label.type"], filter = "" },
    { title = "Jobs reaching draft", metric = google_logging_metric.jobs_finished.name, reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", group = ["metric.label.type"], filter = " AND metric.label.outcome=\"draft\"" },
    { title = "Jobs failed, by error code", metric = google_logging_metric.jobs_finished.name, reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", group = ["metric.label.error_code"], filter = " AND metric.label.outcome=\"failed\"" },
    { title = "Refunds", metric = google_logging_metric.refunds.name, reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", group = [], filter = "" },
    { title = "Time from submit to draft, p50 (ms)", metric = google_logging_metric.time_to_draft.name, reducer = "REDUCE_PERCENTILE_50", aligner = "ALIGN_DELTA", group = ["metric.label.type"], filter = "" },
    { title = "Time from submit to draft, p95 (ms)", metric = google_logging_metric.time_to_draft.name, reducer = "REDUCE_PERCENTILE_95", aligner = "ALIGN_DELTA", group = ["metric.label.type"], filter = "" },
  ]
}

resource "google_monitoring_dashboard" "creations" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "Creations"
    mosaicLayout = {
      columns = 12
      tiles = [
        for index, chart in local.dashboard_charts : {
          xPos   = (index % 2) * 6
          yPos   = floor(index / 2) * 4
          width  = 6
          height = 4
          widget = {
            title = chart.title
            xyChart = {
              dataSets = [{
                plotType = "LINE"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = "metric.type=\"logging.googleapis.com/user/${chart.metric}\"${chart.filter}"
                    aggregation = {
                      alignmentPeriod    = "300s"
                      perSeriesAligner   = chart.aligner
                      crossSeriesReducer = chart.reducer
                      groupByFields      = chart.group
                    }
                  }
                }
              }]
            }
          }
        }
      ]
    }
  })
  depends_on = [google_project_service.this]
}
