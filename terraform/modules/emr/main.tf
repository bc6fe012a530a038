data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

# Private subnets only: refuse subnets that hand out public IPs or sit in another VPC.
data "aws_subnet" "selected" {
  for_each = toset(var.subnet_ids)
  id       = each.value

  lifecycle {
    postcondition {
      condition     = !self.map_public_ip_on_launch
      error_message = "Subnet ${self.id} auto-assigns public IPs; the EMR cluster must run in private subnets."
    }
    postcondition {
      condition     = self.vpc_id == var.vpc_id
      error_message = "Subnet ${self.id} is not in ${var.vpc_id}."
    }
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  log_uri = "s3://${var.logs_bucket}/${var.log_prefix}"

  bucket_arns = {
    data      = "arn:${local.partition}:s3:::${var.data_bucket}"
    artifacts = "arn:${local.partition}:s3:::${var.artifacts_bucket}"
    logs      = "arn:${local.partition}:s3:::${var.logs_bucket}"
  }

  # The v2 EMR service policy only acts on resources carrying this tag.
  emr_managed_tag = { "for-use-with-amazon-emr-managed-policies" = "true" }
  tags            = merge(var.tags, local.emr_managed_tag)

  spark_defaults = merge(
    {
      # Delta Lake
      "spark.sql.extensions"            = "io.delta.sql.DeltaSparkSessionExtension"
      "spark.sql.catalog.spark_catalog" = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
      # Dynamic allocation (YARN external shuffle service is on by default on EMR)
      "spark.dynamicAllocation.enabled"      = tostring(var.spark_dynamic_allocation.enabled)
      "spark.dynamicAllocation.minExecutors" = tostring(var.spark_dynamic_allocation.min_executors)
      "spark.dynamicAllocation.maxExecutors" = tostring(var.spark_dynamic_allocation.max_executors)
      # Graceful decommissioning: spot reclaims and scale-in migrate blocks instead of losing them
      "spark.decommission.enabled"                       = tostring(var.spark_decommissioning)
      "spark.storage.decommission.enabled"               = tostring(var.spark_decommissioning)
      "spark.storage.decommission.shuffleBlocks.enabled" = tostring(var.spark_decommissioning)
      "spark.storage.decommission.rddBlocks.enabled"     = tostring(var.spark_decommissioning)
    },
    var.spark_defaults,
  )

  configurations = [
    {
      Classification = "delta-defaults"
      Properties     = { "delta.enabled" = "true" }
    },
    {
      Classification = "spark-defaults"
      Properties     = local.spark_defaults
    },
    {
      # Application masters (Spark drivers in cluster mode) only on on-demand capacity.
      Classification = "yarn-site"
      Properties = {
        "yarn.node-labels.enabled"                          = "true"
        "yarn.node-labels.am.default-node-label-expression" = var.application_master_node_label
      }
    },
  ]

  security_configuration = {
    EncryptionConfiguration = {
      EnableAtRestEncryption    = true
      EnableInTransitEncryption = true
      AtRestEncryptionConfiguration = {
        S3EncryptionConfiguration = {
          EncryptionMode = "SSE-KMS"
          AwsKmsKey      = var.kms_key_arn
        }
        LocalDiskEncryptionConfiguration = {
          EncryptionKeyProviderType = "AwsKms"
          AwsKmsKey                 = var.kms_key_arn
          EnableEbsEncryption       = true
        }
      }
      InTransitEncryptionConfiguration = {
        TLSCertificateConfiguration = {
          CertificateProviderType = "PEM"
          S3Object                = var.in_transit_tls_certificates_s3_object
        }
      }
    }
    # IMDSv2 only, hop limit 1: containers on the nodes cannot reach the instance role.
    InstanceMetadataServiceConfiguration = {
      MinimumInstanceMetadataServiceVersion = 2
      HttpPutResponseHopLimit               = 1
    }
  }
}

################################################################################
# Security configuration
################################################################################

resource "aws_emr_security_configuration" "this" {
  name          = "${var.name}-security"
  configuration = jsonencode(local.security_configuration)
}

################################################################################
# Security groups (rules are managed by EMR itself)
################################################################################

resource "aws_security_group" "primary" {
  name                   = "${var.name}-emr-primary"
  description            = "EMR-managed security group of the ${var.name} primary node; EMR adds the rules it needs."
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = merge(local.tags, { Name = "${var.name}-emr-primary" })
}

resource "aws_security_group" "workers" {
  name                   = "${var.name}-emr-workers"
  description            = "EMR-managed security group of the ${var.name} core and task nodes; EMR adds the rules it needs."
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = merge(local.tags, { Name = "${var.name}-emr-workers" })
}

resource "aws_security_group" "service_access" {
  name                   = "${var.name}-emr-service-access"
  description            = "EMR service access security group for ${var.name} in private subnets; EMR adds the rules it needs."
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = merge(local.tags, { Name = "${var.name}-emr-service-access" })
}

################################################################################
# IAM: service role
################################################################################

resource "aws_iam_role" "service" {
  name = "${var.name}-emr-service"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "elasticmapreduce.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = {
        StringEquals = { "aws:SourceAccount" = local.account_id }
        ArnLike      = { "aws:SourceArn" = "arn:${local.partition}:elasticmapreduce:${local.region}:${local.account_id}:*" }
      }
    }]
  })
  tags = var.tags
}

