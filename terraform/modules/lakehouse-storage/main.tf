data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Buckets holding lakehouse content: encrypted with the customer-managed key.
  kms_buckets = {
    data      = { expire_current_days = null }
    artifacts = { expire_current_days = null }
    logs      = { expire_current_days = var.log_expiration_days }
  }

  bucket_names = merge(
    { for k, _ in local.kms_buckets : k => "${var.name_prefix}-${k}-${local.account_id}" },
    { access_logs = "${var.name_prefix}-access-logs-${local.account_id}" },
  )

  # Every bucket: deny any request not made over TLS 1.2+.
  tls_only_statements = {
    for k, name in local.bucket_names : k => [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = ["arn:${local.partition}:s3:::${name}", "arn:${local.partition}:s3:::${name}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyOutdatedTLS"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = ["arn:${local.partition}:s3:::${name}", "arn:${local.partition}:s3:::${name}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ]
  }

  # Content buckets additionally refuse objects written with another key or without SSE-KMS.
  kms_statements = {
    for k, _ in local.kms_buckets : k => [
      {
        Sid       = "DenyNonKmsEncryption"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:PutObject"
        Resource  = "arn:${local.partition}:s3:::${local.bucket_names[k]}/*"
        Condition = {
          StringNotEqualsIfExists = { "s3:x-amz-server-side-encryption" = "aws:kms" }
        }
      },
      {
        Sid       = "DenyWrongKmsKey"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:PutObject"
        Resource  = "arn:${local.partition}:s3:::${local.bucket_names[k]}/*"
        Condition = {
          StringNotEqualsIfExists = { "s3:x-amz-server-side-encryption-aws-kms-key-id" = aws_kms_key.this.arn }
        }
      },
    ]
  }

  # The access-log bucket accepts S3 server access logs from this account's buckets only.
  access_log_delivery_statement = {
    Sid       = "AllowS3ServerAccessLogDelivery"
    Effect    = "Allow"
    Principal = { Service = "logging.s3.amazonaws.com" }
    Action    = "s3:PutObject"
    Resource  = "arn:${local.partition}:s3:::${local.bucket_names.access_logs}/*"
    Condition = {
      StringEquals = { "aws:SourceAccount" = local.account_id }
      ArnLike      = { "aws:SourceArn" = [for k, _ in local.kms_buckets : "arn:${local.partition}:s3:::${local.bucket_names[k]}"] }
    }
  }

  bucket_policies = merge(
    { for k, _ in local.kms_buckets : k => { Version = "2012-10-17", Statement = concat(local.tls_only_statements[k], local.kms_statements[k]) } },
    { access_logs = { Version = "2012-10-17", Statement = concat(local.tls_only_statements.access_logs, [local.access_log_delivery_statement]) } },
  )
}

################################################################################
# Customer-managed KMS key (rotation on)
################################################################################

resource "aws_kms_key" "this" {
  description             = "${var.name_prefix} lakehouse data, artifacts, logs and EMR/EBS encryption"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = var.kms_deletion_window_in_days
  policy                  = jsonencode(local.kms_key_policy)
  tags                    = var.tags
}

locals {
  kms_key_policy = {
    Version = "2012-10-17"
    Statement = concat(
      [{
        # Delegates key use to IAM policies of this account only (standard key policy);
        # the roles created by the emr/spark-kubernetes modules get scoped grants.
        Sid       = "EnableIamPoliciesOfThisAccount"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      }],
      length(var.kms_key_service_principals) == 0 ? [] : [{
        Sid       = "AllowServicePrincipalsOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = var.kms_key_service_principals }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
      }],
    )
  }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}-lakehouse"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Content buckets: data, artifacts, logs (SSE-KMS with the CMK)
################################################################################

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144: Cross-region replication is a DR decision per deployment (doubles storage cost); versioning + lifecycle cover accidental deletes.
  for_each = local.kms_buckets

  bucket        = local.bucket_names[each.key]
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { "lakehouse/purpose" = each.key })
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.this[each.key].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = local.kms_buckets

  bucket                  = aws_s3_bucket.this[each.key].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.this[each.key].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.this[each.key].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.this[each.key].id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"
    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
    expiration {
      expired_object_delete_marker = true
    }
  }

  dynamic "rule" {
    for_each = local.kms_buckets[each.key].expire_current_days == null ? [] : [local.kms_buckets[each.key].expire_current_days]
    content {
      id     = "expire-logs"
      status = "Enabled"
      filter {}

      expiration {
        days = rule.value
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

resource "aws_s3_bucket_logging" "this" {
  for_each = local.kms_buckets

  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "${each.key}/"
}

resource "aws_s3_bucket_notification" "this" {
  for_each = local.kms_buckets

  # Emit object events to EventBridge (no cost without rules) so pipelines can react to new data.
  bucket      = aws_s3_bucket.this[each.key].id
  eventbridge = true
}

resource "aws_s3_bucket_policy" "this" {
  for_each = local.kms_buckets

  bucket = aws_s3_bucket.this[each.key].id
  policy = jsonencode(local.bucket_policies[each.key])

  depends_on = [aws_s3_bucket_public_access_block.this]
}

################################################################################
# Access-log bucket: target of S3 server access logging
################################################################################

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_145: S3 server access log delivery only supports SSE-S3 on the target bucket, not SSE-KMS.
  #checkov:skip=CKV_AWS_18: This is the access-log sink; logging it into itself would recurse and no other target accepts its logs.
  #checkov:skip=CKV_AWS_144: Cross-region replication of access logs is not required; they expire after log_expiration_days.
  bucket        = local.bucket_names.access_logs
  force_destroy = var.force_destroy
  tags          = merge(var.tags, { "lakehouse/purpose" = "access-logs" })
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket                  = aws_s3_bucket.access_logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}

    expiration {
      days = var.log_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_upload_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_notification" "access_logs" {
  bucket      = aws_s3_bucket.access_logs.id
  eventbridge = true
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = jsonencode(local.bucket_policies.access_logs)

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

################################################################################
# Delta's DynamoDB log store table (S3DynamoDBLogStore): safe commits from several
# writing clusters. Key schema as Delta documents it; expired entries removed by TTL.
################################################################################

resource "aws_dynamodb_table" "delta_log" {
  name                        = "${var.name_prefix}-delta-log"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "tablePath"
  range_key                   = "fileName"
  deletion_protection_enabled = !var.force_destroy

  attribute {
    name = "tablePath"
    type = "S"
  }

  attribute {
    name = "fileName"
    type = "S"
  }

  ttl {
    attribute_name = "expireTime"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  tags = var.tags
}
