"""watchkeeper.yaml: loaded once into frozen models and passed down.

Every mistake is reported with its place in the file (a path such as
``models[0].columns.features[3].kind`` and the line), and all mistakes are reported
together: first the structural ones pydantic finds, then, if the structure is sound, the
cross-field checks (unknown columns, a threshold on a regression model, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
)

from watchkeeper.errors import ConfigError, ConfigProblem, UnknownModelError
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


class MonitoringConfig(_Frozen):
    window: Duration = timedelta(hours=1)
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
    false_positive: float = 0.0
    false_negative: float = 0.0
    true_positive_value: float = 0.0


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
    seasonal: Duration | None = None  # e.g. 1d: compare with the same hour of earlier days
    min_history: int = Field(default=5, ge=2)  # fewer past values: the condition cannot hold


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


class EscalationConfig(_Frozen):
    require: int = Field(ge=1)  # conditions holding at once
    severity: Severity = "page"


class RuleConfig(_Frozen):
    name: str = Field(pattern=NAME_PATTERN)
    models: str = "*"  # a pattern over model names
    severity: Severity = "ticket"
    owner: str = "model"  # data, model, infrastructure, business, or a team
    description: str = ""
    window: Duration | None = None  # the windows evaluated (default: each model's window)
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
    timeout: Duration = timedelta(seconds=10)


class AlertingConfig(_Frozen):
    rules: tuple[RuleConfig, ...] = ()
    inhibit: tuple[InhibitConfig, ...] = ()
    receivers: tuple[ReceiverConfig, ...] = ()
    dashboard_url: str = "http://127.0.0.1:8765"  # link targets in alerts' evidence
    max_attempts: int = Field(default=20, ge=1)  # delivery attempts before giving up


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
    # How often the scheduler runs every model (closed and dirty windows, alerts, delivery);
    # null: never (runs come from the CLI or the API).
    schedule_every: Duration | None = timedelta(minutes=1)
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


# ---------------------------------------------------------------------------------------
# loading


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError naming every mistake."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read {source}: {exc.strerror}")]) from exc
    return parse_config(text, source=str(source), base_dir=source.resolve().parent)


def parse_config(text: str, source: str = "<config>", base_dir: Path | None = None) -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = str(getattr(exc, "problem", None) or exc)
        raise ConfigError([ConfigProblem("", f"not valid YAML: {problem}", line)], source) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([ConfigProblem("", "the top level must be a mapping")], source)
    data = {**data, "base_dir": base_dir or Path(".")}
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_problem_from_pydantic(err, node) for err in exc.errors()]
        raise ConfigError(problems, source) from None
    problems = [
        ConfigProblem(path, message, _line_of(node, path)) for path, message in _check(config)
    ]
    if problems:
        raise ConfigError(problems, source)
    return config


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problem_from_pydantic(err: Any, node: yaml.Node | None) -> ConfigProblem:
    # Pydantic appends the validator's name (e.g. "function-before[...]") for
    # annotated types; it is not a place in the file.
    loc = [p for p in err["loc"] if not (isinstance(p, str) and "[" in p)]
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        message = f"must be one of {expected}"
    elif kind == "missing":
        message = "is required"
    elif kind == "extra_forbidden":
        message = "is not a known setting"
    elif kind == "string_pattern_mismatch":
        message = "must be lowercase letters, digits and underscores, starting with a letter"
    elif kind in ("value_error", "assertion_error"):
        message = str(ctx.get("error", err["msg"]))
    else:
        message = err["msg"][0].lower() + err["msg"][1:]
    path = _format_loc(loc)
    return ConfigProblem(path, message, _line_of_loc(node, loc))


def _line_of(node: yaml.Node | None, path: str) -> int | None:
    loc: list[int | str] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        loc.append(int(part[1:-1]) if part.startswith("[") else part)
    return _line_of_loc(node, loc)


def _line_of_loc(node: yaml.Node | None, loc: Sequence[int | str]) -> int | None:
    """The 1-based line of the deepest YAML node that ``loc`` reaches."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if getattr(key, "value", None) == part:
                    child = value
                    line = key.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


# ---------------------------------------------------------------------------------------
# cross-field checks: pure, return (path, message) pairs


