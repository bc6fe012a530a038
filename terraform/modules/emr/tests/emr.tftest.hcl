# Unit tests with a mocked AWS provider: no credentials, no API calls.
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }
  mock_data "aws_region" {
    defaults = {
      name = "eu-west-1"
    }
  }
  # Private subnets of the VPC below unless a run overrides it.
  mock_data "aws_subnet" {
    defaults = {
      map_public_ip_on_launch = false
      vpc_id                  = "vpc-0123456789abcdef0"
    }
  }
}

variables {
  name                                  = "lakehouse-test"
  vpc_id                                = "vpc-0123456789abcdef0"
  subnet_ids                            = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  data_bucket                           = "acme-data-123456789012"
  artifacts_bucket                      = "acme-artifacts-123456789012"
  logs_bucket                           = "acme-logs-123456789012"
  kms_key_arn                           = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
  in_transit_tls_certificates_s3_object = "s3://acme-artifacts-123456789012/emr/tls/certs.zip"
}

run "task_fleet_is_diversified_spot" {
  command = apply

  assert {
    condition     = aws_emr_instance_fleet.task.target_spot_capacity > 0 && aws_emr_instance_fleet.task.target_on_demand_capacity == 0
    error_message = "The task fleet must launch spot capacity only."
  }

  assert {
    condition     = length(aws_emr_instance_fleet.task.instance_type_configs) >= 3
    error_message = "The task fleet must spread over at least three instance types."
  }

  assert {
    condition = alltrue([
      for l in aws_emr_instance_fleet.task.launch_specifications : alltrue([
        for s in l.spot_specification :
        s.allocation_strategy == "price-capacity-optimized" && s.timeout_action == "SWITCH_TO_ON_DEMAND"
      ]) && length(l.spot_specification) == 1
    ])
    error_message = "Spot must use price-capacity-optimized allocation and switch to on-demand on timeout."
  }
}

run "primary_and_core_are_on_demand" {
  command = apply

  assert {
    condition     = aws_emr_cluster.this.master_instance_fleet[0].target_on_demand_capacity == 1 && aws_emr_cluster.this.master_instance_fleet[0].target_spot_capacity == 0
    error_message = "The primary fleet must be exactly one on-demand node."
  }

  assert {
    condition     = aws_emr_cluster.this.core_instance_fleet[0].target_on_demand_capacity == 2 && aws_emr_cluster.this.core_instance_fleet[0].target_spot_capacity == 0
    error_message = "The core fleet must be on-demand only."
  }
}

run "managed_scaling_caps_on_demand" {
  command = apply

  variables {
    managed_scaling = {
      maximum_capacity_units           = 40
      maximum_on_demand_capacity_units = 6
      maximum_core_capacity_units      = 6
    }
  }

  assert {
    condition = (
      one(aws_emr_managed_scaling_policy.this[0].compute_limits).unit_type == "InstanceFleetUnits" &&
      one(aws_emr_managed_scaling_policy.this[0].compute_limits).maximum_capacity_units == 40 &&
      one(aws_emr_managed_scaling_policy.this[0].compute_limits).maximum_ondemand_capacity_units == 6
    )
    error_message = "Managed scaling must cap on-demand units below the total maximum."
  }
}

run "yarn_delta_and_spark_configuration" {
  command = apply

  assert {
    condition     = [for c in jsondecode(aws_emr_cluster.this.configurations_json) : c.Properties["yarn.node-labels.am.default-node-label-expression"] if c.Classification == "yarn-site"] == ["ON_DEMAND"]
    error_message = "Application masters must be pinned to the ON_DEMAND node label."
  }

  assert {
    condition     = [for c in jsondecode(aws_emr_cluster.this.configurations_json) : c.Properties["delta.enabled"] if c.Classification == "delta-defaults"] == ["true"]
    error_message = "Delta must be enabled through the delta-defaults classification."
  }

  assert {
    condition = [
      for c in jsondecode(aws_emr_cluster.this.configurations_json) :
      [c.Properties["spark.dynamicAllocation.enabled"], c.Properties["spark.decommission.enabled"], c.Properties["spark.storage.decommission.shuffleBlocks.enabled"]]
      if c.Classification == "spark-defaults"
    ] == [["true", "true", "true"]]
    error_message = "spark-defaults must enable dynamic allocation and decommissioning."
  }

  assert {
    condition     = aws_emr_cluster.this.auto_termination_policy[0].idle_timeout == 3600
    error_message = "The cluster must auto-terminate when idle."
  }

  assert {
    condition     = aws_emr_cluster.this.log_uri == "s3://acme-logs-123456789012/emr/" && output.log_uri == "s3://acme-logs-123456789012/emr/"
    error_message = "EMR logs must go to s3://<logs bucket>/emr/."
  }
}

run "spark_defaults_can_be_overridden" {
  command = apply

  variables {
    spark_defaults = { "spark.dynamicAllocation.enabled" = "false", "spark.sql.shuffle.partitions" = "400" }
  }

  assert {
    condition = [
      for c in jsondecode(aws_emr_cluster.this.configurations_json) :
      [c.Properties["spark.dynamicAllocation.enabled"], c.Properties["spark.sql.shuffle.partitions"]]
      if c.Classification == "spark-defaults"
    ] == [["false", "400"]]
    error_message = "var.spark_defaults must override the module's spark-defaults."
  }
}

