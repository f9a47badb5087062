# cabal-triage in Cabalmail's root module (terraform/infra/). Copy deploy/terraform/ to
# terraform/infra/modules/triage/ and this file to terraform/infra/triage.tf; then, in
# terraform/infra/main.tf, add "triage" to local.monitoring_tiers. That one word gives the tier
# what every monitoring tier has: the cabal-triage ECR repository (module.ecr, kept with
# prevent_destroy), the /cabal/deployed_image_tag/triage parameter and local.tier_image_tags.
# The service exists only with var.monitoring (it needs Alertmanager, Prometheus and their Cloud
# Map namespace) and follows var.quiesced. docs/operations.md, "On Cabalmail's ECS cluster",
# lists the rest (secrets, Alertmanager route, Prometheus job, image pipeline).

# The monitoring module does not output its security groups; they are looked up by name after it
# has been applied.
data "aws_security_group" "alertmanager" {
  count      = var.monitoring ? 1 : 0
  name       = "cabal-alertmanager"
  vpc_id     = module.vpc.vpc.id
  depends_on = [module.monitoring]
}

data "aws_security_group" "prometheus" {
  count      = var.monitoring ? 1 : 0
  name       = "cabal-prometheus"
  vpc_id     = module.vpc.vpc.id
  depends_on = [module.monitoring]
}

module "triage" {
  source = "./modules/triage"
  count  = var.monitoring ? 1 : 0

  region                         = var.aws_region
  vpc_id                         = module.vpc.vpc.id
  private_subnet_ids             = module.vpc.private_subnets[*].id
  ecs_cluster_id                 = module.ecs.cluster_arn
  ecs_cluster_capacity_provider  = module.ecs.capacity_provider_name
  tier_log_group_names           = module.ecs.tier_log_group_names
  alertmanager_security_group_id = data.aws_security_group.alertmanager[0].id
  prometheus_security_group_id   = data.aws_security_group.prometheus[0].id

  ecr_repository_url = module.ecr.repository_urls["triage"]
  image_tag          = local.tier_image_tags["triage"]

  quiesced = var.quiesced

  # Lets Cabalmail's Alertmanager task read /cabal/triage_webhook_token (see
  # deploy/alertmanager/cabalmail/ for its configuration).
  alertmanager_execution_role_name = "cabal-alertmanager-execution"

  # Optional: slack_channel = "C0123456789", pagerduty_from_email = "oncall@example.com".
  # The phone, as alert_sink reaches it (the same parameters, read by this task's execution
  # role): ntfy_base_url = "https://ntfy.${var.control_domain}", ntfy_topic = var.ntfy_topic,
  # pushover = true. The buttons: slack_buttons = true (an xapp- token in
  # /cabal/triage_slack_app_token), slack_allowed_users = ["U0123456789"], alertmanager_url =
  # "http://alertmanager.<namespace>:9093".

  # Opt-in: keep the probes (and the tiers' logs) working while the NAT is down, at an hourly
  # cost per endpoint and AZ (docs/operations.md, "Blind during the incident").
  vpc_endpoints  = false
  vpc_cidr_block = module.vpc.vpc.cidr_block

  # The Cloud Map namespace and the security groups come from the monitoring module.
  depends_on = [module.monitoring]
}

output "triage_webhook_url" {
  value       = one(module.triage[*].webhook_url)
  description = "URL of cabal-triage's Alertmanager webhook (null without monitoring)."
}