def _check(config: Config) -> Iterator[tuple[str, str]]:
    if config.engine.path and config.engine.url:
        yield "engine", "give either path or url, not both"
    seen: dict[str, int] = {}
    for i, model in enumerate(config.models):
        where = f"models[{i}]"
        if model.name in seen:
            yield (
                f"{where}.name",
                f"model {model.name!r} is already declared at models[{seen[model.name]}]",
            )
        seen.setdefault(model.name, i)
        yield from _check_model(model, where)
    yield from _check_alerting(config.alerting, [m.name for m in config.models])
    names: set[str] = set()
    for i, key in enumerate(config.server.api_keys):
        at = f"server.api_keys[{i}]"
        if (key.sha256 is None) == (key.env is None):
            yield at, "give exactly one of sha256 (the key's hash) or env (a variable holding it)"
        if key.name in names:
            yield f"{at}.name", f"key {key.name!r} is declared twice"
        names.add(key.name)


def _check_alerting(alerting: AlertingConfig, models: list[str]) -> Iterator[tuple[str, str]]:
    import fnmatch

    names: dict[str, int] = {}
    for i, rule in enumerate(alerting.rules):
        at = f"alerting.rules[{i}]"
        if rule.name in names:
            yield (
                f"{at}.name",
                f"rule {rule.name!r} is already declared at rules[{names[rule.name]}]",
            )
        names.setdefault(rule.name, i)
        if models and not fnmatch.filter(models, rule.models):
            yield f"{at}.models", f"matches no model (models: {', '.join(models)})"
        if isinstance(rule.require, int) and not 1 <= rule.require <= len(rule.conditions):
            yield f"{at}.require", f"must be between 1 and {len(rule.conditions)} (the conditions)"
        if rule.escalate is not None:
            if rule.escalate.require > len(rule.conditions):
                yield f"{at}.escalate.require", f"there are only {len(rule.conditions)} conditions"
            if SEVERITIES.index(rule.escalate.severity) <= SEVERITIES.index(rule.severity):
                yield f"{at}.escalate.severity", f"must be above the rule's {rule.severity}"
        for j, c in enumerate(rule.conditions):
            where = f"{at}.conditions[{j}]"
            tests = (c.above is not None) or (c.below is not None) or bool(c.status)
            if c.against == "baseline":
                if c.status or c.above is not None or c.below is not None:
                    yield (
                        where,
                        "a baseline condition uses direction and baseline.k, "
                        "not above, below or status",
                    )
            elif not tests:
                yield where, "needs above, below or status"
            if c.against == "reference" and c.status:
                yield f"{where}.status", "a status cannot be compared with the reference"
            if c.resolve_at is not None and (c.above is None) == (c.below is None):
                yield f"{where}.resolve_at", "needs exactly one of above or below"
            if c.segment not in ("*", "any") and "=" not in c.segment:
                yield f"{where}.segment", "must be *, any, or COLUMN=VALUE (VALUE may be *)"
    receivers: set[str] = set()
    for i, r in enumerate(alerting.receivers):
        at = f"alerting.receivers[{i}]"
        if r.name in receivers:
            yield f"{at}.name", f"receiver {r.name!r} is declared twice"
        receivers.add(r.name)
        if r.type != "log" and not r.url:
            yield f"{at}.url", f"a {r.type} receiver needs a url"


