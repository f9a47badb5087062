/**
* Input variables for the cabal-triage module. Names of the Cabalmail environment default to
* Cabalmail's own (cluster cabal-mail, log groups /ecs/cabal-<tier>); secrets are never inputs:
* the task reads them from SSM Parameter Store at start.
*/

# ── Cabalmail environment ─────────────────────────────────────

variable "region" {
  type        = string
  description = "AWS region of the Cabalmail deployment."
}

variable "cluster_name" {
  type        = string
  description = "ECS cluster that runs the mail tiers; cabal-triage runs in it too."
  default     = "cabal-mail"
}

variable "capacity_provider" {
  type        = string
  description = "Capacity provider of the cluster (Cabalmail's EC2 capacity provider)."
}

variable "private_subnets" {
  type        = list(string)
  description = "Private subnet IDs for the task (awsvpc networking)."
}

variable "vpc_id" {
  type        = string
  description = "VPC ID."
}

variable "alertmanager_cidr_blocks" {
  type        = list(string)
  description = "CIDR blocks allowed to reach the webhook port (where Alertmanager runs)."
}

variable "service_discovery_namespace" {
  type        = string
  description = "Cloud Map private DNS namespace (Cabalmail's cabal.internal) to register triage.<namespace> in; null to skip."
  default     = "cabal.internal"
}

# ── Container ─────────────────────────────────────────────────

variable "image" {
  type        = string
  description = "Container image built from deploy/Dockerfile (e.g. <account>.dkr.ecr.<region>.amazonaws.com/cabal-triage:sha-abc1234)."
}

variable "cpu" {
  type        = number
  description = "Task CPU units."
  default     = 256
}

variable "memory" {
  type        = number
  description = "Task memory (MiB)."
  default     = 512
}

variable "port" {
  type        = number
  description = "Port the webhook listens on."
  default     = 9095
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the service's own log group."
  default     = 30
}

variable "extra_environment" {
  type        = map(string)
  description = "More CABAL_TRIAGE_* settings (docs/configuration.md), e.g. { CABAL_TRIAGE__WORKER__CONCURRENCY = \"8\" }."
  default     = {}
}

# ── Ledger ────────────────────────────────────────────────────

variable "ledger_backend" {
  type        = string
  description = "\"dynamodb\" (survives task replacement, allows several replicas) or \"sqlite\" (a file on a task volume: lost when the task moves)."
  default     = "dynamodb"

  validation {
    condition     = contains(["dynamodb", "sqlite"], var.ledger_backend)
    error_message = "ledger_backend must be \"dynamodb\" or \"sqlite\"."
  }
}

# ledger_table_name is declared in ledger_table.tf, with the table.

variable "desired_count" {
  type        = number
  description = "Replicas; more than 1 needs ledger_backend = \"dynamodb\"."
  default     = 1
}

# ── Notification targets ──────────────────────────────────────

variable "slack_channel" {
  type        = string
  description = "Slack channel ID (C...) for annotations; null leaves Slack off."
  default     = null
}

variable "pagerduty_from_email" {
  type        = string
  description = "Email of the PagerDuty user notes are written as; null leaves PagerDuty off."
  default     = null
}

variable "public_url" {
  type        = string
  description = "Base URL operators reach the service at, for links in annotations; null for none."
  default     = null
}

# ── Secrets (SSM Parameter Store, SecureString) ───────────────

variable "ssm_parameter_prefix" {
  type        = string
  description = "Path prefix of the SecureString parameters: <prefix>/webhook-token, <prefix>/slack-bot-token, <prefix>/pagerduty-api-token."
  default     = "/cabal-triage"
}

variable "ssm_kms_key_arn" {
  type        = string
  description = "Customer-managed KMS key encrypting the parameters; null for the AWS-managed aws/ssm key."
  default     = null
}
