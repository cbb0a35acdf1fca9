"""The configuration's frozen models (what watchkeeper.yaml holds once it is valid), the
duration types they use, and the names and constants other modules rely on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

from watchkeeper.errors import UnknownModelError
from watchkeeper.windows import format_duration, parse_duration

CONFIG_FILENAME = "watchkeeper.yaml"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"

Task = Literal["binary_classification", "multiclass_classification", "regression", "ranking"]
FeatureKind = Literal["numeric", "categorical", "boolean"]

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero, such as 1m or 1h")
    return value


# A window, an interval or a timeout: zero would divide by zero or tick back to back.
PositiveDuration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    AfterValidator(_positive),
    PlainSerializer(format_duration, return_type=str),
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EngineConfig(_Frozen):
    """Where events are stored. Default: a DuckDB file beside the config."""

    path: str | None = None
    url: str | None = None
    # Where the events and labels tables are, if not in the store: an Ibis connection URL.
    events_url: str | None = None
    # DuckDB only: how much memory its buffer pool may hold (it spills to disk past that).
    memory_limit: str | None = Field(
        default="256MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
    )
    # DuckDB only: the buffer pool during a monitoring run (joins of events and labels).
    run_memory_limit: str | None = Field(
        default="1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$"
    )
    threads: int | None = Field(default=None, ge=1)


class DriftConfig(_Frozen):
    """How drift is decided: an effect size AND a significance test must both agree."""

    effect: str | None = None  # a distance method key, e.g. wasserstein, psi, jensen_shannon
    threshold: float | None = Field(default=None, gt=0)  # default: the method's own
    test: str | None = None  # a test method key (ks, chi2); none: the effect alone decides
    alpha: float = Field(default=0.05, gt=0, lt=1)  # after Benjamini-Hochberg


class FeatureConfig(_Frozen):
    name: str = Field(min_length=1)
    kind: FeatureKind
    nullable: bool = True
    range: tuple[float, float] | None = None
    values: tuple[str, ...] | None = None
    drift: DriftConfig | None = None  # overrides the monitoring default for this feature


def _switch(value: Any) -> Any:
    """``multivariate: false`` turns every multivariate method off; ``true`` keeps the defaults."""
    if value is False:
        return {"reconstruction": False}
    if value is True:
        return {}
    return value


class MultivariateConfig(_Frozen):
    """Drift of how the features move together, judged on the whole traffic of a window
    (on for models with two features or more)."""

    reconstruction: bool = True  # PCA reconstruction error against the reference's
    variance_share: float = Field(default=0.65, gt=0, lt=1)  # of the components kept
    # A window is drifted only when its error moved at least this share from the reference's
    # (besides being beyond the reference's spread at the window's size).
    min_change: float = Field(default=0.03, ge=0)


class MonitoringConfig(_Frozen):
    window: PositiveDuration = timedelta(hours=1)
    min_rows: int = Field(default=100, ge=1)  # fewer rows: drift is insufficient_data
    min_labels: int = Field(default=100, ge=1)  # fewer labelled events: performance is too
    ranking_k: int = Field(default=10, ge=1)  # the cut-off of precision@k and NDCG@k
    weak_slices: bool = True  # search single columns and pairs for slices that do worse
    # The columns slices are made of (default: segments, sensitive attributes, then features,
    # the first six); pairs of them are searched too, so the cost grows as the square.
    slice_columns: tuple[str, ...] | None = None
    max_segment_values: int = Field(default=20, ge=1)  # per segment column; the rest: (other)
    baseline_windows: int = Field(default=24, ge=1)  # recent windows that set expected volume
    numeric_drift: DriftConfig = DriftConfig(effect="wasserstein", test="ks")
    categorical_drift: DriftConfig = DriftConfig(effect="jensen_shannon", test="chi2")
    # Drift methods stored for every column besides those that decide; "all" for every one.
    drift_methods: tuple[str, ...] | Literal["all"] = ("psi",)
    multivariate: Annotated[MultivariateConfig, BeforeValidator(_switch)] = MultivariateConfig()


class ColumnsConfig(_Frozen):
    """The columns of an event, by role. Each value is a column name in the logged data."""

    event_id: str = "event_id"
    timestamp: str = "timestamp"
    features: tuple[FeatureConfig, ...] = ()
    prediction: str | None = None
    score: str | None = None
    scores: Mapping[str, str] | None = None
    segments: tuple[str, ...] = ()
    sensitive: tuple[str, ...] = ()
    latency: str | None = None
    status: str | None = None
    model_version: str | None = None
    metadata: tuple[str, ...] = ()
    query_id: str | None = None
    item_id: str | None = None
    position: str | None = None


class LabelsConfig(_Frozen):
    """How ground truth arrives: its column names and how long it may take."""

    column: str = "label"
    timestamp: str = "label_timestamp"
    expected_coverage: float = Field(default=1.0, gt=0, le=1)
    max_delay: Duration = timedelta(days=30)


class OutcomeConfig(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""


class OutcomeColumnsConfig(_Frozen):
    name: str = "outcome"
    value: str = "value"
    timestamp: str = "timestamp"


class CostConfig(_Frozen):
    currency: str = Field(default="USD", min_length=1, max_length=8)  # how amounts are stated
    false_positive: float = 0.0
    false_negative: float = 0.0
    true_positive_value: float = 0.0


class TimesConfig(_Frozen):
    """The event times a model accepts: a row stamped outside is quarantined as
    ``timestamp_out_of_range`` (a clock at year 1 or 9999 would otherwise make windows no
    run can compute)."""

    earliest: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    ahead: PositiveDuration = timedelta(days=30)  # how far past the ingest clock a time may lie

    @field_validator("earliest")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ModelConfig(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    task: Task
    owner: str = "model"
    version: str = "1"
    threshold: float | None = Field(default=None, ge=0, le=1)
    classes: tuple[str, ...] | None = None
    columns: ColumnsConfig = ColumnsConfig()
    labels: LabelsConfig = LabelsConfig()
    outcomes: tuple[OutcomeConfig, ...] = ()
    outcome_columns: OutcomeColumnsConfig = OutcomeColumnsConfig()
    costs: CostConfig | None = None
    monitoring: MonitoringConfig = MonitoringConfig()
    times: TimesConfig = TimesConfig()

    @property
    def decision_threshold(self) -> float:
        return 0.5 if self.threshold is None else self.threshold

    def feature(self, name: str) -> FeatureConfig | None:
        return next((f for f in self.columns.features if f.name == name), None)


Severity = Literal["info", "ticket", "page"]
SEVERITIES: tuple[str, ...] = ("info", "ticket", "page")  # in rising order
Windows = Annotated[int | timedelta, BeforeValidator(lambda v: _windows_or_duration(v))]


def _windows_or_duration(value: Any) -> int | timedelta:
    """A count of windows (an integer) or a duration (``6h``)."""
    if isinstance(value, bool):
        raise ValueError("must be a number of windows or a duration such as 6h")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


class BaselineConfig(_Frozen):
    """A rolling baseline: the metric's own recent values (or the same hour of previous days
    or weeks, for seasonal traffic)."""

    windows: int = Field(default=24, ge=2)  # how many past values
    # mean ± k·std; median ± k·1.4826·MAD (robust); or the mean and std of the values
    # without the highest and lowest tenth (robust to a past incident, steady on few values).
    method: Literal["mean_std", "median_mad", "trimmed_mean_std"] = "median_mad"
    k: float = Field(default=3.0, gt=0)  # how many spreads away counts as unusual
    seasonal: PositiveDuration | None = None  # e.g. 1d: compare with the same hour of earlier days
    min_history: int = Field(default=5, ge=2)  # fewer past values: the condition cannot hold
    # Also at least this relative change from the usual level (0.5: half as much again), so
    # a flat series' tiny spread does not turn a trivial change into a page.
    min_change: float | None = Field(default=None, gt=0)


class ConditionConfig(_Frozen):
    """Which metrics (patterns with * and ?), and when one of them is unusual."""

    metric: str = Field(min_length=1)
    column: str | tuple[str, ...] = "*"  # a pattern, or a list of them
    # "*": the whole traffic; "region=*": every region; "region=eu"; "any": every series.
    segment: str = "*"
    # What is compared: the value itself, its change from the reference (the same metric
    # measured on the reference data), or its distance from a rolling baseline.
    against: Literal["value", "reference", "baseline"] = "value"
    change: Literal["relative", "absolute"] = "relative"  # with against: reference
    above: float | None = None
    below: float | None = None
    status: tuple[str, ...] = ()  # the metric's status is one of these (e.g. drifted)
    baseline: BaselineConfig = BaselineConfig()
    direction: Literal["above", "below", "both"] = "both"  # with against: baseline
    min_sample_size: int = Field(default=0, ge=0)
    # Where the metric has an interval: it must exclude what it is compared with, so noise
    # on a small window does not fire.
    interval_excludes: bool = False
    # Hysteresis: once firing, the condition holds until the value crosses this instead.
    resolve_at: float | None = None
    # Skip windows whose labels or outcomes are still arriving (provisional values).
    mature_only: bool = False
    # The metric's own test must be significant: its p-value (q-value after
    # Benjamini-Hochberg where the metric adjusts) below this.
    max_p_value: float | None = Field(default=None, gt=0, le=1)
    # Holds when none of the series it selects is unusual (with at least one measured):
    # "the score moved AND no input drifted".
    absent: bool = False


class EscalationConfig(_Frozen):
    require: int = Field(ge=1)  # conditions holding at once
    severity: Severity = "page"


class RuleConfig(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    models: str = "*"  # a pattern over model names
    severity: Severity = "ticket"
    owner: str = "model"  # data, model, infrastructure, business, or a team
    description: str = ""
    window: PositiveDuration | None = None  # the windows evaluated (default: each model's window)
    conditions: tuple[ConditionConfig, ...] = Field(min_length=1)
    require: Literal["all", "any"] | int = "all"
    escalate: EscalationConfig | None = None
    # What makes one alert: by default each series (one condition) or the model (several);
    # e.g. [segment] for one alert per segment however many of its metrics are off.
    group_by: tuple[Literal["metric", "column", "segment", "version"], ...] | None = None
    # ``for``: the conditions must hold this many consecutive windows (or this long)
    # before the alert fires; ``keep_firing_for``: it stays firing this long after.
    for_: Windows = Field(default=1, alias="for")
    keep_firing_for: Windows = 0

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def required(self) -> int:
        if self.require == "all":
            return len(self.conditions)
        if self.require == "any":
            return 1
        return self.require


class InhibitConfig(_Frozen):
    """While an alert matching ``source`` fires, alerts matching ``target`` with the same
    values of the ``equal`` labels are muted (they are explained by it)."""

    source: Mapping[str, str]
    target: Mapping[str, str]
    equal: tuple[str, ...] = ("model",)


class ReceiverConfig(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    type: Literal["webhook", "slack", "alertmanager", "log"]
    url: str | None = None
    match: Mapping[str, str] = {}  # label patterns an alert must match to be sent here
    timeout: PositiveDuration = timedelta(seconds=10)


class AlertingConfig(_Frozen):
    rules: tuple[RuleConfig, ...] = ()
    inhibit: tuple[InhibitConfig, ...] = ()
    receivers: tuple[ReceiverConfig, ...] = ()
    dashboard_url: str = "http://127.0.0.1:8765"  # link targets in alerts' evidence
    max_attempts: int = Field(default=20, ge=1)  # delivery attempts before giving up
    # Firing alerts are sent to Alertmanager again this often: below its resolve_timeout
    # (5m by default), which resolves an alert a client has stopped sending.
    resend_every: PositiveDuration = timedelta(minutes=1)


Scope = Literal["ingest", "read", "admin"]


class ApiKeyConfig(_Frozen):
    """An API key: its SHA-256 (``watchkeeper keys new`` prints one), or the name of an
    environment variable holding the key itself. The key is never stored in the clear."""

    name: str = Field(pattern=NAME_PATTERN)
    scopes: tuple[Scope, ...] = Field(min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    env: str | None = None


class PrometheusConfig(_Frozen):
    """What /metrics exports: label cardinality is capped."""

    max_segments: int = Field(default=10, ge=0)  # segment values per column, per model
    max_columns: int = Field(default=50, ge=1)  # columns per metric, per model


class ServerConfig(_Frozen):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=1, le=65535)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # A client that stops sending its body for this long is answered 408 and let go, so
    # connections holding a partial request cannot pile up; idle keep-alive connections are
    # closed after idle_timeout.
    body_timeout: PositiveDuration = timedelta(seconds=30)
    idle_timeout: PositiveDuration = timedelta(seconds=5)
    # How often the scheduler runs every model (closed and dirty windows, alerts, delivery);
    # null: never (runs come from the CLI or the API).
    schedule_every: PositiveDuration | None = timedelta(minutes=1)
    group_commit_rows: int = Field(default=200_000, ge=1)  # rows per group commit, at most
    api_keys: tuple[ApiKeyConfig, ...] = ()
    prometheus: PrometheusConfig = PrometheusConfig()


class Config(_Frozen):
    engine: EngineConfig = EngineConfig()
    models: tuple[ModelConfig, ...] = ()
    alerting: AlertingConfig = AlertingConfig()
    server: ServerConfig = ServerConfig()
    # Where the file was read from; relative engine paths resolve against its folder.
    base_dir: Path = Field(default=Path("."), exclude=True)

    def model(self, name: str) -> ModelConfig:
        for m in self.models:
            if m.name == name:
                return m
        raise UnknownModelError(name, [m.name for m in self.models])

    def engine_url(self) -> str:
        """The Ibis connection URL; a DuckDB file beside the config by default."""
        if self.engine.url:
            return self.engine.url
        path = Path(self.engine.path or "watchkeeper.duckdb")
        if not path.is_absolute():
            path = self.base_dir / path
        return f"duckdb://{path.resolve()}"


__all__ = [
    "CONFIG_FILENAME",
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
    "OutcomeColumnsConfig",
    "OutcomeConfig",
    "PositiveDuration",
    "PrometheusConfig",
    "ReceiverConfig",
    "RuleConfig",
    "Scope",
    "ServerConfig",
    "Severity",
    "Task",
    "Windows",
]
