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
  # The provider validates the table's SSE key ARN even with mocked values.
  mock_resource "aws_kms_key" {
    defaults = {
      arn = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    }
  }
}

variables {
  name_prefix = "acme-lake"
}

run "content_buckets_use_sse_kms_with_the_cmk" {
  command = apply

  assert {
    condition     = aws_kms_key.this.enable_key_rotation == true
    error_message = "The customer-managed key must have rotation enabled."
  }

  assert {
    condition = alltrue(flatten([
      for k, c in aws_s3_bucket_server_side_encryption_configuration.this : [
        for r in c.rule : [
          for d in r.apply_server_side_encryption_by_default :
          d.sse_algorithm == "aws:kms" && d.kms_master_key_id == aws_kms_key.this.arn
        ]
      ]
    ]))
    error_message = "data, artifacts and logs buckets must default to SSE-KMS with the module's CMK."
  }

  assert {
    condition     = toset(keys(aws_s3_bucket_server_side_encryption_configuration.this)) == toset(["data", "artifacts", "logs"])
    error_message = "Encryption must be configured for exactly the data, artifacts and logs buckets."
  }

  assert {
    condition     = aws_s3_bucket.this["data"].bucket == "acme-lake-data-123456789012"
    error_message = "Bucket names must be <prefix>-<purpose>-<account id>."
  }
}

run "all_public_access_is_blocked" {
  command = apply

  assert {
    condition = alltrue([
      for b in concat(values(aws_s3_bucket_public_access_block.this), [aws_s3_bucket_public_access_block.access_logs]) :
      b.block_public_acls && b.block_public_policy && b.ignore_public_acls && b.restrict_public_buckets
    ])
    error_message = "Every bucket must block all four kinds of public access."
  }

  assert {
    condition     = length(aws_s3_bucket_public_access_block.this) == 3
    error_message = "Each content bucket needs a public access block."
  }

  assert {
    condition = alltrue([
      for c in concat(values(aws_s3_bucket_ownership_controls.this), [aws_s3_bucket_ownership_controls.access_logs]) :
      alltrue([for r in c.rule : r.object_ownership == "BucketOwnerEnforced"])
    ])
    error_message = "ACLs must be disabled (BucketOwnerEnforced) on every bucket."
  }
}

run "bucket_policies_deny_non_tls_requests" {
  command = apply

  assert {
    condition = alltrue([
      for p in concat([for _, v in aws_s3_bucket_policy.this : v.policy], [aws_s3_bucket_policy.access_logs.policy]) :
      anytrue([
        for s in jsondecode(p).Statement :
        s.Effect == "Deny" && s.Principal == "*" && try(s.Condition.Bool["aws:SecureTransport"], "") == "false"
      ])
    ])
    error_message = "Every bucket policy must deny requests without TLS (aws:SecureTransport = false)."
  }

  assert {
    condition = anytrue([
      for s in jsondecode(aws_s3_bucket_policy.access_logs.policy).Statement :
      try(s.Effect == "Allow" && s.Principal.Service == "logging.s3.amazonaws.com" && s.Condition.StringEquals["aws:SourceAccount"] == "123456789012", false)
    ])
    error_message = "Only this account's S3 server access logging may write to the access-log bucket."
  }
}

run "versioning_lifecycle_and_access_logging" {
  command = apply

  variables {
    noncurrent_version_expiration_days = 45
  }

  assert {
    condition = alltrue([
      for v in values(aws_s3_bucket_versioning.this) : alltrue([for c in v.versioning_configuration : c.status == "Enabled"])
    ])
    error_message = "Versioning must be enabled on content buckets."
  }

  assert {
    condition = alltrue([
      for l in values(aws_s3_bucket_lifecycle_configuration.this) : anytrue([
        for r in l.rule : r.status == "Enabled" && anytrue([for n in r.noncurrent_version_expiration : n.noncurrent_days == 45])
      ])
    ])
    error_message = "Old versions must expire after noncurrent_version_expiration_days."
  }

  assert {
    condition = alltrue([
      for k, l in aws_s3_bucket_logging.this : l.target_bucket == aws_s3_bucket.access_logs.id && l.target_prefix == "${k}/"
    ])
    error_message = "Each content bucket must log access to the access-log bucket under its own prefix."
  }
}

run "delta_log_store_table_has_deltas_key_schema_ttl_pitr_and_the_cmk" {
  command = apply

  assert {
    condition = (
      aws_dynamodb_table.delta_log.hash_key == "tablePath" &&
      aws_dynamodb_table.delta_log.range_key == "fileName" &&
      toset([for a in aws_dynamodb_table.delta_log.attribute : "${a.name}:${a.type}"]) == toset(["tablePath:S", "fileName:S"])
    )
    error_message = "The log store table must be keyed tablePath (hash) / fileName (range), both strings, as S3DynamoDBLogStore expects."
  }

  assert {
    condition     = aws_dynamodb_table.delta_log.ttl[0].attribute_name == "expireTime" && aws_dynamodb_table.delta_log.ttl[0].enabled
    error_message = "Expired log store entries must be removed by TTL on expireTime."
  }

  assert {
    condition = (
      aws_dynamodb_table.delta_log.point_in_time_recovery[0].enabled &&
      aws_dynamodb_table.delta_log.server_side_encryption[0].enabled &&
      aws_dynamodb_table.delta_log.server_side_encryption[0].kms_key_arn == aws_kms_key.this.arn
    )
    error_message = "The log store table needs point-in-time recovery and SSE with the lakehouse key."
  }

  assert {
    condition     = output.delta_log_table == "acme-lake-delta-log" && aws_dynamodb_table.delta_log.deletion_protection_enabled
    error_message = "The table is named <prefix>-delta-log and protected from deletion unless force_destroy."
  }
}

run "rejects_invalid_name_prefix" {
  command = plan

  variables {
    name_prefix = "Acme_Lake"
  }

  expect_failures = [var.name_prefix]
}

run "rejects_short_kms_deletion_window" {
  command = plan

  variables {
    kms_deletion_window_in_days = 3
  }

  expect_failures = [var.kms_deletion_window_in_days]
}