def _check_model(model: ModelConfig, where: str) -> Iterator[tuple[str, str]]:
    cols = model.columns
    at = f"{where}.columns"
    owned: dict[str, str] = {}

    def claim(name: str | None, path: str) -> Iterator[tuple[str, str]]:
        if name is None:
            return
        if name.startswith("wk_"):
            yield path, "column names starting with wk_ are reserved for watchkeeper"
        elif name in owned:
            yield path, f"column {name!r} is already used by {owned[name]}"
        else:
            owned[name] = path

    yield from claim(cols.event_id, f"{at}.event_id")
    yield from claim(cols.timestamp, f"{at}.timestamp")
    for j, feature in enumerate(cols.features):
        fpath = f"{at}.features[{j}]"
        yield from claim(feature.name, f"{fpath}.name")
        if feature.range is not None:
            if feature.kind != "numeric":
                yield f"{fpath}.range", "only numeric features have a range"
            elif not feature.range[0] < feature.range[1]:
                yield f"{fpath}.range", "must be [low, high] with low < high"
        if feature.values is not None:
            if feature.kind != "categorical":
                yield f"{fpath}.values", "only categorical features have allowed values"
            elif len(set(feature.values)) != len(feature.values):
                yield f"{fpath}.values", "lists a value twice"
            elif not feature.values:
                yield f"{fpath}.values", "must list at least one value"
    single = ("prediction", "score", "latency", "status", "model_version", "query_id", "item_id")
    for role in (*single, "position"):
        yield from claim(getattr(cols, role), f"{at}.{role}")
    if cols.scores:
        for cls, name in cols.scores.items():
            yield from claim(name, f"{at}.scores.{cls}")
    for j, name in enumerate(cols.metadata):
        yield from claim(name, f"{at}.metadata[{j}]")
    # Segments and sensitive attributes may reuse a feature or metadata column.
    reusable = {f.name for f in cols.features} | set(cols.metadata)
    for role in ("segments", "sensitive"):
        names: tuple[str, ...] = getattr(cols, role)
        for j, name in enumerate(names):
            if names.index(name) != j:
                yield f"{at}.{role}[{j}]", f"lists {name!r} twice"
            elif name not in reusable:
                yield from claim(name, f"{at}.{role}[{j}]")

    if model.labels.column in owned:
        yield (
            f"{where}.labels.column",
            (
                f"{model.labels.column!r} is an event column ({owned[model.labels.column]}); "
                "name the label column differently"
            ),
        )
    task = model.task
    if model.threshold is not None and task != "binary_classification":
        yield f"{where}.threshold", "a decision threshold applies only to binary_classification"
    if task == "binary_classification" and not (cols.score or cols.prediction):
        yield at, "a binary_classification model needs a score or a prediction column"
    if task == "multiclass_classification":
        if not model.classes:
            yield f"{where}.classes", "a multiclass_classification model must list its classes"
        elif len(model.classes) < 2:
            yield f"{where}.classes", "must list at least two classes"
        if not (cols.prediction or cols.scores):
            yield at, "a multiclass_classification model needs a prediction or scores columns"
        if cols.scores and model.classes:
            for cls in cols.scores:
                if cls not in model.classes:
                    yield f"{at}.scores.{cls}", f"{cls!r} is not one of the model's classes"
    elif model.classes is not None:
        yield f"{where}.classes", "classes apply only to multiclass_classification"
    if cols.scores and task != "multiclass_classification":
        yield f"{at}.scores", "per-class scores apply only to multiclass_classification"
    if task == "regression" and not cols.prediction:
        yield f"{at}.prediction", "a regression model needs its prediction column"
    if task == "ranking":
        if not cols.query_id:
            yield f"{at}.query_id", "a ranking model needs a query_id column"
        if not (cols.score or cols.position):
            yield at, "a ranking model needs a score or a position column"
    outcome_names = [o.name for o in model.outcomes]
    for j, name in enumerate(outcome_names):
        if outcome_names.index(name) != j:
            yield f"{where}.outcomes[{j}].name", f"outcome {name!r} is declared twice"
    if model.costs is not None and task != "binary_classification":
        yield f"{where}.costs", "a cost matrix applies only to binary_classification"
    mon = f"{where}.monitoring"
    if model.monitoring.window < timedelta(seconds=1):
        yield f"{mon}.window", "must be at least 1s"
    sliceable = {f.name for f in cols.features} | set(cols.segments) | set(cols.sensitive)
    sliceable |= set(cols.metadata)
    for j, name in enumerate(model.monitoring.slice_columns or ()):
        if name not in sliceable:
            yield (
                f"{mon}.slice_columns[{j}]",
                (f"{name!r} is not a feature, segment, sensitive or metadata column"),
            )
    if model.monitoring.drift_methods != "all":
        from watchkeeper.stats.drift import REGISTRY

        for j, key in enumerate(model.monitoring.drift_methods):
            if key not in REGISTRY:
                yield (
                    f"{mon}.drift_methods[{j}]",
                    (f"unknown drift method {key!r}; registered: {', '.join(sorted(REGISTRY))}"),
                )
    yield from _check_drift(model.monitoring.numeric_drift, "numeric", f"{mon}.numeric_drift")
    yield from _check_drift(
        model.monitoring.categorical_drift, "categorical", f"{mon}.categorical_drift"
    )
    for j, feature in enumerate(cols.features):
        if feature.drift is not None:
            kind = "numeric" if feature.kind == "numeric" else "categorical"
            yield from _check_drift(feature.drift, kind, f"{at}.features[{j}].drift")


