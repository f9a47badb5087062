# The DynamoDB table of cabal-triage's ledger when several replicas run
# (ledger.backend = "dynamodb", ledger.table = var.ledger_table_name). Layout and reasons:
# docs/architecture.md, "The DynamoDB ledger". Variables are prefixed ledger_ so that this file
# stands beside the service's own Terraform without clashes.

variable "ledger_table_name" {
  description = "Name of the ledger table (ledger.table / CABAL_TRIAGE_LEDGER_TABLE)."
  type        = string
  default     = "cabal-triage"
}

variable "ledger_point_in_time_recovery" {
  description = "Keep continuous backups of the ledger (point-in-time recovery)."
  type        = bool
  default     = true
}

variable "ledger_deletion_protection" {
  description = "Refuse to delete the table (turn off before a deliberate terraform destroy)."
  type        = bool
  default     = true
}

variable "ledger_tags" {
  description = "Tags added to the ledger table."
  type        = map(string)
  default     = {}
}

resource "aws_dynamodb_table" "ledger" {
  name                        = var.ledger_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.ledger_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "queue_pk"
    type = "S"
  }
  attribute {
    name = "queue_sk"
    type = "S"
  }
  attribute {
    name = "outbox_pk"
    type = "S"
  }
  attribute {
    name = "outbox_sk"
    type = "S"
  }
  attribute {
    name = "list_pk"
    type = "S"
  }
  attribute {
    name = "list_sk"
    type = "S"
  }

  # Due triage jobs: queued, or leased (due when the lease expires).
  global_secondary_index {
    name            = "queue"
    hash_key        = "queue_pk"
    range_key       = "queue_sk"
    projection_type = "KEYS_ONLY"
  }

  # Episodes with unfinished delivery rows, by when the next one is due.
  global_secondary_index {
    name            = "outbox"
    hash_key        = "outbox_pk"
    range_key       = "outbox_sk"
    projection_type = "KEYS_ONLY"
  }

  # Episodes by last seen: the operator list, the purge and the metrics counts.
  global_secondary_index {
    name               = "recent"
    hash_key           = "list_pk"
    range_key          = "list_sk"
    projection_type    = "INCLUDE"
    non_key_attributes = ["episode_id", "alertname", "status", "state", "group_key", "fingerprint", "starts_at", "ends_at", "first_seen_ms", "last_seen_ms", "repeats"]
  }

  # Retention backstop; the service purges explicitly (ledger.retention_days).
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = var.ledger_point_in_time_recovery
  }

  server_side_encryption {
    enabled = true
  }

  tags = merge({ "app" = "cabal-triage" }, var.ledger_tags)
}

output "ledger_table_name" {
  description = "Set ledger.table (CABAL_TRIAGE_LEDGER_TABLE) to this."
  value       = aws_dynamodb_table.ledger.name
}

output "ledger_table_arn" {
  description = "For the service's IAM policy: dynamodb:GetItem, PutItem, UpdateItem, BatchGetItem, BatchWriteItem, Query, DescribeTable (and CreateTable, UpdateTimeToLive with ledger.create_table) on this ARN and on <arn>/index/*."
  value       = aws_dynamodb_table.ledger.arn
}
