/**
* Derived names, ARNs and the container definition.
*/

locals {
  name       = "cabal-triage"
  account_id = data.aws_caller_identity.current.account_id

  webhook_url = (var.service_discovery_namespace == null ? null
  : "http://triage.${var.service_discovery_namespace}:${var.port}/api/v1/alerts")

  parameter_arn = "arn:aws:ssm:${var.region}:${local.account_id}:parameter${var.ssm_parameter_prefix}"

  # Only the secrets whose destination is configured are injected (Slack/PagerDuty stay off
  # otherwise, as the service itself decides from the presence of a token).
  secrets = concat(
    [{ name = "CABAL_TRIAGE_WEBHOOK_TOKEN", valueFrom = "${local.parameter_arn}/webhook-token" }],
    var.slack_channel == null ? [] : [
      { name = "CABAL_TRIAGE_SLACK_BOT_TOKEN", valueFrom = "${local.parameter_arn}/slack-bot-token" },
    ],
    var.pagerduty_from_email == null ? [] : [
      { name = "CABAL_TRIAGE_PAGERDUTY_API_TOKEN", valueFrom = "${local.parameter_arn}/pagerduty-api-token" },
    ],
  )

  environment = merge(
    {
      CABAL_TRIAGE_LISTEN              = "0.0.0.0:${var.port}"
      CABAL_TRIAGE_LOG_FORMAT          = "json"
      CABAL_TRIAGE_AWS_REGION          = var.region
      CABAL_TRIAGE_LEDGER_BACKEND      = var.ledger_backend
      CABAL_TRIAGE_LEDGER_TABLE        = var.ledger_table_name
      CABAL_TRIAGE_LEDGER              = "/var/lib/cabal-triage/cabal-triage.db"
      CABAL_TRIAGE__CABALMAIL__CLUSTER = var.cluster_name
    },
    var.slack_channel == null ? {} : { CABAL_TRIAGE_SLACK_CHANNEL = var.slack_channel },
    var.pagerduty_from_email == null ? {} : { CABAL_TRIAGE_PAGERDUTY_FROM = var.pagerduty_from_email },
    var.public_url == null ? {} : { CABAL_TRIAGE_PUBLIC_URL = var.public_url },
    var.extra_environment,
  )

  # deploy/iam/cabal-triage-policy.json with this account, region, cluster and ledger table
  # filled in. Its statements are split by Sid: the ledger's (LedgerTable; the table-creation
  # statement is left out, Terraform creates the table) go to their own policy, attached only
  # with the dynamodb backend, the rest are the probes'.
  policy_statements = jsondecode(
    replace(
      replace(
        replace(
          replace(file("${path.module}/../iam/cabal-triage-policy.json"), "REGION", var.region),
          "ACCOUNT_ID",
          local.account_id,
        ),
        "/cabal-mail",
        "/${var.cluster_name}",
      ),
      "table/cabal-triage",
      "table/${var.ledger_table_name}",
    )
  ).Statement
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