# AWS's scoped v2 policy: acts only on resources tagged for-use-with-amazon-emr-managed-policies=true.
resource "aws_iam_role_policy_attachment" "service" {
  role       = aws_iam_role.service.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEMRServicePolicy_v2"
}

resource "aws_iam_role_policy" "service" {
  name = "pass-instance-role-and-use-kms"
  role = aws_iam_role.service.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "PassOnlyTheClusterInstanceRole"
        Effect   = "Allow"
        Action   = "iam:PassRole"
        Resource = aws_iam_role.instance.arn
        Condition = {
          StringEquals = { "iam:PassedToService" = "ec2.amazonaws.com" }
        }
      },
      {
        Sid      = "EncryptedEbsVolumes"
        Effect   = "Allow"
        Action   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]
        Resource = var.kms_key_arn
      },
    ]
  })
}

################################################################################
# IAM: instance role (EC2 instance profile) scoped to the lakehouse buckets
################################################################################

resource "aws_iam_role" "instance" {
  name = "${var.name}-emr-instance"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
  tags = var.tags
}

resource "aws_iam_instance_profile" "instance" {
  name = "${var.name}-emr-instance"
  role = aws_iam_role.instance.name
  tags = var.tags
}

resource "aws_iam_role_policy" "instance" {
  name = "lakehouse-buckets"
  role = aws_iam_role.instance.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "ListLakehouseBuckets"
        Effect   = "Allow"
        Action   = ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
        Resource = values(local.bucket_arns)
      },
      {
        Sid    = "ReadWriteData"
        Effect = "Allow"
        Action = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
        # Delta writes, OPTIMIZE and VACUUM need delete on the data bucket.
        Resource = "${local.bucket_arns.data}/*"
      },
      {
        Sid      = "ReadArtifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = "${local.bucket_arns.artifacts}/*"
      },
      {
        Sid      = "WriteLogs"
        Effect   = "Allow"
        Action   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
        Resource = "${local.bucket_arns.logs}/*"
      },
      {
        Sid      = "ReadEmrRegionalArtifacts"
        Effect   = "Allow"
        Action   = ["s3:GetObject"]
        Resource = ["arn:${local.partition}:s3:::${local.region}.elasticmapreduce/*", "arn:${local.partition}:s3:::repo.${local.region}.emr.amazonaws.com/*"]
      },
      {
        Sid      = "UseLakehouseKey"
        Effect   = "Allow"
        Action   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*", "kms:DescribeKey"]
        Resource = var.kms_key_arn
      },
    ], local.delta_log_statements)
  })
}

################################################################################
# Cluster: on-demand primary and core fleets
################################################################################

resource "aws_emr_cluster" "this" {
  name          = var.name
  release_label = var.release_label
  applications  = var.applications

  service_role              = aws_iam_role.service.arn
  security_configuration    = aws_emr_security_configuration.this.name
  log_uri                   = local.log_uri
  log_encryption_kms_key_id = var.kms_key_arn

  termination_protection            = var.termination_protection
  keep_job_flow_alive_when_no_steps = true
  step_concurrency_level            = var.step_concurrency_level
  unhealthy_node_replacement        = true
  scale_down_behavior               = "TERMINATE_AT_TASK_COMPLETION"
  ebs_root_volume_size              = var.root_volume_size_gb
  configurations_json               = jsonencode(local.configurations)

  ec2_attributes {
    subnet_ids                        = var.subnet_ids
    instance_profile                  = aws_iam_instance_profile.instance.arn
    key_name                          = var.ssh_key_name
    emr_managed_master_security_group = aws_security_group.primary.id
    emr_managed_slave_security_group  = aws_security_group.workers.id
    service_access_security_group     = aws_security_group.service_access.id
  }

  master_instance_fleet {
    name                      = "primary-on-demand"
    target_on_demand_capacity = 1
    target_spot_capacity      = 0

    dynamic "instance_type_configs" {
      for_each = var.primary_instance_types
      content {
        instance_type = instance_type_configs.value
      }
    }

    launch_specifications {
      on_demand_specification {
        allocation_strategy = "lowest-price"
      }
    }
  }

  core_instance_fleet {
    name                      = "core-on-demand"
    target_on_demand_capacity = var.core_on_demand_units
    target_spot_capacity      = 0

    dynamic "instance_type_configs" {
      for_each = var.core_instance_types
      content {
        instance_type     = instance_type_configs.value
        weighted_capacity = 1

        ebs_config {
          size                 = var.ebs_volume_size_gb
          type                 = "gp3"
          volumes_per_instance = 1
        }
      }
    }

    launch_specifications {
      on_demand_specification {
        allocation_strategy = "lowest-price"
      }
    }
  }

  auto_termination_policy {
    idle_timeout = var.idle_timeout_seconds
  }

  dynamic "step" {
    for_each = var.steps
    content {
      name              = step.value.name
      action_on_failure = step.value.action_on_failure

      hadoop_jar_step {
        jar  = step.value.jar
        args = step.value.args
      }
    }
  }

  tags = local.tags

  lifecycle {
    # Managed scaling resizes the core fleet; steps submitted later by the tooling are not drift.
    ignore_changes = [core_instance_fleet[0].target_on_demand_capacity, step]
  }

  depends_on = [
    aws_iam_role_policy_attachment.service,
    aws_iam_role_policy.service,
    aws_iam_role_policy.instance,
  ]
}

################################################################################
# Task fleet: spot across several instance types
################################################################################

resource "aws_emr_instance_fleet" "task" {
  cluster_id                = aws_emr_cluster.this.id
  name                      = "task-spot"
  target_on_demand_capacity = 0
  target_spot_capacity      = var.task_spot_units

  dynamic "instance_type_configs" {
    for_each = var.task_instance_types
    content {
      instance_type                              = instance_type_configs.value
      weighted_capacity                          = 1
      bid_price_as_percentage_of_on_demand_price = 100

      ebs_config {
        size                 = var.ebs_volume_size_gb
        type                 = "gp3"
        volumes_per_instance = 1
      }
    }
  }

  launch_specifications {
    spot_specification {
      allocation_strategy      = "price-capacity-optimized"
      timeout_action           = var.spot_timeout_action
      timeout_duration_minutes = var.spot_timeout_minutes
    }
    on_demand_specification {
      allocation_strategy = "lowest-price"
    }
  }

  lifecycle {
    ignore_changes = [target_spot_capacity, target_on_demand_capacity]
  }
}

################################################################################
# Managed scaling with an on-demand cap
################################################################################

resource "aws_emr_managed_scaling_policy" "this" {
  count = var.managed_scaling.enabled ? 1 : 0

  cluster_id = aws_emr_cluster.this.id

  compute_limits {
    unit_type                       = "InstanceFleetUnits"
    minimum_capacity_units          = var.managed_scaling.minimum_capacity_units
    maximum_capacity_units          = var.managed_scaling.maximum_capacity_units
    maximum_ondemand_capacity_units = var.managed_scaling.maximum_on_demand_capacity_units
    maximum_core_capacity_units     = var.managed_scaling.maximum_core_capacity_units
  }
}

locals {
  # Delta's S3DynamoDBLogStore reads and writes commit entries of the log store table; it
  # also describes it at start-up (it would create it if missing: not granted, Terraform
  # creates it).
  delta_log_statements = var.delta_log_table_arn == "" ? [] : [{
    Sid      = "DeltaLogStoreTable"
    Effect   = "Allow"
    Action   = ["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"]
    Resource = var.delta_log_table_arn
  }]
}
