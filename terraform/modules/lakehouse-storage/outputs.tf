output "data_bucket" {
  description = "Name of the data bucket (Delta tables)."
  value       = aws_s3_bucket.this["data"].bucket
}

output "artifacts_bucket" {
  description = "Name of the artifacts bucket (job wheels, entry points, configs)."
  value       = aws_s3_bucket.this["artifacts"].bucket
}

output "logs_bucket" {
  description = "Name of the logs bucket (EMR logs, Spark event logs)."
  value       = aws_s3_bucket.this["logs"].bucket
}

output "access_logs_bucket" {
  description = "Name of the bucket receiving S3 server access logs of the other buckets."
  value       = aws_s3_bucket.access_logs.bucket
}

output "bucket_arns" {
  description = "ARNs of the data, artifacts and logs buckets, keyed by purpose."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "kms_key_arn" {
  description = "ARN of the customer-managed KMS key encrypting the buckets."
  value       = aws_kms_key.this.arn
}

output "kms_key_id" {
  description = "ID of the customer-managed KMS key."
  value       = aws_kms_key.this.key_id
}

output "kms_alias_name" {
  description = "Alias of the customer-managed KMS key."
  value       = aws_kms_alias.this.name
}

output "delta_log_table" {
  description = "DynamoDB table of Delta's S3 log store (spark.s3_log_store.dynamodb_table)."
  value       = aws_dynamodb_table.delta_log.name
}

output "delta_log_table_arn" {
  description = "ARN of the Delta log store table, for the IAM policies of the Spark roles."
  value       = aws_dynamodb_table.delta_log.arn
}
