/**
* The service's own log group (the awslogs driver writes one JSON object per line).
*/

resource "aws_cloudwatch_log_group" "triage" {
  name              = "/ecs/${local.name}"
  retention_in_days = var.log_retention_days
}
