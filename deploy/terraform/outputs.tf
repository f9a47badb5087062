/**
* Outputs of the cabal-triage module, including the Alertmanager receiver to paste into the
* Alertmanager configuration (deploy/alertmanager/alertmanager.yml shows it in context).
*/

output "service_name" {
  value       = aws_ecs_service.triage.name
  description = "ECS service name."
}

output "task_role_arn" {
  value       = aws_iam_role.task.arn
  description = "Role the probes run as."
}

output "security_group_id" {
  value       = aws_security_group.triage.id
  description = "Security group of the task."
}

output "log_group_name" {
  value       = aws_cloudwatch_log_group.triage.name
  description = "The service's own log group."
}

output "webhook_url" {
  value       = local.webhook_url
  description = "Webhook URL for Alertmanager: triage.<monitoring namespace> in Cloud Map."
}

output "alertmanager_receiver" {
  value = templatefile("${path.module}/alertmanager_receiver.yml.tftpl", {
    webhook_url = local.webhook_url
  })
  description = "cabal-triage receiver for Cabalmail's Alertmanager configuration template (token as the __CABAL_TRIAGE_WEBHOOK_TOKEN__ placeholder)."
}

output "prometheus_scrape_target" {
  value       = "triage.${var.service_discovery_namespace}:${var.port}"
  description = "For a dns_sd_configs job in Cabalmail's docker/prometheus/prometheus.yml (type A, this port)."
}

output "vpc_endpoint_ids" {
  value       = { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id }
  description = "Interface VPC endpoints created with vpc_endpoints (empty otherwise)."
}
