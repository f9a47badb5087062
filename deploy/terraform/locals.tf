/**
* Derived names, ARNs, the image and the container definition's parts. Everything the module
* reads lives inside it (the IAM policy is iam_policy.json.tftpl), so it works copied to
* terraform/infra/modules/triage in Cabalmail's repository.
*/

locals {
  name         = "cabal-triage"
  account_id   = data.aws_caller_identity.current.account_id
  cluster_name = element(split("/", var.ecs_cluster_id), 1)

  # Cabalmail's bootstrap sentinel (terraform/infra/main.tf): no image pushed yet.
  placeholder_image_tag = "bootstrap-placeholder"
  bootstrapping         = var.image_tag == local.placeholder_image_tag
  image                 = local.bootstrapping ? var.placeholder_image : "${var.ecr_repository_url}:${var.image_tag}"

  webhook_url = "http://triage.${var.service_discovery_namespace}:${var.port}/api/v1/alerts"

  parameter_arn = "arn:aws:ssm:${var.region}:${local.account_id}:parameter${var.ssm_parameter_prefix}"
  # Cabalmail's own parameters (ntfy, Pushover), named in full.
  cabal_parameter_arn = "arn:aws:ssm:${var.region}:${local.account_id}:parameter"

  # Only the secrets whose destination is configured are injected (Slack/PagerDuty stay off
  # otherwise, as the service itself decides from the presence of a token).
  secrets = concat(
    [{ name = "CABAL_TRIAGE_WEBHOOK_TOKEN", valueFrom = "${local.parameter_arn}webhook_token" }],
    var.slack_channel == null ? [] : [
      { name = "CABAL_TRIAGE_SLACK_BOT_TOKEN", valueFrom = "${local.parameter_arn}slack_bot_token" },
    ],
    var.pagerduty_from_email == null ? [] : [
      { name = "CABAL_TRIAGE_PAGERDUTY_API_TOKEN", valueFrom = "${local.parameter_arn}pagerduty_api_token" },
    ],
    var.slack_channel == null || !var.slack_buttons ? [] : [
      { name = "CABAL_TRIAGE_SLACK_APP_TOKEN", valueFrom = "${local.parameter_arn}slack_app_token" },
    ],
    var.ntfy_base_url == null || var.ntfy_topic == null ? [] : [
      { name = "CABAL_TRIAGE_NTFY_TOKEN", valueFrom = "${local.cabal_parameter_arn}${var.ntfy_token_parameter}" },
    ],
    var.pushover ? [
      { name = "CABAL_TRIAGE_PUSHOVER_APP_TOKEN", valueFrom = "${local.cabal_parameter_arn}${var.pushover_app_token_parameter}" },
      { name = "CABAL_TRIAGE_PUSHOVER_USER_KEY", valueFrom = "${local.cabal_parameter_arn}${var.pushover_user_key_parameter}" },
    ] : [],
  )

  environment = merge(
    {
      CABAL_TRIAGE_LISTEN              = "0.0.0.0:${var.port}"
      CABAL_TRIAGE_LOG_FORMAT          = "json"
      CABAL_TRIAGE_AWS_REGION          = var.region
      CABAL_TRIAGE_LEDGER_BACKEND      = var.ledger_backend
      CABAL_TRIAGE_LEDGER_TABLE        = var.ledger_table_name
      CABAL_TRIAGE_LEDGER              = "/var/lib/cabal-triage/cabal-triage.db"
      CABAL_TRIAGE__CABALMAIL__CLUSTER = local.cluster_name
    },
    var.slack_channel == null ? {} : { CABAL_TRIAGE_SLACK_CHANNEL = var.slack_channel },
    var.pagerduty_from_email == null ? {} : { CABAL_TRIAGE_PAGERDUTY_FROM = var.pagerduty_from_email },
    var.public_url == null ? {} : { CABAL_TRIAGE_PUBLIC_URL = var.public_url },
    var.ntfy_base_url == null || var.ntfy_topic == null ? {} : {
      CABAL_TRIAGE_NTFY_BASE_URL = var.ntfy_base_url
      CABAL_TRIAGE_NTFY_TOPIC    = var.ntfy_topic
    },
    var.slack_channel == null || !var.slack_buttons || length(var.slack_allowed_users) == 0 ? {} : {
      CABAL_TRIAGE__SLACK__ALLOWED_USERS = join(",", var.slack_allowed_users)
    },
    var.alertmanager_url == null ? {} : { CABAL_TRIAGE_ALERTMANAGER_URL = var.alertmanager_url },
    var.extra_environment,
  )

  # The binary asks its own /healthz (the distroless image has no shell or curl). Left out while
  # the placeholder image runs: it has no cabal-triage binary.
  health_check = local.bootstrapping ? {} : {
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/cabal-triage", "healthcheck", "--url", "http://127.0.0.1:${var.port}/healthz"]
      interval    = 30
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
  }

  # iam_policy.json.tftpl is deploy/iam/cabal-triage-policy.json with placeholders (tests/deploy.rs
  # holds them equal). Its statements are split by Sid: the ledger's (LedgerTable; the
  # table-creation statement is left out, Terraform creates the table) go to their own policy,
  # attached only with the dynamodb backend; the rest are the probes'.
  policy_statements = jsondecode(templatefile("${path.module}/iam_policy.json.tftpl", {
    region            = var.region
    account_id        = local.account_id
    cluster_name      = local.cluster_name
    ledger_table_name = var.ledger_table_name
    log_groups        = var.tier_log_group_names
  })).Statement
  probes_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [for s in local.policy_statements : s if !startswith(s.Sid, "Ledger")]
  })
  ledger_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [for s in local.policy_statements : s if s.Sid == "LedgerTable"]
  })
}

data "aws_caller_identity" "current" {}
