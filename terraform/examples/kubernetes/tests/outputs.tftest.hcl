# The example's outputs are read by conf/env/kubernetes.yaml: names and shapes must not drift.
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
  mock_data "aws_eks_cluster" {
    defaults = {
      endpoint              = "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
      certificate_authority = [{ data = "Y2VydGlmaWNhdGU=" }]
      identity              = [{ oidc = [{ issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789" }] }]
    }
  }
  mock_data "aws_iam_openid_connect_provider" {
    defaults = {
      arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789"
    }
  }
  mock_resource "aws_dynamodb_table" {
    defaults = {
      arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/acme-lake-delta-log"
    }
  }
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    }
  }
  mock_resource "aws_launch_template" {
    defaults = {
      id             = "lt-0123456789abcdef0"
      latest_version = 1
    }
  }
}

mock_provider "kubernetes" {}
mock_provider "helm" {}

variables {
  name_prefix        = "acme-lake"
  cluster_name       = "acme-eks"
  private_subnet_ids = ["subnet-0123456789abcdef0"]
}

run "outputs_follow_the_submit_tooling_contract" {
  command = apply

  assert {
    condition     = output.namespace == "spark-jobs" && output.service_account == "spark"
    error_message = "namespace and service_account must be the defaults the tooling expects."
  }

  assert {
    condition     = output.driver_node_selector == { "lakehouse/capacity" = "on-demand" }
    error_message = "driver_node_selector must be {lakehouse/capacity = on-demand}."
  }

  assert {
    condition     = output.executor_node_selector == { "lakehouse/capacity" = "spot" }
    error_message = "executor_node_selector must be {lakehouse/capacity = spot}."
  }

  assert {
    condition = (
      output.executor_toleration.key == "lakehouse/capacity" &&
      output.executor_toleration.value == "spot" &&
      output.executor_toleration.effect == "NoSchedule"
    )
    error_message = "executor_toleration must be lakehouse/capacity=spot:NoSchedule."
  }

  assert {
    condition = (
      output.data_bucket == "acme-lake-data-123456789012" &&
      output.artifacts_bucket == "acme-lake-artifacts-123456789012" &&
      output.logs_bucket == "acme-lake-logs-123456789012" &&
      output.region == "eu-west-1" && output.spark_role_arn != "" &&
      output.api_server == "https://ABCDEF.gr7.eu-west-1.eks.amazonaws.com"
    )
    error_message = "Bucket, region, role and API server outputs must be passed through."
  }

  assert {
    condition     = output.delta_log_table == "acme-lake-delta-log"
    error_message = "delta_log_table must be the storage module's log store table (TF_delta_log_table)."
  }
}
