provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

module "storage" {
  source = "../../modules/lakehouse-storage"

  name_prefix = var.name_prefix
}

module "emr" {
  source = "../../modules/emr"

  name          = "${var.name_prefix}-emr"
  release_label = var.release_label
  vpc_id        = var.vpc_id
  subnet_ids    = var.private_subnet_ids

  data_bucket         = module.storage.data_bucket
  artifacts_bucket    = module.storage.artifacts_bucket
  logs_bucket         = module.storage.logs_bucket
  kms_key_arn         = module.storage.kms_key_arn
  delta_log_table_arn = module.storage.delta_log_table_arn

  in_transit_tls_certificates_s3_object = "s3://${module.storage.artifacts_bucket}/${var.tls_certificates_key}"

  task_spot_units      = var.task_spot_units
  idle_timeout_seconds = var.idle_timeout_seconds
  managed_scaling = {
    maximum_capacity_units           = var.max_capacity_units
    maximum_on_demand_capacity_units = var.max_on_demand_capacity_units
  }
}
