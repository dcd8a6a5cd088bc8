"""The project config: one YAML file that describes a Meld deployment.

Assets, the command line, benchmarks and tests all read the config through this
package; it imports only domain code. Paths inside the file are relative to the file
itself, and every error names the file, the source and the key at fault.

Examples:
    ```py
    project = load_project("config/demo.yaml")
    project.sources["crm_contacts"].fields["email"].column
    project.model_spec()  # the model section as plain data for training
    ```
"""

from __future__ import annotations

from linkage.config.base import ConfigError
from linkage.config.loading import (
    DEFAULT_CONFIG_PATH,
    REPO_ROOT,
    config_path_from_env,
    load_project,
)
from linkage.config.model import ComparisonConfig, FixedLevelConfig, ModelConfig
from linkage.config.project import ProjectConfig
from linkage.config.sections import (
    GOLDEN_FIELD_NAMES,
    ClusteringConfig,
    LabelsConfig,
    MasteringConfig,
    TableFileConfig,
    TruthConfig,
)
from linkage.config.sources import FieldQualityRule, QualityConfig, SourceConfig

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "GOLDEN_FIELD_NAMES",
    "REPO_ROOT",
    "ClusteringConfig",
    "ComparisonConfig",
    "ConfigError",
    "FieldQualityRule",
    "FixedLevelConfig",
    "LabelsConfig",
    "MasteringConfig",
    "ModelConfig",
    "ProjectConfig",
    "QualityConfig",
    "SourceConfig",
    "TableFileConfig",
    "TruthConfig",
    "config_path_from_env",
    "load_project",
]
