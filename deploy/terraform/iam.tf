/**
* Roles of the cabal-triage task.
*
* Task role: what the probes need (deploy/iam/cabal-triage-policy.json: DescribeLogStreams and FilterLogEvents on the
* three tier log groups, Describe of the NAT, ListTasks/DescribeTasks/ExecuteCommand limited to the
* mail cluster and containers) plus, with the dynamodb ledger backend, the ledger table's statement
* of the same file (the operations src/ledger/dynamodb calls, on the table and its indexes).
*
* Execution role: pull the image, write the log group, read the three SecureString parameters.
*/

data "aws_iam_policy_document" "assume_ecs_tasks" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# ── Task role ─────────────────────────────────────────────────

resource "aws_iam_role" "task" {
  name               = "${local.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
}

resource "aws_iam_role_policy" "probes" {
  name   = "${local.name}-probes"
  role   = aws_iam_role.task.id
  policy = local.probes_policy
}

resource "aws_iam_role_policy" "ledger" {
  count  = var.ledger_backend == "dynamodb" ? 1 : 0
  name   = "${local.name}-ledger"
  role   = aws_iam_role.task.id
  policy = local.ledger_policy
}

# ── Execution role ────────────────────────────────────────────

resource "aws_iam_role" "execution" {
  name               = "${local.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume_ecs_tasks.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "secrets" {
  statement {
    sid       = "ReadTheServiceSecrets"
    actions   = ["ssm:GetParameters"]
    resources = [for secret in local.secrets : secret.valueFrom]
  }

  dynamic "statement" {
    for_each = var.ssm_kms_key_arn == null ? [] : [var.ssm_kms_key_arn]
    content {
      sid       = "DecryptTheServiceSecrets"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "secrets" {
  name   = "${local.name}-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.secrets.json
}

# ── Alertmanager's side of the webhook secret ─────────────────

# Cabalmail's Alertmanager task reads its secrets at start through its execution role; this lets
# it read the webhook token too (the entrypoint writes it into the rendered configuration).
data "aws_iam_policy_document" "alertmanager_webhook_token" {
  count = var.alertmanager_execution_role_name == null ? 0 : 1

  statement {
    sid       = "ReadTheCabalTriageWebhookToken"
    actions   = ["ssm:GetParameters"]
    resources = ["${local.parameter_arn}webhook_token"]
  }

  dynamic "statement" {
    for_each = var.ssm_kms_key_arn == null ? [] : [var.ssm_kms_key_arn]
    content {
      sid       = "DecryptTheCabalTriageWebhookToken"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "alertmanager_webhook_token" {
  count  = var.alertmanager_execution_role_name == null ? 0 : 1
  name   = "${local.name}-webhook-token"
  role   = var.alertmanager_execution_role_name
  policy = data.aws_iam_policy_document.alertmanager_webhook_token[0].json
}
