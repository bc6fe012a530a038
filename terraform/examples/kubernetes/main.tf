provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_eks_cluster_auth" "this" {
  name = var.cluster_name
}

data "aws_iam_openid_connect_provider" "this" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.this.token
  load_config_file       = false
}

provider "helm" {
  kubernetes {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.this.token
    load_config_file       = false
  }
}

module "storage" {
  source = "../../modules/lakehouse-storage"

  name_prefix = var.name_prefix
}

module "spark" {
  source = "../../modules/spark-kubernetes"

  cluster_name         = var.cluster_name
  name                 = "${var.name_prefix}-spark"
  namespace            = var.namespace
  service_account_name = var.service_account
  oidc_provider_arn    = data.aws_iam_openid_connect_provider.this.arn
  oidc_issuer_url      = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
  subnet_ids           = var.private_subnet_ids

  data_bucket      = module.storage.data_bucket
  artifacts_bucket = module.storage.artifacts_bucket
  logs_bucket      = module.storage.logs_bucket
  kms_key_arn      = module.storage.kms_key_arn

  delta_log_table_arn = module.storage.delta_log_table_arn
  emr_on_eks          = var.emr_on_eks
}
