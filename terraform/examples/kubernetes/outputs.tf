# These names are the contract with conf/env/kubernetes.yaml of the submit tooling: do not rename.

output "namespace" {
  description = "Namespace the SparkApplications are created in."
  value       = module.spark.namespace
}

output "service_account" {
  description = "Service account of the Spark driver and executors (IRSA)."
  value       = module.spark.service_account
}

output "spark_role_arn" {
  description = "IAM role assumed by the service account."
  value       = module.spark.spark_role_arn
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
  description = "Logs bucket (Spark event logs)."
  value       = module.storage.logs_bucket
}

output "driver_node_selector" {
  description = "nodeSelector for drivers: {\"lakehouse/capacity\" = \"on-demand\"}."
  value       = module.spark.driver_node_selector
}

output "executor_node_selector" {
  description = "nodeSelector for executors: {\"lakehouse/capacity\" = \"spot\"}."
  value       = module.spark.executor_node_selector
}

output "executor_toleration" {
  description = "Toleration for executors: key lakehouse/capacity, value spot, effect NoSchedule."
  value       = module.spark.executor_toleration
}

output "region" {
  description = "AWS region of the deployment."
  value       = var.region
}

output "api_server" {
  description = "Kubernetes API server of the EKS cluster (spark-submit --master k8s://<this>)."
  value       = data.aws_eks_cluster.this.endpoint
}

output "eks_virtual_cluster_id" {
  description = "EMR on EKS virtual cluster (TF_eks_virtual_cluster_id for lakehouse submit emr-eks); empty unless emr_on_eks."
  value       = module.spark.eks_virtual_cluster_id
}

output "eks_execution_role_arn" {
  description = "EMR on EKS job execution role (TF_eks_execution_role_arn); empty unless emr_on_eks."
  value       = module.spark.eks_execution_role_arn
}

output "delta_log_table" {
  description = "DynamoDB table of Delta's S3 log store (TF_delta_log_table -> spark.s3_log_store.dynamodb_table)."
  value       = module.storage.delta_log_table
}