def _check_drift(drift: DriftConfig, kind: str, where: str) -> Iterator[tuple[str, str]]:
    from watchkeeper.stats.drift import REGISTRY

    for field_name, is_test in (("effect", False), ("test", True)):
        key = getattr(drift, field_name)
        if key is None:
            continue
        fitting = sorted(k for k, m in REGISTRY.items() if kind in m.kinds and m.is_test == is_test)
        if key not in fitting:
            what = "test" if is_test else "distance"
            yield (
                f"{where}.{field_name}",
                (f"{key!r} is not a {what} for {kind} columns; one of {', '.join(fitting)}"),
            )
    if drift.effect is None and drift.test is None:
        yield where, "name an effect, a test, or both"


# ---------------------------------------------------------------------------------------
# the example written by `watchkeeper init`

EXAMPLE_CONFIG = """\
# watchkeeper.yaml: what to monitor and where the data lives.
# Durations are written as a number and a unit: 30s, 15m, 1h, 14d, 2w.

engine:
  # The default store is an embedded DuckDB file beside this config; no server needed.
  path: watchkeeper.duckdb
  # Or any engine Ibis speaks, by URL (give path or url, not both):
  # url: duckdb:///var/lib/watchkeeper/store.duckdb

models:
  - name: fraud                     # lowercase letters, digits, underscores
    task: binary_classification     # binary_classification, multiclass_classification,
                                    # regression or ranking
    owner: risk-ml                  # the team that answers for this model
    version: "1"                    # used when events carry no model_version column
    threshold: 0.5                  # decision threshold on the score (binary only)
    columns:                        # column names in your logged events, by role
      event_id: event_id            # unique per prediction; re-sending it changes nothing
      timestamp: timestamp          # event time (UTC if no zone is given)
      features:
        - name: amount
          kind: numeric             # numeric, categorical or boolean
          range: [0, 50000]         # values outside are quarantined as out_of_range
          nullable: false           # a missing value is quarantined as null_in_required
        - name: merchant_category
          kind: categorical         # without `values` any category is accepted
        - name: country
          kind: categorical
          values: [US, GB, DE, FR, BR, IN]   # closes the set: others are unknown_category
        - name: account_age_days
          kind: numeric
        - name: is_new_user
          kind: boolean
      score: score                  # the model's probability of the positive class
      prediction: prediction        # optional; derived from score >= threshold if absent
      segments: [region, device]    # slices to monitor separately
      sensitive: [age_band]         # protected groups for fairness
      latency: latency_ms           # milliseconds
      status: status                # ok, error, timeout, ...
      model_version: model_version
      metadata: [feature_version]   # travels with every event
    labels:
      column: label                 # 0/1 (or true/false) in label files
      timestamp: label_timestamp    # when the truth became known
      expected_coverage: 0.9        # share of events that eventually get a label
      max_delay: 30d                # after this a window's performance is final
    outcomes:                       # business results, per event or as a time series
      - name: confirmed_fraud
      - name: manual_review
    costs:
      false_positive: 5             # cost of reviewing a legitimate transaction
      false_negative: 120           # cost of missed fraud
      true_positive_value: 100

alerting:
  # Where alerts link to (the dashboard of `watchkeeper serve`).
  dashboard_url: http://127.0.0.1:8765
  # A rule selects metrics (patterns with * and ?) and says when one is unusual: above or
  # below a threshold, changed from the reference (against: reference), or outside a
  # rolling baseline (against: baseline). `for`: consecutive windows (or a duration) before
  # it fires; `keep_firing_for`: how long it stays after. Severity: info, ticket or page.
  # Owner: data, model, infrastructure, business, or a team; receivers route on it.
  rules:
    # -- data -----------------------------------------------------------------------------
    - name: schema_change
      severity: ticket
      owner: data
      description: logged events gained or lost columns
      conditions:
        - {metric: schema_changes, status: [changed]}
    - name: quarantine_spike
      severity: ticket
      owner: data
      description: many more rows than usual were refused at ingestion
      conditions:
        - metric: quarantined_rows
          against: baseline
          direction: above
          baseline: {windows: 24, k: 4, min_history: 6}
    - name: missing_values
      severity: ticket
      owner: data
      description: a feature is missing far more often than in training
      conditions:
        - {metric: missing_rate, against: reference, change: absolute, above: 0.05,
           min_sample_size: 100}
      for: 2
    - name: feature_drift
      severity: ticket
      owner: data
      description: a feature's distribution moved away from the training data
      conditions:
        - metric: drift
          column: [amount, merchant_category, country, account_age_days, is_new_user]
          status: [drifted]
      for: 3                        # each drift test fires on noise 5% of the time
      keep_firing_for: 2
    # -- model ----------------------------------------------------------------------------
    - name: prediction_drift
      severity: ticket
      owner: model
      description: the model's scores moved away from the reference
      conditions:
        - {metric: drift, column: [score, prediction], status: [drifted]}
      for: 3
      keep_firing_for: 2
    - name: performance_drop
      severity: page
      owner: model
      description: ROC AUC fell below the reference's, beyond sampling noise
      conditions:
        - {metric: roc_auc, against: reference, below: -0.05, min_sample_size: 200,
           interval_excludes: true}
      for: 2
    - name: estimated_performance_drop
      severity: ticket
      owner: model
      description: ROC AUC estimated before labels fell below the reference's
      conditions:
        - {metric: estimated_roc_auc, against: reference, below: -0.05, min_sample_size: 500}
      for: 3
    - name: calibration
      severity: ticket
      owner: model
      description: scores no longer match observed fraud rates
      conditions:
        - {metric: expected_calibration_error, against: reference, change: absolute,
           above: 0.03, min_sample_size: 500}
      for: 2
    - name: segment_gap
      severity: ticket
      owner: model
      description: the model does worse in one segment than in the rest
      group_by: [segment]           # one alert per segment, whichever metrics are worse
      conditions:
        - {metric: segment_gap, segment: any, status: [worse]}
      for: 3
      keep_firing_for: 2
    - name: fairness_gap
      severity: ticket
      owner: model
      description: selection rates differ between protected groups
      conditions:
        - {metric: demographic_parity_difference, segment: any, above: 0.1,
           min_sample_size: 500}
      for: 3
    # Drift alone opens a ticket; drift with a calibration slip and a falling KPI pages.
    - name: model_degrading
      severity: ticket
      owner: model
      description: several signals point at the model
      conditions:
        - {metric: drift, column: "*", segment: any, status: [drifted]}
        - {metric: expected_calibration_error, against: reference, change: absolute,
           above: 0.03}
        - metric: outcome_rate
          column: confirmed_fraud
          against: baseline
          direction: below
          baseline: {windows: 14}
          mature_only: true         # outcomes arrive late: judge complete windows
      require: 2
      escalate: {require: 3, severity: page}
      for: 2
    # -- infrastructure -------------------------------------------------------------------
    - name: latency
      severity: page
      owner: infrastructure
      description: the slowest predictions are much slower than usual
      conditions:
        - metric: latency_p99
          against: baseline
          direction: above
          # the same hour of the last 14 days (traffic has a daily cycle)
          baseline: {windows: 14, seasonal: 1d, method: trimmed_mean_std, k: 4, min_history: 7}
      for: 2
    - name: error_rate
      severity: page
      owner: infrastructure
      description: the model service fails requests
      conditions:
        - {metric: error_rate, above: 0.05, min_sample_size: 100}
      for: 2
    - name: traffic_drop
      severity: page
      owner: infrastructure
      description: far fewer predictions than usual
      conditions:
        - {metric: volume_ratio, below: 0.5}
      for: 2
    - name: traffic_surge
      severity: ticket
      owner: infrastructure
      conditions:
        - {metric: volume_ratio, above: 3}
      for: 2
    # -- business -------------------------------------------------------------------------
    - name: business_kpi_drop
      severity: ticket
      owner: business
      description: an outcome the model exists for fell below its usual level
      conditions:
        - metric: outcome_rate
          column: "*"
          against: baseline
          direction: below
          baseline: {windows: 24, method: mean_std, k: 4}
          mature_only: true
      for: 2
  # A page mutes the tickets it explains; an outage mutes the data alerts it causes.
  inhibit:
    - {source: {severity: page}, target: {severity: ticket}, equal: [model, owner]}
    - {source: {owner: infrastructure, severity: page}, target: {owner: data},
       equal: [model]}
  receivers:
    - {name: log, type: log}
    # - {name: oncall, type: alertmanager, url: "http://127.0.0.1:9093",
    #    match: {severity: page}}
    # - {name: data_team, type: slack, url: "https://hooks.slack.com/services/...",
    #    match: {owner: data}}
    # - {name: tickets, type: webhook, url: "https://tickets.example.com/hook"}
"""
