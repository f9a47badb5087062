/**
* Opt-in interface VPC endpoints, so that cabal-triage keeps seeing (and the mail tiers keep
* logging) when Cabalmail's NAT is down, the very incident behind a `nat-replace` verdict.
* Cabalmail's VPC has only the S3 and DynamoDB gateway endpoints; every other AWS API goes
* through the NAT. docs/operations.md, "Blind during the incident", says what works without them.
*
* Private DNS is on, so the endpoints serve every client in the VPC, not only cabal-triage: their
* security group admits HTTPS from the whole VPC CIDR (a narrower rule would cut the mail tiers'
* awslogs driver off from CloudWatch Logs). Each endpoint costs an hourly fee per subnet/AZ.
*/

locals {
  vpc_endpoint_services = toset(var.vpc_endpoints ? var.vpc_endpoint_services : [])
}

resource "aws_security_group" "endpoints" {
  count       = var.vpc_endpoints ? 1 : 0
  name        = "${local.name}-endpoints"
  description = "Interface VPC endpoints created by the cabal-triage module: HTTPS from the VPC in."
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  count             = var.vpc_endpoints ? 1 : 0
  security_group_id = aws_security_group.endpoints[0].id
  description       = "HTTPS from clients in the VPC (private DNS sends all of them here)."
  cidr_ipv4         = var.vpc_cidr_block
  from_port         = 443
  to_port           = 443
  ip_protocol       = "tcp"
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = local.vpc_endpoint_services
  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${var.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true

  tags = {
    Name = "cabal-${replace(each.key, ".", "-")}-endpoint"
  }

  lifecycle {
    precondition {
      condition     = var.vpc_cidr_block != null
      error_message = "vpc_endpoints = true needs vpc_cidr_block (module.vpc.vpc.cidr_block): the endpoints admit HTTPS from the VPC."
    }
  }
}
