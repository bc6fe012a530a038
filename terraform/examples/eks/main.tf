provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  log_types  = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
}

################################################################################
# KMS key for Kubernetes secrets and the control-plane log group
################################################################################

resource "aws_kms_key" "eks" {
  description             = "${var.cluster_name} EKS secrets envelope encryption and control-plane logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "EnableIamPoliciesOfThisAccount"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsForThisClusterOnly"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnEquals = { "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/eks/${var.cluster_name}/cluster" }
        }
      },
    ]
  })
}

resource "aws_cloudwatch_log_group" "eks" {
  # EKS writes control-plane logs to this fixed name; creating it first sets retention and encryption.
  name              = "/aws/eks/${var.cluster_name}/cluster"
  retention_in_days = var.control_plane_log_retention_days
  kms_key_id        = aws_kms_key.eks.arn
}

################################################################################
# Cluster: private endpoint only, secrets encryption, all control-plane logs
################################################################################

resource "aws_iam_role" "cluster" {
  name = "${var.cluster_name}-eks-cluster"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "eks.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession"]
    }]
  })
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "this" {
  name     = var.cluster_name
  version  = var.kubernetes_version
  role_arn = aws_iam_role.cluster.arn

  vpc_config {
    subnet_ids              = var.private_subnet_ids
    endpoint_private_access = true
    endpoint_public_access  = false
  }

  access_config {
    authentication_mode                         = "API"
    bootstrap_cluster_creator_admin_permissions = true
  }

  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.eks.arn
    }
  }

  enabled_cluster_log_types = local.log_types

  depends_on = [aws_iam_role_policy_attachment.cluster, aws_cloudwatch_log_group.eks]
}

resource "aws_iam_openid_connect_provider" "eks" {
  url            = aws_eks_cluster.this.identity[0].oidc[0].issuer
  client_id_list = ["sts.amazonaws.com"]
}

data "aws_eks_cluster_auth" "this" {
  name = aws_eks_cluster.this.name
}

# Terraform must run from inside the VPC (private endpoint only), e.g. a runner in a private subnet.
provider "kubernetes" {
  host                   = aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(aws_eks_cluster.this.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.this.token
  load_config_file       = false
}

provider "helm" {
  kubernetes {
    host                   = aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(aws_eks_cluster.this.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.this.token
    load_config_file       = false
  }
}

################################################################################
# Lakehouse storage and Spark on the new cluster
################################################################################

module "storage" {
  source = "../../modules/lakehouse-storage"

  name_prefix = var.name_prefix
}

module "spark" {
  source = "../../modules/spark-kubernetes"

  cluster_name         = aws_eks_cluster.this.name
  name                 = "${var.name_prefix}-spark"
  namespace            = var.namespace
  service_account_name = var.service_account
  oidc_provider_arn    = aws_iam_openid_connect_provider.eks.arn
  oidc_issuer_url      = aws_eks_cluster.this.identity[0].oidc[0].issuer
  subnet_ids           = var.private_subnet_ids

  data_bucket      = module.storage.data_bucket
  artifacts_bucket = module.storage.artifacts_bucket
  logs_bucket      = module.storage.logs_bucket
  kms_key_arn      = module.storage.kms_key_arn
}
