"""watchkeeper: monitoring for machine-learning models in production."""

from watchkeeper.config import Config, load_config, parse_config
from watchkeeper.errors import (
    ConfigError,
    InputError,
    NoReferenceError,
    SchemaError,
    StoreError,
    UnknownMethodError,
    UnknownModelError,
    WatchkeeperError,
)
from watchkeeper.ingest import IngestResult
from watchkeeper.monitor import DriftReport, RunResult, compare
from watchkeeper.workspace import Workspace, open

__version__ = "0.1.0"

__all__ = [
    "Config",
    "ConfigError",
    "DriftReport",
    "IngestResult",
    "InputError",
    "NoReferenceError",
    "RunResult",
    "SchemaError",
    "StoreError",
    "UnknownMethodError",
    "UnknownModelError",
    "WatchkeeperError",
    "Workspace",
    "__version__",
    "compare",
    "load_config",
    "open",
    "parse_config",
]
