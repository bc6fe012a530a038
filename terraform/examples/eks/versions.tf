terraform {
  # 1.9+: cross-variable validation; 1.7+: mock providers in `terraform test`.
  required_version = ">= 1.9.0"

  # Pinned to the versions scripts/terraform-check.sh installs offline
  # (aws from the machine's mirror, helm/kubernetes built from their Go modules).
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "1.3.2"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "1.13.4"
    }
  }
}
