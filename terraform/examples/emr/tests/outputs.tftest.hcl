# The example's outputs are read by conf/env/emr.yaml: names and shapes must not drift.
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
  mock_data "aws_subnet" {
    defaults = {
      map_public_ip_on_launch = false
      vpc_id                  = "vpc-0123456789abcdef0"
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
}

variables {
  name_prefix        = "acme-lake"
  vpc_id             = "vpc-0123456789abcdef0"
  private_subnet_ids = ["subnet-0123456789abcdef0"]
}

run "outputs_follow_the_submit_tooling_contract" {
  command = apply

  assert {
    condition = (
      output.data_bucket == "acme-lake-data-123456789012" &&
      output.artifacts_bucket == "acme-lake-artifacts-123456789012" &&
      output.logs_bucket == "acme-lake-logs-123456789012"
    )
    error_message = "Bucket outputs must be the storage module's bucket names."
  }

  assert {
    condition     = output.log_uri == "s3://${output.logs_bucket}/emr/"
    error_message = "log_uri must be s3://<logs bucket>/emr/."
  }

  assert {
    condition     = output.release_label == "emr-spark-8.1.0" && output.region == "eu-west-1"
    error_message = "release_label and region must be passed through."
  }

  assert {
    condition     = output.kms_key_arn == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    error_message = "kms_key_arn must be the storage module's key."
  }

  assert {
    condition     = alltrue([for o in [output.cluster_id, output.emr_service_role_arn, output.emr_instance_profile_arn] : o != null && o != ""])
    error_message = "cluster_id and the role outputs must be set."
  }

  assert {
    condition     = output.delta_log_table == "acme-lake-delta-log"
    error_message = "delta_log_table must be the storage module's log store table (TF_delta_log_table)."
  }
}
