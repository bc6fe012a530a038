output "cluster_id" {
  description = "EMR cluster (job flow) id, e.g. j-XXXXXXXXXXXX."
  value       = aws_emr_cluster.this.id
}

output "cluster_arn" {
  description = "EMR cluster ARN."
  value       = aws_emr_cluster.this.arn
}

output "cluster_name" {
  description = "EMR cluster name."
  value       = aws_emr_cluster.this.name
}

output "release_label" {
  description = "EMR release label of the cluster."
  value       = aws_emr_cluster.this.release_label
}

output "log_uri" {
  description = "S3 URI EMR writes cluster and step logs to (s3://<logs bucket>/<log_prefix>)."
  value       = local.log_uri
}

output "service_role_arn" {
  description = "ARN of the EMR service role."
  value       = aws_iam_role.service.arn
}

output "instance_role_arn" {
  description = "ARN of the EC2 instance role of the cluster nodes."
  value       = aws_iam_role.instance.arn
}

output "instance_profile_arn" {
  description = "ARN of the EC2 instance profile of the cluster nodes."
  value       = aws_iam_instance_profile.instance.arn
}

output "security_configuration_name" {
  description = "Name of the EMR security configuration (encryption at rest and in transit, IMDSv2)."
  value       = aws_emr_security_configuration.this.name
}

output "task_instance_fleet_id" {
  description = "Id of the spot task instance fleet."
  value       = aws_emr_instance_fleet.task.id
}

output "security_group_ids" {
  description = "EMR-managed security groups: primary, workers, service_access."
  value = {
    primary        = aws_security_group.primary.id
    workers        = aws_security_group.workers.id
    service_access = aws_security_group.service_access.id
  }
}
