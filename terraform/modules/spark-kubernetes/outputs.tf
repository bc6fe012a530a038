output "namespace" {
  description = "Namespace the SparkApplications run in."
  value       = kubernetes_namespace.spark.metadata[0].name
}

output "service_account" {
  description = "Service account of the Spark driver/executors (annotated with the IRSA role)."
  value       = kubernetes_service_account.spark.metadata[0].name
}

output "spark_role_arn" {
  description = "ARN of the IAM role the Spark service account assumes (IRSA)."
  value       = aws_iam_role.spark.arn
}

output "node_role_arn" {
  description = "ARN of the IAM role of the Spark node groups."
  value       = aws_iam_role.node.arn
}

output "driver_node_selector" {
  description = "nodeSelector for Spark drivers: the on-demand node group."
  value       = local.driver_node_selector
}

output "executor_node_selector" {
  description = "nodeSelector for Spark executors: the spot node group."
  value       = local.executor_node_selector
}

output "executor_toleration" {
  description = "Toleration Spark executors need for the spot node group taint (Kubernetes spelling of the effect)."
  value       = local.executor_toleration
}

output "node_group_names" {
  description = "Names of the driver (on-demand) and executor (spot) node groups."
  value = {
    driver   = aws_eks_node_group.driver.node_group_name
    executor = aws_eks_node_group.executor.node_group_name
  }
}

output "spark_operator_chart_version" {
  description = "Deployed spark-operator chart version."
  value       = helm_release.spark_operator.version
}

output "eks_virtual_cluster_id" {
  description = "EMR on EKS virtual cluster id (submit.emr.eks_virtual_cluster_id); empty unless emr_on_eks."
  value       = var.emr_on_eks ? aws_emrcontainers_virtual_cluster.this[0].id : ""
}

output "eks_execution_role_arn" {
  description = "EMR on EKS job execution role (submit.emr.eks_execution_role_arn); empty unless emr_on_eks."
  value       = var.emr_on_eks ? aws_iam_role.emr_job[0].arn : ""
}
