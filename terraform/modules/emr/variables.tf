################################################################################
# Cluster identity
################################################################################

variable "name" {
  description = "EMR cluster name; also the prefix of its IAM roles, security groups and security configuration."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,38}$", var.name))
    error_message = "name must start with a letter and contain 2-39 letters, digits or hyphens (it prefixes IAM role names)."
  }
}

variable "release_label" {
  description = "EMR release label the cluster runs, e.g. emr-spark-8.1.0 (or emr-7.x.y)."
  type        = string
  default     = "emr-spark-8.1.0"

  validation {
    condition     = can(regex("^emr-(spark-)?[0-9]+\\.[0-9]+\\.[0-9]+$", var.release_label))
    error_message = "release_label must look like emr-spark-<major>.<minor>.<patch> or emr-<major>.<minor>.<patch>."
  }
}

variable "applications" {
  description = "EMR applications to install; must include Spark."
  type        = list(string)
  default     = ["Spark", "Hadoop"]

  validation {
    condition     = contains(var.applications, "Spark") && alltrue([for a in var.applications : contains(["Spark", "Hadoop", "Hive", "Livy", "JupyterEnterpriseGateway", "Trino", "Zeppelin"], a)])
    error_message = "applications must include Spark and only use Spark, Hadoop, Hive, Livy, JupyterEnterpriseGateway, Trino or Zeppelin."
  }
}

################################################################################
# Network
################################################################################

variable "vpc_id" {
  description = "VPC of the cluster; the module creates the EMR-managed security groups in it."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC id (vpc-xxxxxxxx)."
  }
}

variable "subnet_ids" {
  description = "Private subnets the instance fleets may launch in (EMR picks one). Subnets that auto-assign public IPs are rejected. Tag them for-use-with-amazon-emr-managed-policies=true for the v2 service policy."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids must be a non-empty list of subnet ids (subnet-xxxxxxxx)."
  }
}

variable "ssh_key_name" {
  description = "Optional EC2 key pair for SSH to the primary node; null (default) means no SSH key (use SSM Session Manager)."
  type        = string
  default     = null

  validation {
    condition     = var.ssh_key_name == null || try(length(var.ssh_key_name) >= 1 && length(var.ssh_key_name) <= 255, false)
    error_message = "ssh_key_name must be null or a key pair name of 1-255 characters."
  }
}

################################################################################
# Storage wiring
################################################################################

variable "data_bucket" {
  description = "Name of the lakehouse data bucket (read/write for the jobs)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.data_bucket))
    error_message = "data_bucket must be a valid S3 bucket name."
  }
}

variable "artifacts_bucket" {
  description = "Name of the artifacts bucket (read-only for the cluster: wheels, entry points, bootstrap, TLS certificates)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.artifacts_bucket))
    error_message = "artifacts_bucket must be a valid S3 bucket name."
  }
}

variable "logs_bucket" {
  description = "Name of the logs bucket; EMR writes to s3://<logs_bucket>/<log_prefix>."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.logs_bucket))
    error_message = "logs_bucket must be a valid S3 bucket name."
  }
}

variable "log_prefix" {
  description = "Key prefix for EMR logs in the logs bucket; must end with a slash."
  type        = string
  default     = "emr/"

  validation {
    condition     = can(regex("^[a-zA-Z0-9!_.*'()/-]+/$", var.log_prefix)) && !startswith(var.log_prefix, "/")
    error_message = "log_prefix must be a relative S3 key prefix ending with '/', e.g. emr/."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for S3 (SSE-KMS), local disk/EBS encryption and log encryption."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)."
  }
}

variable "in_transit_tls_certificates_s3_object" {
  description = "S3 URI of the zip with PEM certificates (privateKey.pem, certificateChain.pem, trustedCertificates.pem) used for EMR in-transit encryption."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+\\.zip$", var.in_transit_tls_certificates_s3_object))
    error_message = "in_transit_tls_certificates_s3_object must be an s3://bucket/key.zip URI."
  }
}

################################################################################
# Instance fleets
################################################################################

