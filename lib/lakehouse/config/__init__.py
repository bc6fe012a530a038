"""Configuration: YAML files -> ``${VAR}`` substitution -> validation -> frozen typed objects.

:mod:`lakehouse.config.loader` holds the stages, :mod:`lakehouse.config.models` the
pydantic models each stage validates against.
"""

from lakehouse.config.cluster import AllocationError, ClusterSpec, NodeGroup
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
)

__all__ = [
    "AllocationError",
    "AqeProfile",
    "ClusterSpec",
    "ConfigError",
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
    "default_conf_dir",
    "job_config_model",
    "load_config",
    "parse_byte_string",
]
