"""watchkeeper.yaml: loaded once into frozen models and passed down.

Every mistake is reported with its place in the file (a path such as
``models[0].columns.features[3].kind`` and the line), and all mistakes are reported
together: first the structural ones pydantic finds, then, if the structure is sound, the
cross-field checks (unknown columns, a threshold on a regression model, ...).

``models`` holds the frozen models, ``loading`` reads and validates a file, ``checks``
holds the cross-field checks and ``example`` the config ``watchkeeper init`` writes.
"""

from watchkeeper.config.example import EXAMPLE_CONFIG
from watchkeeper.config.loading import load_config, parse_config
from watchkeeper.config.models import (
    CONFIG_FILENAME,
    NAME_PATTERN,
    SEVERITIES,
    AlertingConfig,
    ApiKeyConfig,
    BaselineConfig,
    ColumnsConfig,
    ConditionConfig,
    Config,
    CostConfig,
    DriftConfig,
    Duration,
    EngineConfig,
    EscalationConfig,
    FeatureConfig,
    FeatureKind,
    InhibitConfig,
    LabelsConfig,
    ModelConfig,
    MonitoringConfig,
    MultivariateConfig,
    OutcomeColumnsConfig,
    OutcomeConfig,
    PrometheusConfig,
    ReceiverConfig,
    RuleConfig,
    Scope,
    ServerConfig,
    Severity,
    Task,
    Windows,
)

__all__ = [
    "CONFIG_FILENAME",
    "EXAMPLE_CONFIG",
    "NAME_PATTERN",
    "SEVERITIES",
    "AlertingConfig",
    "ApiKeyConfig",
    "BaselineConfig",
    "ColumnsConfig",
    "ConditionConfig",
    "Config",
    "CostConfig",
    "DriftConfig",
    "Duration",
    "EngineConfig",
    "EscalationConfig",
    "FeatureConfig",
    "FeatureKind",
    "InhibitConfig",
    "LabelsConfig",
    "ModelConfig",
    "MonitoringConfig",
    "MultivariateConfig",
    "OutcomeColumnsConfig",
    "OutcomeConfig",
    "PrometheusConfig",
    "ReceiverConfig",
    "RuleConfig",
    "Scope",
    "ServerConfig",
    "Severity",
    "Task",
    "Windows",
    "load_config",
    "parse_config",
]