variable "primary_instance_types" {
  description = "Instance types for the single on-demand primary node (first available wins)."
  type        = list(string)
  default     = ["m6i.xlarge", "m5.xlarge", "m5a.xlarge"]

  validation {
    condition     = length(var.primary_instance_types) >= 1 && length(var.primary_instance_types) <= 5 && alltrue([for t in var.primary_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "primary_instance_types must list 1-5 EC2 instance types like m6i.xlarge."
  }
}

variable "core_instance_types" {
  description = "Instance types for the on-demand core fleet (HDFS, YARN application masters)."
  type        = list(string)
  default     = ["r6i.2xlarge", "r5.2xlarge", "r5a.2xlarge"]

  validation {
    condition     = length(var.core_instance_types) >= 1 && length(var.core_instance_types) <= 5 && alltrue([for t in var.core_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "core_instance_types must list 1-5 EC2 instance types like r6i.2xlarge."
  }
}

variable "task_instance_types" {
  description = "Instance types for the spot task fleet. Several types (>= 3) diversify spot pools; each counts as one capacity unit."
  type        = list(string)
  default     = ["r6i.2xlarge", "r5.2xlarge", "r5a.2xlarge", "r6a.2xlarge", "r5n.2xlarge"]

  validation {
    condition     = length(var.task_instance_types) >= 3 && length(var.task_instance_types) <= 15 && length(distinct(var.task_instance_types)) == length(var.task_instance_types) && alltrue([for t in var.task_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", t))])
    error_message = "task_instance_types must list 3-15 distinct EC2 instance types so spot capacity can be diversified."
  }
}

variable "core_on_demand_units" {
  description = "On-demand capacity units (instances) of the core fleet at launch."
  type        = number
  default     = 2

  validation {
    condition     = var.core_on_demand_units >= 1 && var.core_on_demand_units <= 50 && floor(var.core_on_demand_units) == var.core_on_demand_units
    error_message = "core_on_demand_units must be a whole number between 1 and 50."
  }
}

variable "task_spot_units" {
  description = "Spot capacity units (instances) of the task fleet at launch; managed scaling moves it afterwards."
  type        = number
  default     = 2

  validation {
    condition     = var.task_spot_units >= 0 && var.task_spot_units <= 500 && floor(var.task_spot_units) == var.task_spot_units
    error_message = "task_spot_units must be a whole number between 0 and 500."
  }
}

variable "spot_timeout_minutes" {
  description = "Minutes to wait for spot capacity before spot_timeout_action applies."
  type        = number
  default     = 10

  validation {
    condition     = var.spot_timeout_minutes >= 5 && var.spot_timeout_minutes <= 1440
    error_message = "spot_timeout_minutes must be between 5 and 1440."
  }
}

variable "spot_timeout_action" {
  description = "What the task fleet does when spot capacity is not available in time."
  type        = string
  default     = "SWITCH_TO_ON_DEMAND"

  validation {
    condition     = contains(["SWITCH_TO_ON_DEMAND", "TERMINATE_CLUSTER"], var.spot_timeout_action)
    error_message = "spot_timeout_action must be SWITCH_TO_ON_DEMAND or TERMINATE_CLUSTER."
  }
}

variable "ebs_volume_size_gb" {
  description = "gp3 EBS data volume size per core/task instance (shuffle, HDFS)."
  type        = number
  default     = 128

  validation {
    condition     = var.ebs_volume_size_gb >= 32 && var.ebs_volume_size_gb <= 16384
    error_message = "ebs_volume_size_gb must be between 32 and 16384."
  }
}

variable "root_volume_size_gb" {
  description = "Root EBS volume size of every node."
  type        = number
  default     = 32

  validation {
    condition     = var.root_volume_size_gb >= 15 && var.root_volume_size_gb <= 100
    error_message = "root_volume_size_gb must be between 15 and 100."
  }
}

################################################################################
# Scaling and lifecycle
################################################################################

variable "managed_scaling" {
  description = "EMR managed scaling limits in instance fleet units (core + task). maximum_on_demand_capacity_units caps on-demand spend; everything above it is spot."
  type = object({
    enabled                          = optional(bool, true)
    minimum_capacity_units           = optional(number, 2)
    maximum_capacity_units           = optional(number, 20)
    maximum_on_demand_capacity_units = optional(number, 4)
    maximum_core_capacity_units      = optional(number, 4)
  })
  default = {}

  validation {
    condition     = var.managed_scaling.minimum_capacity_units >= 1 && var.managed_scaling.minimum_capacity_units <= var.managed_scaling.maximum_capacity_units
    error_message = "managed_scaling.minimum_capacity_units must be >= 1 and <= maximum_capacity_units."
  }

  validation {
    condition     = var.managed_scaling.maximum_on_demand_capacity_units <= var.managed_scaling.maximum_capacity_units && var.managed_scaling.maximum_core_capacity_units <= var.managed_scaling.maximum_capacity_units
    error_message = "managed_scaling on-demand and core caps must not exceed maximum_capacity_units."
  }

  validation {
    condition     = var.managed_scaling.maximum_on_demand_capacity_units >= var.core_on_demand_units && var.managed_scaling.maximum_core_capacity_units >= var.core_on_demand_units
    error_message = "managed_scaling on-demand and core caps must be >= core_on_demand_units, or the core fleet could never reach its launch size."
  }
}

variable "idle_timeout_seconds" {
  description = "Auto-termination: the cluster terminates after being idle this long."
  type        = number
  default     = 3600

  validation {
    condition     = var.idle_timeout_seconds >= 60 && var.idle_timeout_seconds <= 604800
    error_message = "idle_timeout_seconds must be between 60 (1 minute) and 604800 (7 days)."
  }
}

variable "termination_protection" {
  description = "Protect the cluster from accidental termination (also blocks terraform destroy)."
  type        = bool
  default     = false
}

variable "step_concurrency_level" {
  description = "Number of steps that may run concurrently."
  type        = number
  default     = 1

  validation {
    condition     = var.step_concurrency_level >= 1 && var.step_concurrency_level <= 256
    error_message = "step_concurrency_level must be between 1 and 256."
  }
}

variable "steps" {
  description = "Optional steps run at cluster creation (later jobs are submitted by the project's tooling). Each step runs jar (default command-runner.jar) with args."
  type = list(object({
    name              = string
    action_on_failure = optional(string, "CONTINUE")
    jar               = optional(string, "command-runner.jar")
    args              = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for s in var.steps : contains(["CONTINUE", "CANCEL_AND_WAIT", "TERMINATE_CLUSTER"], s.action_on_failure)])
    error_message = "steps[*].action_on_failure must be CONTINUE, CANCEL_AND_WAIT or TERMINATE_CLUSTER."
  }
}

################################################################################
# YARN / Spark
################################################################################

variable "application_master_node_label" {
  description = "YARN node label that application masters (Spark drivers in cluster mode) are pinned to, so a spot reclaim never kills a driver. ON_DEMAND needs EMR 7.2+/8.x; CORE works on older releases."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "CORE"], var.application_master_node_label)
    error_message = "application_master_node_label must be ON_DEMAND or CORE."
  }
}

variable "spark_dynamic_allocation" {
  description = "Spark dynamic allocation settings written to spark-defaults."
  type = object({
    enabled       = optional(bool, true)
    min_executors = optional(number, 1)
    max_executors = optional(number, 200)
  })
  default = {}

  validation {
    condition     = var.spark_dynamic_allocation.min_executors >= 0 && var.spark_dynamic_allocation.min_executors <= var.spark_dynamic_allocation.max_executors
    error_message = "spark_dynamic_allocation.min_executors must be >= 0 and <= max_executors."
  }
}

variable "spark_decommissioning" {
  description = "Enable Spark graceful decommissioning (migrate shuffle/RDD blocks off nodes being reclaimed or scaled in)."
  type        = bool
  default     = true
}

variable "spark_defaults" {
  description = "Extra spark-defaults properties; they override the module's defaults."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, _ in var.spark_defaults : startswith(k, "spark.")])
    error_message = "spark_defaults keys must be Spark properties starting with \"spark.\"."
  }
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

variable "delta_log_table_arn" {
  description = "ARN of the DynamoDB table of Delta's S3 log store (lakehouse-storage output delta_log_table_arn); empty: no DynamoDB access is granted."
  type        = string
  default     = ""

  validation {
    condition     = var.delta_log_table_arn == "" || can(regex("^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/.+$", var.delta_log_table_arn))
    error_message = "delta_log_table_arn must be empty or a DynamoDB table ARN (arn:aws:dynamodb:<region>:<account>:table/<name>)."
  }
}
