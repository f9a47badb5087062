/**
* Inputs of the cabal-triage module. Names follow Cabalmail's own modules (modules/monitoring:
* private_subnet_ids, ecs_cluster_id, ecs_cluster_capacity_provider, quiesced, tier_log_group_names)
* so the module block in terraform/infra/main.tf passes the same expressions the monitoring block
* does. Secrets are never inputs: the task reads them from SSM Parameter Store (/cabal/triage_*).
*/

# ── Cabalmail environment ─────────────────────────────────────

variable "region" {
  type        = string
  description = "AWS region of the Cabalmail deployment (var.aws_region in Cabalmail's root)."
}

variable "vpc_id" {
  type        = string
  description = "VPC ID (module.vpc.vpc.id)."
}

variable "private_subnet_ids" {
  type        = list(string)
  description = "Private subnet IDs for the task (module.vpc.private_subnets[*].id)."
}

variable "ecs_cluster_id" {
  type        = string
  description = "ARN of the mail cluster (module.ecs.cluster_arn); the service runs in it and the probes are limited to it."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:ecs:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z0-9_-]+$", var.ecs_cluster_id))
    error_message = "ecs_cluster_id must be the cluster ARN (module.ecs.cluster_arn), arn:aws:ecs:<region>:<account>:cluster/<name>."
  }
}

variable "ecs_cluster_capacity_provider" {
  type        = string
  description = "EC2 capacity provider of the cluster (module.ecs.capacity_provider_name)."
}

variable "tier_log_group_names" {
  type        = map(string)
  description = "Log group of each mail tier (module.ecs.tier_log_group_names); the probes may read these three only."
  default = {
    imap       = "/ecs/cabal-imap"
    "smtp-in"  = "/ecs/cabal-smtp-in"
    "smtp-out" = "/ecs/cabal-smtp-out"
  }

  validation {
    condition     = alltrue([for tier in ["imap", "smtp-in", "smtp-out"] : contains(keys(var.tier_log_group_names), tier)])
    error_message = "tier_log_group_names must have the keys imap, smtp-in and smtp-out (module.ecs.tier_log_group_names)."
  }
}

variable "alertmanager_security_group_id" {
  type        = string
  description = "Security group of Cabalmail's Alertmanager task (cabal-alertmanager): allowed to post to the webhook."
}

variable "prometheus_security_group_id" {
  type        = string
  description = "Security group of Cabalmail's Prometheus task (cabal-prometheus): allowed to scrape /metrics."
}

variable "service_discovery_namespace" {
  type        = string
  description = "Cloud Map namespace Prometheus discovers scrape targets in; the task registers as triage.<namespace>."
  default     = "cabal-monitoring.cabal.internal"
}

variable "quiesced" {
  type        = bool
  description = "When true, desired_count is zero (Cabalmail's quiesce switch, docs/quiesce.md)."
  default     = false
}

# ── Image ─────────────────────────────────────────────────────

variable "ecr_repository_url" {
  type        = string
  description = "ECR repository of the image (module.ecr.repository_urls[\"triage\"], i.e. cabal-triage)."
}

variable "image_tag" {
  type        = string
  description = "Tag to start from (local.tier_image_tags[\"triage\"], read from /cabal/deployed_image_tag/triage). Later deploys register task definitions out of band; Terraform ignores them."
}

variable "placeholder_image" {
  type        = string
  description = "Image used while image_tag is the bootstrap sentinel (\"bootstrap-placeholder\"), as Cabalmail's other tiers do on the first apply."
  default     = "public.ecr.aws/nginx/nginx:stable"
}

# ── Container ─────────────────────────────────────────────────

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
  description = "Port of the webhook, the operator API and /metrics."
  default     = 9095
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the service's own log group; Cabalmail keeps a year (its checkov gate, CKV_AWS_338)."
  default     = 365

  validation {
    condition     = var.log_retention_days >= 365
    error_message = "log_retention_days below 365 fails Cabalmail's checkov gate (CKV_AWS_338)."
  }
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
  description = "Replicas when not quiesced; more than 1 needs ledger_backend = \"dynamodb\"."
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

variable "ntfy_base_url" {
  type        = string
  description = "Cabalmail's self-hosted ntfy (https://ntfy.<control_domain>, as alert_sink uses it); null leaves ntfy off."
  default     = null
}

variable "ntfy_topic" {
  type        = string
  description = "The ntfy topic the verdicts go to (Cabalmail's ntfy_topic, the one alert_sink publishes to)."
  default     = null
}

