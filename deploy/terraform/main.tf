/**
* cabal-triage on Cabalmail's ECS cluster: one service next to the mail tiers, registered as
* triage.<monitoring namespace> in Cloud Map (where Prometheus and Alertmanager find their peers),
* reachable only from Alertmanager's and Prometheus's security groups.
*
* Like Cabalmail's own services: desired_count follows `quiesced`, the image is deployed out of
* band (a new task definition revision per deploy, tag in /cabal/deployed_image_tag/triage) so
* Terraform ignores the container definitions and the service's task definition, and a
* deployment circuit breaker rolls a task that fails its health check back.
*
* With the SQLite ledger the service must stay at one task, and a deployment stops the old task
* before starting the new one (the ledger file takes a lock). With the DynamoDB ledger, replicas
* share the table and a rolling deployment keeps one task up.
*/

# ── Network ───────────────────────────────────────────────────

resource "aws_security_group" "triage" {
  name        = local.name
  description = "cabal-triage: webhook and metrics from Alertmanager and Prometheus in; HTTPS (AWS APIs, Slack, PagerDuty) and DNS out."
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "from_alertmanager" {
  security_group_id            = aws_security_group.triage.id
  description                  = "Alertmanager posts alerts to the webhook."
  referenced_security_group_id = var.alertmanager_security_group_id
  from_port                    = var.port
  to_port                      = var.port
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_ingress_rule" "from_prometheus" {
  security_group_id            = aws_security_group.triage.id
  description                  = "Prometheus scrapes /metrics."
  referenced_security_group_id = var.prometheus_security_group_id
  from_port                    = var.port
  to_port                      = var.port
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.triage.id
  description       = "HTTPS: AWS APIs (logs, ec2, ecs, dynamodb, ssmmessages), Slack, PagerDuty, ntfy, Pushover."
  cidr_ipv4         = "0.0.0.0/0" #tfsec:ignore:aws-vpc-no-public-egress-sgr
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "alertmanager" {
  count                        = var.alertmanager_url == null ? 0 : 1
  security_group_id            = aws_security_group.triage.id
  description                  = "Alertmanager's API v2: the Silence and Expire buttons."
  referenced_security_group_id = var.alertmanager_security_group_id
  from_port                    = var.alertmanager_port
  to_port                      = var.alertmanager_port
  ip_protocol                  = "tcp"
}

resource "aws_vpc_security_group_egress_rule" "dns" {
  for_each          = toset(["udp", "tcp"])
  security_group_id = aws_security_group.triage.id
  description       = "DNS (${each.key}): blocklist lookups against dnsbl.nameservers."
  cidr_ipv4         = "0.0.0.0/0" #tfsec:ignore:aws-vpc-no-public-egress-sgr
  from_port         = 53
  to_port           = 53
  ip_protocol       = each.key
}

# ── Service discovery ─────────────────────────────────────────

data "aws_service_discovery_dns_namespace" "monitoring" {
  name = var.service_discovery_namespace
  type = "DNS_PRIVATE"
}

resource "aws_service_discovery_service" "triage" {
  name        = "triage"
  description = "cabal-triage: Alertmanager webhook, /metrics for Prometheus."

  dns_config {
    namespace_id   = data.aws_service_discovery_dns_namespace.monitoring.id
    routing_policy = "MULTIVALUE"
    dns_records {
      ttl  = 10
      type = "A"
    }
  }

  # AWS stores HealthCheckCustomConfig.FailureThreshold = 1 itself; without this, Terraform sees
  # drift and plans a replacement that would strand the registered task (Cabalmail's
  # modules/monitoring/discovery.tf has the same block for the same reason).
  lifecycle {
    ignore_changes = [health_check_custom_config]
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
    merge({
      name                   = local.name
      image                  = local.image
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
          mode                  = "non-blocking"
        }
      }
    }, local.health_check)
  ])

  # Image deploys register new revisions out of band (Cabalmail's app workflow); a topology-only
  # apply must not roll them back.
  lifecycle {
    ignore_changes = [container_definitions]

    precondition {
      condition = alltrue([
        for tier in ["imap", "smtp-in", "smtp-out"] : var.tier_log_group_names[tier] == "/ecs/cabal-${tier}"
      ])
      error_message = "The image's configuration reads /ecs/cabal-<tier>; other log group names need cabalmail.tiers.<tier>.log_group set in a configuration file baked into the image (docs/configuration.md)."
    }
  }
}

# ── Service ───────────────────────────────────────────────────

resource "aws_ecs_service" "triage" {
  name            = local.name
  cluster         = var.ecs_cluster_id
  task_definition = aws_ecs_task_definition.triage.arn
  desired_count   = var.quiesced ? 0 : var.desired_count

  # SQLite: never two tasks on one ledger. DynamoDB: keep one up during a deployment.
  deployment_maximum_percent         = var.ledger_backend == "sqlite" ? 100 : 200
  deployment_minimum_healthy_percent = var.ledger_backend == "sqlite" ? 0 : 100

  # A revision whose task never turns healthy (the container healthCheck runs
  # `cabal-triage healthcheck`) is rolled back to the last one that did.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  capacity_provider_strategy {
    capacity_provider = var.ecs_cluster_capacity_provider
    weight            = 100
  }

  network_configuration {
    subnets         = var.private_subnet_ids
    security_groups = [aws_security_group.triage.id]
  }

  service_registries {
    registry_arn = aws_service_discovery_service.triage.arn
  }

  lifecycle {
    # Deploys move the service to new revisions out of band (see the task definition).
    ignore_changes = [task_definition]

    precondition {
      condition     = var.ledger_backend == "dynamodb" || var.desired_count <= 1
      error_message = "More than one replica needs ledger_backend = \"dynamodb\" (a SQLite ledger belongs to one process)."
    }
  }
}
