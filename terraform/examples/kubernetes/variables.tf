variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name_prefix" {
  description = "Prefix for buckets, the KMS alias and the EMR cluster."
  type        = string
  default     = "lakehouse"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cluster_name" {
  description = "Name of the existing EKS cluster (with an IAM OIDC provider for IRSA)."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be a valid EKS cluster name."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets of the cluster's VPC for the Spark node groups."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) > 0 && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "private_subnet_ids must be a non-empty list of subnet ids."
  }
}

variable "namespace" {
  description = "Namespace for the Spark applications."
  type        = string
  default     = "spark-jobs"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS-1123 label."
  }
}

variable "service_account" {
  description = "Service account the Spark pods run as."
  type        = string
  default     = "spark"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a DNS-1123 subdomain."
  }
}

variable "tags" {
  description = "Tags applied to every AWS resource through the provider's default_tags."
  type        = map(string)
  default     = { project = "lakehouse" }

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags: keys must be 1-128 characters and not start with aws:, values at most 256 characters."
  }
}

variable "emr_on_eks" {
  description = "Also set up EMR on EKS on the Spark namespace (lakehouse submit emr-eks)."
  type        = bool
  default     = false
}
