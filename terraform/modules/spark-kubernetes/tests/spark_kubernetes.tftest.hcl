# Unit tests with mocked AWS, Kubernetes and Helm providers: no cluster, no credentials.
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
  mock_resource "aws_iam_role" {
    defaults = {
      arn = "arn:aws:iam::123456789012:role/lakehouse-spark-irsa"
    }
  }
  # The provider validates launch template ids (lt-...) even with mocked values.
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
  cluster_name      = "lakehouse"
  oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789"
  oidc_issuer_url   = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789"
  subnet_ids        = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
  data_bucket       = "acme-data-123456789012"
  artifacts_bucket  = "acme-artifacts-123456789012"
  logs_bucket       = "acme-logs-123456789012"
  kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
}

run "executor_nodes_are_tainted_spot" {
  command = apply

  assert {
    condition     = aws_eks_node_group.executor.capacity_type == "SPOT"
    error_message = "Executors must run on spot capacity."
  }

  assert {
    condition     = aws_eks_node_group.executor.labels["lakehouse/capacity"] == "spot"
    error_message = "Executor nodes must carry lakehouse/capacity=spot."
  }

  assert {
    condition     = [for t in aws_eks_node_group.executor.taint : "${t.key}=${t.value}:${t.effect}"] == ["lakehouse/capacity=spot:NO_SCHEDULE"]
    error_message = "Executor nodes must be tainted lakehouse/capacity=spot:NoSchedule and nothing else."
  }

  assert {
    condition     = length(aws_eks_node_group.executor.instance_types) >= 3
    error_message = "Spot executors must be diversified over at least three instance types."
  }
}

run "driver_nodes_are_untainted_on_demand" {
  command = apply

  assert {
    condition     = aws_eks_node_group.driver.capacity_type == "ON_DEMAND"
    error_message = "Drivers must run on on-demand capacity."
  }

  assert {
    condition     = aws_eks_node_group.driver.labels["lakehouse/capacity"] == "on-demand" && length(aws_eks_node_group.driver.taint) == 0
    error_message = "Driver nodes must be labelled lakehouse/capacity=on-demand and carry no taint."
  }
}

run "outputs_match_the_node_groups" {
  command = apply

  assert {
    condition     = output.executor_node_selector == { "lakehouse/capacity" = "spot" } && output.driver_node_selector == { "lakehouse/capacity" = "on-demand" }
    error_message = "Node selectors must follow the lakehouse/capacity convention."
  }

  assert {
    condition = alltrue([for k, v in output.executor_node_selector : aws_eks_node_group.executor.labels[k] == v]) && alltrue([
      for k, v in output.driver_node_selector : aws_eks_node_group.driver.labels[k] == v
    ])
    error_message = "Node selectors must select the labels actually set on the node groups."
  }

  assert {
    condition = (
      output.executor_toleration.key == one(aws_eks_node_group.executor.taint).key &&
      output.executor_toleration.value == one(aws_eks_node_group.executor.taint).value &&
      output.executor_toleration.effect == "NoSchedule" && output.executor_toleration.operator == "Equal"
    )
    error_message = "The executor toleration must tolerate exactly the spot taint."
  }
}