variable "ntfy_token_parameter" {
  type        = string
  description = "SecureString parameter of the ntfy publisher token: Cabalmail's own, shared with alert_sink."
  default     = "/cabal/ntfy_publisher_token"
}

variable "pushover" {
  type        = bool
  description = "Send verdicts of critical alerts to Pushover with Cabalmail's application token and user key (the parameters below)."
  default     = false
}

variable "pushover_app_token_parameter" {
  type        = string
  description = "SecureString parameter of the Pushover application token: Cabalmail's own, shared with alert_sink."
  default     = "/cabal/pushover_app_token"
}

variable "pushover_user_key_parameter" {
  type        = string
  description = "SecureString parameter of the Pushover user key: Cabalmail's own, shared with alert_sink."
  default     = "/cabal/pushover_user_key"
}

variable "slack_buttons" {
  type        = bool
  description = "Slack's Socket Mode buttons (Silence 2 h / 8 h, Re-run triage): reads the app-level token from <prefix>slack_app_token; needs slack_channel."
  default     = false
}

variable "slack_allowed_users" {
  type        = list(string)
  description = "Slack user (U…) or user-group (S…) ids allowed to press the buttons."
  default     = []
}

variable "alertmanager_url" {
  type        = string
  description = "Cabalmail's Alertmanager, for the Silence buttons (for example http://alertmanager.<namespace>:9093); null: no silences. Opens egress to the Alertmanager security group on alertmanager_port."
  default     = null
}

variable "alertmanager_port" {
  type        = number
  description = "The port alertmanager_url points at."
  default     = 9093
}

variable "public_url" {
  type        = string
  description = "Base URL operators reach the service at, for links in annotations; null for none."
  default     = null
}

# ── Secrets (SSM Parameter Store, SecureString) ───────────────

variable "ssm_parameter_prefix" {
  type        = string
  description = "Prefix of the SecureString parameters, Cabalmail style: <prefix>webhook_token, <prefix>slack_bot_token, <prefix>pagerduty_api_token."
  default     = "/cabal/triage_"

  validation {
    condition     = startswith(var.ssm_parameter_prefix, "/cabal/")
    error_message = "ssm_parameter_prefix must start with /cabal/ (Cabalmail's parameter namespace)."
  }
}

variable "ssm_kms_key_arn" {
  type        = string
  description = "Customer-managed KMS key encrypting the parameters; null for the AWS-managed aws/ssm key."
  default     = null
}

variable "alertmanager_execution_role_name" {
  type        = string
  description = "Execution role of Cabalmail's Alertmanager task (cabal-alertmanager-execution): granted ssm:GetParameters on the webhook token so the task can inject it as CABAL_TRIAGE_WEBHOOK_TOKEN; null to grant nothing."
  default     = null
}

# ── Egress without the NAT (opt-in) ───────────────────────────

variable "vpc_endpoints" {
  type        = bool
  description = "Create interface VPC endpoints (vpc_endpoint_services) in the private subnets, so the probes and the task's logs work while the NAT is down. Off by default: each endpoint has an hourly cost per AZ, and private DNS makes them serve the whole VPC."
  default     = false
}

variable "vpc_endpoint_services" {
  type        = list(string)
  description = "Services given an interface endpoint when vpc_endpoints is true: logs (tier log probe, awslogs), ec2 (NAT state), ecs (task list, ExecuteCommand), ssmmessages (ECS Exec data channel). Add ssm, ecr.api, ecr.dkr, ecs-agent, ecs-telemetry to also let tasks start without the NAT."
  default     = ["logs", "ec2", "ecs", "ssmmessages"]

  validation {
    condition = alltrue([
      for s in var.vpc_endpoint_services :
      contains(["logs", "ec2", "ecs", "ssmmessages", "ssm", "kms", "sts", "ecr.api", "ecr.dkr", "ecs-agent", "ecs-telemetry"], s)
    ])
    error_message = "vpc_endpoint_services: one of logs, ec2, ecs, ssmmessages, ssm, kms, sts, ecr.api, ecr.dkr, ecs-agent, ecs-telemetry (S3 and DynamoDB have gateway endpoints in Cabalmail's vpc module already)."
  }
}

variable "vpc_cidr_block" {
  type        = string
  description = "CIDR of the VPC (module.vpc.vpc.cidr_block); needed with vpc_endpoints, whose security group admits HTTPS from it."
  default     = null
}
