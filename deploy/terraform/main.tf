/**
* cabal-triage on Cabalmail's ECS cluster: one service next to the mail tiers, reachable by
* Alertmanager on its webhook port inside the VPC (optionally as triage.<namespace> in Cloud Map).
*
* With the SQLite ledger the service must stay at one task, and a deployment stops the old task
* before starting the new one (the ledger file takes a lock). With the DynamoDB ledger, replicas
* share the table and a rolling deployment keeps one task up.
*/

# ── Network ───────────────────────────────────────────────────

resource "aws_security_group" "triage" {
  name        = local.name
  description = "cabal-triage: webhook from Alertmanager in; AWS APIs, Slack, PagerDuty, DNS out."
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "webhook" {
  for_each          = toset(var.alertmanager_cidr_blocks)
  security_group_id = aws_security_group.triage.id
  description       = "Alertmanager webhook"
  cidr_ipv4         = each.value
  from_port         = var.port
  to_port           = var.port
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "all" {
  security_group_id = aws_security_group.triage.id
  description       = "AWS APIs, ssmmessages, Slack, PagerDuty (443) and DNS blocklists (53)"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

data "aws_service_discovery_dns_namespace" "internal" {
  count = var.service_discovery_namespace == null ? 0 : 1
  name  = var.service_discovery_namespace
  type  = "DNS_PRIVATE"
}

resource "aws_service_discovery_service" "triage" {
  count = var.service_discovery_namespace == null ? 0 : 1
  name  = "triage"

  dns_config {
    namespace_id = data.aws_service_discovery_dns_namespace.internal[0].id
    dns_records {
      ttl  = 10
      type = "A"
    }
    routing_policy = "MULTIVALUE"
  }

  health_check_custom_config {
    failure_threshold = 1
  }
}

# ── Task definition ───────────────────────────────────────────

resource "aws_ecs_task_definition" "triage" {
  family                   = local.name
  network_mode             = "awsvpc"
  requires_compatibilities = ["EC2"]
  cpu                      = var.cpu
  memory                   = var.memory
  task_role_arn            = aws_iam_role.task.arn
  execution_role_arn       = aws_iam_role.execution.arn

  volume {
    name = "ledger"
  }

  container_definitions = jsonencode([
    {
      name                   = local.name
      image                  = var.image
      essential              = true
      user                   = "65532:65532"
      readonlyRootFilesystem = true
      portMappings           = [{ containerPort = var.port, protocol = "tcp" }]
      environment            = [for key in sort(keys(local.environment)) : { name = key, value = local.environment[key] }]
      secrets                = local.secrets
      mountPoints            = [{ sourceVolume = "ledger", containerPath = "/var/lib/cabal-triage", readOnly = false }]
      # Longer than worker.shutdown_grace_secs (20 s): running triages finish before SIGKILL.
      stopTimeout = 30
      linuxParameters = {
        capabilities = { drop = ["ALL"] }
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.triage.name
          awslogs-region        = var.region
          awslogs-stream-prefix = local.name
        }
      }
    }
  ])
}

# ── Service ───────────────────────────────────────────────────

resource "aws_ecs_service" "triage" {
  name            = local.name
  cluster         = var.cluster_name
  task_definition = aws_ecs_task_definition.triage.arn
  desired_count   = var.desired_count

  # SQLite: never two tasks on one ledger. DynamoDB: keep one up during a deployment.
  deployment_maximum_percent         = var.ledger_backend == "sqlite" ? 100 : 200
  deployment_minimum_healthy_percent = var.ledger_backend == "sqlite" ? 0 : 100

  capacity_provider_strategy {
    capacity_provider = var.capacity_provider
    weight            = 100
  }

  network_configuration {
    subnets         = var.private_subnets
    security_groups = [aws_security_group.triage.id]
  }

  dynamic "service_registries" {
    for_each = aws_service_discovery_service.triage
    content {
      registry_arn = service_registries.value.arn
    }
  }

  lifecycle {
    precondition {
      condition     = var.ledger_backend == "dynamodb" || var.desired_count <= 1
      error_message = "More than one replica needs ledger_backend = \"dynamodb\" (a SQLite ledger belongs to one process)."
    }
  }
}
