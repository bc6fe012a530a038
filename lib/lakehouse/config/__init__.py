"""Configuration: YAML files -> ``${VAR}`` substitution -> validation -> frozen typed objects.

:mod:`lakehouse.config.loader` holds the stages, :mod:`lakehouse.config.models` the
pydantic models each stage validates against, :mod:`lakehouse.config.data_root` the
up-front check that the data root is usable.
"""

from lakehouse.config.cluster import AllocationError, ClusterSpec, NodeGroup
from lakehouse.config.data_root import DataRootError, check_data_root
from lakehouse.config.loader import ConfigError, default_conf_dir, job_config_model, load_config
from lakehouse.config.models import (
    AqeProfile,
    Expectation,
    FreshnessCheck,
    Identifier,
    JobSettings,
    RowCountBounds,
    Settings,
    SubmitSettings,
    TableQuality,
    TableSettings,
    parse_byte_string,
    parse_duration,
)

__all__ = [
    "AllocationError",
    "AqeProfile",
    "ClusterSpec",
    "ConfigError",
    "DataRootError",
    "Expectation",
    "FreshnessCheck",
    "Identifier",
    "JobSettings",
    "NodeGroup",
    "RowCountBounds",
    "Settings",
    "SubmitSettings",
    "TableQuality",
    "TableSettings",
    "check_data_root",
    "default_conf_dir",
    "job_config_model",
    "load_config",
    "parse_byte_string",
    "parse_duration",
]
