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

variable "vpc_id" {
  description = "VPC of the EMR cluster."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-xxxxxxxx)."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets (no public IP on launch; S3 gateway endpoint or NAT for egress) tagged for-use-with-amazon-emr-managed-policies=true."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) > 0 && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "private_subnet_ids must be a non-empty list of subnet ids."
  }
}

variable "release_label" {
  description = "EMR release label."
  type        = string
  default     = "emr-spark-8.1.0"

  validation {
    condition     = can(regex("^emr-(spark-)?[0-9]+\\.[0-9]+\\.[0-9]+$", var.release_label))
    error_message = "release_label must look like emr-spark-<major>.<minor>.<patch> or emr-<major>.<minor>.<patch>."
  }
}

variable "tls_certificates_key" {
  description = "Key in the artifacts bucket of the PEM zip used for EMR in-transit encryption (upload it before creating the cluster)."
  type        = string
  default     = "emr/tls/certs.zip"

  validation {
    condition     = endswith(var.tls_certificates_key, ".zip") && !startswith(var.tls_certificates_key, "/")
    error_message = "tls_certificates_key must be a relative S3 key ending in .zip."
  }
}

variable "task_spot_units" {
  description = "Spot task instances at launch (managed scaling adjusts afterwards)."
  type        = number
  default     = 2

  validation {
    condition     = var.task_spot_units >= 0 && var.task_spot_units <= 500
    error_message = "task_spot_units must be between 0 and 500."
  }
}

variable "max_capacity_units" {
  description = "Managed scaling ceiling (core + task instances)."
  type        = number
  default     = 20

  validation {
    condition     = var.max_capacity_units >= 4 && var.max_capacity_units <= 1000
    error_message = "max_capacity_units must be between 4 and 1000."
  }
}

variable "max_on_demand_capacity_units" {
  description = "Managed scaling cap on on-demand instances; capacity above it is spot."
  type        = number
  default     = 4

  validation {
    condition     = var.max_on_demand_capacity_units >= 2 && var.max_on_demand_capacity_units <= var.max_capacity_units
    error_message = "max_on_demand_capacity_units must be >= 2 (core fleet) and <= max_capacity_units."
  }
}

variable "idle_timeout_seconds" {
  description = "Terminate the cluster after this many idle seconds."
  type        = number
  default     = 3600

  validation {
    condition     = var.idle_timeout_seconds >= 60 && var.idle_timeout_seconds <= 604800
    error_message = "idle_timeout_seconds must be between 60 and 604800."
  }
}

variable "tags" {
  description = "Tags applied to every resource through the provider's default_tags."
  type        = map(string)
  default     = { project = "lakehouse" }

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags: keys must be 1-128 characters and not start with aws:, values at most 256 characters."
  }
}
