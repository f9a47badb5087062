/**
* Provider requirements of the cabal-triage module: the range Cabalmail's root module pins
* (terraform/infra/terraform.tf), so `terraform init` in Cabalmail's stack resolves one provider.
*/

terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0.0, < 7.0.0"
    }
  }
}
