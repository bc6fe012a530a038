terraform {
  # 1.9+: cross-variable validation; 1.7+: mock providers in `terraform test`.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}
