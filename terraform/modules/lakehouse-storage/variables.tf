variable "name_prefix" {
  description = "Prefix for every bucket and the KMS alias, e.g. \"acme-lakehouse-prod\". Bucket names become <prefix>-<purpose>-<account id>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-32 characters of lowercase letters, digits and hyphens, starting and ending with a letter or digit."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which non-current (overwritten or deleted) object versions are permanently expired."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && var.noncurrent_version_expiration_days <= 3650 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number between 1 and 3650."
  }
}

variable "log_expiration_days" {
  description = "Days after which current objects in the logs and access-logs buckets expire."
  type        = number
  default     = 90

  validation {
    condition     = var.log_expiration_days >= 1 && var.log_expiration_days <= 3650 && floor(var.log_expiration_days) == var.log_expiration_days
    error_message = "log_expiration_days must be a whole number between 1 and 3650."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which incomplete multipart uploads (e.g. from killed Spark tasks) are aborted."
  type        = number
  default     = 7

  validation {
    condition     = var.abort_incomplete_multipart_upload_days >= 1 && var.abort_incomplete_multipart_upload_days <= 365
    error_message = "abort_incomplete_multipart_upload_days must be between 1 and 365."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the customer-managed KMS key is deleted after destroy."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30 (AWS limits)."
  }
}

variable "kms_key_service_principals" {
  description = "AWS service principals allowed to use the key via the service on behalf of this account (e.g. logs.<region>.amazonaws.com). S3, EC2 and EMR use it through IAM principals and need no entry."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.kms_key_service_principals : can(regex("^[a-z0-9.-]+\\.amazonaws\\.com$", p))])
    error_message = "Each entry must be an AWS service principal such as logs.eu-west-1.amazonaws.com."
  }
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete non-empty buckets. Keep false outside of throwaway environments."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags: keys must be 1-128 characters and not start with aws:, values at most 256 characters."
  }
}
