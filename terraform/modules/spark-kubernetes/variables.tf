variable "cluster_name" {
  description = "Name of the existing EKS cluster the node groups join."
  type        = string

  validation {
    condition     = can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must be a valid EKS cluster name (1-100 letters, digits, hyphens, underscores)."
  }
}

variable "name" {
  description = "Prefix for IAM roles, the launch template and node groups created by this module."
  type        = string
  default     = "lakehouse-spark"

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,38}$", var.name))
    error_message = "name must start with a letter and contain 2-39 letters, digits or hyphens."
  }
}

variable "namespace" {
  description = "Kubernetes namespace the Spark applications run in."
  type        = string
  default     = "spark-jobs"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace)) && !contains(["default", "kube-system", "kube-public", "kube-node-lease"], var.namespace)
    error_message = "namespace must be a DNS-1123 label and not a system namespace (default, kube-*)."
  }
}

variable "service_account_name" {
  description = "Service account the Spark driver and executors run as; it assumes the IRSA role."
  type        = string
  default     = "spark"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.service_account_name))
    error_message = "service_account_name must be a DNS-1123 subdomain."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider (IRSA)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN."
  }
}

variable "oidc_issuer_url" {
  description = "OIDC issuer URL of the cluster (https://oidc.eks.<region>.amazonaws.com/id/<id>)."
  type        = string

  validation {
    condition     = can(regex("^https://[^ ]+$", var.oidc_issuer_url))
    error_message = "oidc_issuer_url must be an https:// URL."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the Spark node groups."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids must be a non-empty list of subnet ids."
  }
}

variable "data_bucket" {
  description = "Name of the lakehouse data bucket (read/write for Spark)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.data_bucket))
    error_message = "data_bucket must be a valid S3 bucket name."
  }
}

variable "artifacts_bucket" {
  description = "Name of the artifacts bucket (read-only for Spark)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifacts_bucket))
    error_message = "artifacts_bucket must be a valid S3 bucket name."
  }
}

variable "logs_bucket" {
  description = "Name of the logs bucket (Spark event logs, write)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.logs_bucket))
    error_message = "logs_bucket must be a valid S3 bucket name."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key of the lakehouse buckets."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "spark_operator_chart_version" {
  description = "Pinned version of the kubeflow spark-operator Helm chart."
  type        = string
  default     = "2.1.1"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.spark_operator_chart_version))
    error_message = "spark_operator_chart_version must be an exact semantic version (x.y.z), not a range."
  }
}

variable "spark_operator_chart_repository" {
  description = "Helm repository of the spark-operator chart (https, or a private mirror)."
  type        = string
  default     = "https://kubeflow.github.io/spark-operator"

  validation {
    condition     = startswith(var.spark_operator_chart_repository, "https://") || startswith(var.spark_operator_chart_repository, "oci://")
    error_message = "spark_operator_chart_repository must use https:// or oci://."
  }
}

variable "spark_operator_namespace" {
  description = "Namespace of the spark-operator controller and webhook."
  type        = string
  default     = "spark-operator"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.spark_operator_namespace))
    error_message = "spark_operator_namespace must be a DNS-1123 label."
  }
}

variable "driver_node_group" {
  description = "On-demand node group for Spark drivers (and the operator). Labelled lakehouse/capacity=on-demand."
  type = object({
    instance_types = optional(list(string), ["m6i.xlarge", "m5.xlarge", "m5a.xlarge"])
    min_size       = optional(number, 1)
    desired_size   = optional(number, 1)
    max_size       = optional(number, 5)
  })
  default = {}

  validation {
    condition     = length(var.driver_node_group.instance_types) >= 1 && var.driver_node_group.min_size >= 1 && var.driver_node_group.min_size <= var.driver_node_group.desired_size && var.driver_node_group.desired_size <= var.driver_node_group.max_size
    error_message = "driver_node_group needs at least one instance type and 1 <= min_size <= desired_size <= max_size."
  }
}

variable "executor_node_group" {
  description = "Spot node group for Spark executors. Labelled lakehouse/capacity=spot and tainted lakehouse/capacity=spot:NoSchedule."
  type = object({
    instance_types = optional(list(string), ["r6i.2xlarge", "r5.2xlarge", "r5a.2xlarge", "r6a.2xlarge"])
    min_size       = optional(number, 0)
    desired_size   = optional(number, 1)
    max_size       = optional(number, 20)
  })
  default = {}

  validation {
    condition     = length(distinct(var.executor_node_group.instance_types)) >= 3
    error_message = "executor_node_group.instance_types must list at least 3 distinct types so spot capacity is diversified."
  }

  validation {
    condition     = var.executor_node_group.min_size >= 0 && var.executor_node_group.min_size <= var.executor_node_group.desired_size && var.executor_node_group.desired_size <= var.executor_node_group.max_size && var.executor_node_group.max_size >= 1
    error_message = "executor_node_group needs 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }
}

variable "node_volume_size_gb" {
  description = "Encrypted gp3 root volume size of every Spark node (local shuffle/spill lives here)."
  type        = number
  default     = 100

  validation {
    condition     = var.node_volume_size_gb >= 20 && var.node_volume_size_gb <= 16384
    error_message = "node_volume_size_gb must be between 20 and 16384."
  }
}

variable "node_volume_kms_key_arn" {
  description = "Optional KMS key for node volumes; null uses the account's default EBS key (a CMK here needs a grant for the Auto Scaling service-linked role)."
  type        = string
  default     = null

  validation {
    condition     = var.node_volume_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.node_volume_kms_key_arn))
    error_message = "node_volume_kms_key_arn must be null or a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags added to every AWS resource."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags: keys must be 1-128 characters and not start with aws:, values at most 256 characters."
  }
}

variable "emr_on_eks" {
  description = "Also create an EMR on EKS virtual cluster on the Spark namespace, its job execution role (IRSA) and the namespace RBAC EMR on EKS needs."
  type        = bool
  default     = false
}

variable "delta_log_table_arn" {
  description = "ARN of the DynamoDB table of Delta's S3 log store (lakehouse-storage output delta_log_table_arn); empty: no DynamoDB access is granted."
  type        = string
  default     = ""

  validation {
    condition     = var.delta_log_table_arn == "" || can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.delta_log_table_arn))
    error_message = "delta_log_table_arn must be empty or a DynamoDB table ARN (arn:aws:dynamodb:<region>:<account>:table/<name>)."
  }
}
