/**
* Roles of the cabal-triage task.
*
* Task role: what the probes need (deploy/iam/cabal-triage-policy.json: FilterLogEvents on the
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