run "encryption_at_rest_and_in_transit" {
  command = apply

  assert {
    condition = (
      jsondecode(aws_emr_security_configuration.this.configuration).EncryptionConfiguration.EnableAtRestEncryption &&
      jsondecode(aws_emr_security_configuration.this.configuration).EncryptionConfiguration.EnableInTransitEncryption
    )
    error_message = "At-rest and in-transit encryption must both be enabled."
  }

  assert {
    condition = (
      jsondecode(aws_emr_security_configuration.this.configuration).EncryptionConfiguration.AtRestEncryptionConfiguration.S3EncryptionConfiguration.EncryptionMode == "SSE-KMS" &&
      jsondecode(aws_emr_security_configuration.this.configuration).EncryptionConfiguration.AtRestEncryptionConfiguration.LocalDiskEncryptionConfiguration.AwsKmsKey == var.kms_key_arn
    )
    error_message = "S3 and local disks must be encrypted with the customer-managed KMS key."
  }

  assert {
    condition     = aws_emr_cluster.this.security_configuration == aws_emr_security_configuration.this.name
    error_message = "The cluster must use the module's security configuration."
  }
}

run "instance_role_is_scoped_to_lakehouse_buckets" {
  command = apply

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.instance.policy).Statement : [
        for r in flatten([s.Resource]) : r != "*" && !endswith(r, ":::*")
      ]
    ]))
    error_message = "The instance role must not grant access to all resources."
  }

  assert {
    condition = toset(flatten([
      for s in jsondecode(aws_iam_role_policy.instance.policy).Statement : [
        for r in flatten([s.Resource]) : r if startswith(r, "arn:aws:s3:::acme-")
      ]
    ])) == toset(["arn:aws:s3:::acme-data-123456789012", "arn:aws:s3:::acme-artifacts-123456789012", "arn:aws:s3:::acme-logs-123456789012", "arn:aws:s3:::acme-data-123456789012/*", "arn:aws:s3:::acme-artifacts-123456789012/*", "arn:aws:s3:::acme-logs-123456789012/*"])
    error_message = "The instance role may only touch the data, artifacts and logs buckets."
  }
}

run "optional_steps_are_passed_through" {
  command = apply
  # Fresh state: the module ignores step drift on an existing cluster.
  state_key = "with_steps"

  variables {
    steps = [{ name = "smoke", args = ["spark-submit", "--version"] }]
  }

  assert {
    condition     = length(aws_emr_cluster.this.step) == 1 && aws_emr_cluster.this.step[0].action_on_failure == "CONTINUE"
    error_message = "Steps must be added to the cluster with CONTINUE as the default failure action."
  }
}

run "rejects_bad_release_label" {
  command = plan

  variables {
    release_label = "spark-3.5"
  }

  expect_failures = [var.release_label]
}

run "rejects_too_few_spot_instance_types" {
  command = plan

  variables {
    task_instance_types = ["r6i.2xlarge", "r5.2xlarge"]
  }

  expect_failures = [var.task_instance_types]
}

run "rejects_on_demand_cap_below_core_size" {
  command = plan

  variables {
    core_on_demand_units = 5
    managed_scaling      = { maximum_on_demand_capacity_units = 3 }
  }

  expect_failures = [var.managed_scaling]
}

run "rejects_public_subnets" {
  command = plan

  override_data {
    target = data.aws_subnet.selected
    values = {
      map_public_ip_on_launch = true
      vpc_id                  = "vpc-0123456789abcdef0"
    }
  }

  expect_failures = [data.aws_subnet.selected]
}

run "rejects_non_spark_defaults_keys" {
  command = plan

  variables {
    spark_defaults = { "yarn.nodemanager.vmem-check-enabled" = "false" }
  }

  expect_failures = [var.spark_defaults]
}

run "no_dynamodb_access_without_a_log_store_table" {
  command = apply

  assert {
    condition     = !contains([for st in jsondecode(aws_iam_role_policy.instance.policy).Statement : st.Sid], "DeltaLogStoreTable")
    error_message = "Without delta_log_table_arn the role gets no DynamoDB access."
  }
}

run "the_log_store_table_gets_exactly_the_actions_delta_uses" {
  command = apply

  variables {
    delta_log_table_arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/acme-lake-delta-log"
  }

  assert {
    condition = one([
      for st in jsondecode(aws_iam_role_policy.instance.policy).Statement : st if st.Sid == "DeltaLogStoreTable"
      ]).Resource == "arn:aws:dynamodb:eu-west-1:123456789012:table/acme-lake-delta-log" && toset(one([
        for st in jsondecode(aws_iam_role_policy.instance.policy).Statement : st if st.Sid == "DeltaLogStoreTable"
    ]).Action) == toset(["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"])
    error_message = "The role may describe, get, put and query the log store table, and nothing else in DynamoDB."
  }
}
