/**
* The service's own log group (the awslogs driver writes one JSON object per line), kept 365
* days by default like Cabalmail's tier log groups.
*/

resource "aws_cloudwatch_log_group" "triage" {
  name              = "/ecs/${local.name}"
  retention_in_days = var.log_retention_days
}