run "irsa_binds_role_to_the_service_account" {
  command = apply

  assert {
    condition     = kubernetes_service_account.spark.metadata[0].annotations["eks.amazonaws.com/role-arn"] == aws_iam_role.spark.arn
    error_message = "The service account must be annotated with the IRSA role."
  }

  assert {
    condition = (
      jsondecode(aws_iam_role.spark.assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789:sub"] == "system:serviceaccount:spark-jobs:spark" &&
      jsondecode(aws_iam_role.spark.assume_role_policy).Statement[0].Action == "sts:AssumeRoleWithWebIdentity"
    )
    error_message = "Only the spark-jobs/spark service account may assume the IRSA role."
  }

  assert {
    condition = alltrue(flatten([
      for s in jsondecode(aws_iam_role_policy.spark.policy).Statement : [for r in flatten([s.Resource]) : r != "*"]
    ]))
    error_message = "The IRSA role must not grant access to all resources."
  }
}

run "operator_chart_is_pinned_and_scoped" {
  command = apply

  variables {
    namespace = "etl"
  }

  assert {
    condition     = helm_release.spark_operator.version == "2.1.1" && helm_release.spark_operator.chart == "spark-operator"
    error_message = "The spark-operator chart version must be pinned."
  }

  assert {
    condition     = yamldecode(helm_release.spark_operator.values[0]).spark.jobNamespaces == ["etl"]
    error_message = "The operator must only watch the Spark job namespace."
  }

  assert {
    condition     = yamldecode(helm_release.spark_operator.values[0]).controller.nodeSelector == { "lakehouse/capacity" = "on-demand" }
    error_message = "The operator must run on on-demand nodes."
  }
}

run "nodes_enforce_imdsv2" {
  command = apply

  assert {
    condition     = aws_launch_template.node.metadata_options[0].http_tokens == "required" && aws_launch_template.node.metadata_options[0].http_put_response_hop_limit == 1
    error_message = "Nodes must require IMDSv2 with hop limit 1 so pods use IRSA, not the node role."
  }

  assert {
    condition     = aws_launch_template.node.block_device_mappings[0].ebs[0].encrypted == "true"
    error_message = "Node volumes must be encrypted."
  }
}

run "rejects_system_namespace" {
  command = plan

  variables {
    namespace = "kube-system"
  }

  expect_failures = [var.namespace]
}

run "rejects_undiversified_spot_executors" {
  command = plan

  variables {
    executor_node_group = { instance_types = ["r6i.2xlarge"] }
  }

  expect_failures = [var.executor_node_group]
}

run "rejects_unpinned_chart_version" {
  command = plan

  variables {
    spark_operator_chart_version = "~> 2.1"
  }

  expect_failures = [var.spark_operator_chart_version]
}

run "emr_on_eks_is_off_by_default" {
  command = apply

  assert {
    condition     = length(aws_emrcontainers_virtual_cluster.this) == 0 && length(aws_iam_role.emr_job) == 0
    error_message = "No EMR on EKS resources unless emr_on_eks is set."
  }

  assert {
    condition     = output.eks_virtual_cluster_id == "" && output.eks_execution_role_arn == ""
    error_message = "The EMR on EKS outputs are empty when it is off."
  }
}

run "emr_on_eks_gets_a_virtual_cluster_and_an_irsa_job_role" {
  command = apply

  variables {
    emr_on_eks = true
  }

  assert {
    condition = (
      aws_emrcontainers_virtual_cluster.this[0].container_provider[0].id == "lakehouse" &&
      aws_emrcontainers_virtual_cluster.this[0].container_provider[0].info[0].eks_info[0].namespace == "spark-jobs"
    )
    error_message = "The virtual cluster must sit on the EKS cluster's Spark namespace."
  }

  assert {
    condition = (
      jsondecode(aws_iam_role.emr_job[0].assume_role_policy).Statement[0].Condition.StringLike["oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789:sub"] == "system:serviceaccount:spark-jobs:emr-containers-sa-*-*-123456789012-*" &&
      jsondecode(aws_iam_role.emr_job[0].assume_role_policy).Statement[0].Condition.StringEquals["oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789:aud"] == "sts.amazonaws.com"
    )
    error_message = "The job role must trust only EMR on EKS job service accounts of this namespace and account."
  }

  assert {
    condition     = aws_iam_role_policy.emr_job[0].policy == aws_iam_role_policy.spark.policy
    error_message = "The job role gets exactly the Spark role's bucket and key access."
  }

  assert {
    condition     = kubernetes_role_binding.emr_containers[0].subject[0].name == "emr-containers"
    error_message = "EMR on EKS acts as the Kubernetes user emr-containers."
  }
}

run "no_dynamodb_access_without_a_log_store_table" {
  command = apply

  assert {
    condition     = !contains([for st in jsondecode(aws_iam_role_policy.spark.policy).Statement : st.Sid], "DeltaLogStoreTable")
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
      for st in jsondecode(aws_iam_role_policy.spark.policy).Statement : st if st.Sid == "DeltaLogStoreTable"
      ]).Resource == "arn:aws:dynamodb:eu-west-1:123456789012:table/acme-lake-delta-log" && toset(one([
        for st in jsondecode(aws_iam_role_policy.spark.policy).Statement : st if st.Sid == "DeltaLogStoreTable"
    ]).Action) == toset(["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"])
    error_message = "The role may describe, get, put and query the log store table, and nothing else in DynamoDB."
  }
}
