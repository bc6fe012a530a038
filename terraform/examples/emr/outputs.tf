# These names are the contract with conf/env/emr.yaml of the submit tooling: do not rename.

output "cluster_id" {
  description = "EMR cluster id the tooling submits steps to."
  value       = module.emr.cluster_id
}

output "data_bucket" {
  description = "Data bucket (Delta tables)."
  value       = module.storage.data_bucket
}

output "artifacts_bucket" {
  description = "Artifacts bucket the tooling uploads wheels and entry points to."
  value       = module.storage.artifacts_bucket
}

output "logs_bucket" {
  description = "Logs bucket."
  value       = module.storage.logs_bucket
}

output "log_uri" {
  description = "EMR log URI (s3://<logs bucket>/emr/)."
  value       = module.emr.log_uri
}

output "release_label" {
  description = "EMR release label of the cluster."
  value       = module.emr.release_label
}

output "emr_service_role_arn" {
  description = "EMR service role ARN."
  value       = module.emr.service_role_arn
}

output "emr_instance_profile_arn" {
  description = "EC2 instance profile ARN of the cluster nodes."
  value       = module.emr.instance_profile_arn
}

output "kms_key_arn" {
  description = "Customer-managed KMS key of the buckets and the cluster."
  value       = module.storage.kms_key_arn
}

output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "delta_log_table" {
  description = "DynamoDB table of Delta's S3 log store (TF_delta_log_table -> spark.s3_log_store.dynamodb_table)."
  value       = module.storage.delta_log_table
}
