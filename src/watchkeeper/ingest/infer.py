"""A config guessed from a sample of a model's logged events (``watchkeeper init --from``).

Each role is found by the column's name and by its values (a score is a float within
[0, 1] named like a probability; a status a few strings such as ok and error), and the
reason is written beside it in the YAML. Features get no range, nullable or values
constraints: those quarantine rows, so they are for the user to add. The rules are the
example config's (config/rules.py), without those whose inputs the schema lacks.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from watchkeeper.config.models import NAME_PATTERN
from watchkeeper.config.rules import RuleInputs, default_alerting, flow_item
from watchkeeper.errors import InputError
from watchkeeper.ingest.readers import open_source

SAMPLE_ROWS = 200_000  # enough to judge a column; a larger file is read no further
MAX_SEGMENT_VALUES = 20

EVENT_ID = ("event_id", "request_id", "prediction_id", "id", "uuid", "event_uuid", "*_id")
TIMESTAMP = ("event_time", "timestamp", "ts", "time", "event_ts", "created_at", "datetime")
LABEL = ("label", "target", "y", "actual", "truth", "ground_truth", "is_fraud", "outcome")
LABEL_TIMESTAMP = ("label_timestamp", "label_time", "label_ts", "labelled_at", "label_*")
SCORE = ("score", "probability", "proba", "prob", "p_*", "*_score", "*_proba", "*_probability")
PREDICTION = ("prediction", "pred", "predicted*", "decision", "*_prediction", "*_pred", "yhat")
LATENCY = ("latency*", "*_latency", "*_ms", "duration*", "response_time*", "elapsed*")
STATUS = ("status", "*_status", "state", "result", "outcome*")
STATUS_VALUES = frozenset(("ok", "error", "timeout", "success", "failed", "failure", "fail"))
MODEL_VERSION = ("model_version", "version", "model_ver", "modelversion")
SENSITIVE: tuple[str, ...] = ("age_band", "age_group", "age_bucket", "gender", "sex", "race")
SENSITIVE += ("ethnicity", "religion", "disability", "marital_status")
# Slices that describe the traffic (segments only) or are common inputs too (both).
SEGMENTS: tuple[str, ...] = (
    "region",
    "device*",
    "platform",
    "user_type",
    "customer_type",
)
SEGMENTS += ("segment", "os", "browser", "cohort", "user_segment")
INPUT_SEGMENTS = ("city", "market", "state", "language", "currency", "channel", "plan", "tier")


@dataclass(frozen=True)
class Found:
    """A role, the column that plays it, and why it was chosen."""

    role: str
    column: str
    reason: str


@dataclass
class Inferred:
    """The config's YAML text, the roles found, and what was not found (one line each)."""

    yaml: str
    found: list[Found] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


@dataclass
class _Column:
    name: str
    kind: str  # datetime, bool, int, float, string
    values: pd.Series  # typed, without nulls
    rows: int

    @property
    def distinct(self) -> int:
        return int(self.values.nunique())

    @property
    def unique(self) -> bool:
        return len(self.values) == self.rows and self.distinct == self.rows

    def between(self, low: float, high: float) -> bool:
        return bool(len(self.values)) and low <= self.values.min() and self.values.max() <= high


def infer_config(
    source: Any,
    *,
    model: str | None = None,
    label: str | None = None,
    outcomes: Sequence[str] = (),
) -> str:
    """The YAML text of a complete config for the events in ``source`` (a pandas
    DataFrame, or a Parquet, CSV or JSON Lines file), with the default rules; ``outcomes``
    names the business outcomes the model's events lead to (their rules come with them)."""
    return infer(source, model=model, label=label, outcomes=outcomes).yaml


def infer(
    source: Any,
    *,
    model: str | None = None,
    label: str | None = None,
    outcomes: Sequence[str] = (),
) -> Inferred:
    """As ``infer_config``, with what was found and what was not."""
    for name in outcomes:
        if not re.match(NAME_PATTERN, name):
            raise InputError(
                f"outcome name {name!r}: use lowercase letters, digits and underscores"
            )
    if model is not None and not re.match(NAME_PATTERN, model):
        raise InputError(f"model name {model!r}: use lowercase letters, digits and underscores")
    frame, name = _sample(source)
    columns = {c: _typed(c, frame[c]) for c in frame.columns}
    return _Inference(columns, model or _model_name(name), label, tuple(outcomes)).run()


def _sample(source: Any) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source.head(SAMPLE_ROWS), "model"
    opened = open_source(source)
    batches: list[pa.RecordBatch] = []
    rows = 0
    for batch in opened.batches:
        batches.append(batch)
        rows += batch.num_rows
        if rows >= SAMPLE_ROWS:
            break
    if not rows:
        raise InputError(f"{opened.name}: no rows to infer a config from")
    table = pa.Table.from_batches(batches).slice(0, SAMPLE_ROWS)
    stem = Path(str(source)).name.split(".")[0] if isinstance(source, str | Path) else "model"
    return table.to_pandas(), stem


def _model_name(stem: str) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")
    name = name if name and name[0].isalpha() else f"model_{name}".rstrip("_")
    return name[:63] if re.match(NAME_PATTERN, name[:63]) else "model"


def _typed(name: str, series: pd.Series) -> _Column:
    """The column's values with their kind; text that reads as numbers or true/false is
    taken as such (CSV files are read as text)."""
    rows = len(series)
    values = series.dropna()
    if pd.api.types.is_datetime64_any_dtype(series):
        return _Column(name, "datetime", values, rows)
    if pd.api.types.is_bool_dtype(series) or (
        len(values) and values.map(lambda v: isinstance(v, bool)).all()
    ):
        return _Column(name, "bool", values.astype(bool), rows)
    if pd.api.types.is_numeric_dtype(series):
        integral = pd.api.types.is_integer_dtype(series)
        return _Column(name, "int" if integral else "float", values.astype(float), rows)
    text = values.astype(str)
    lower = text.str.strip().str.lower()
    if len(lower) and lower.isin(("true", "false")).all():
        return _Column(name, "bool", lower == "true", rows)
    numbers = pd.to_numeric(text, errors="coerce")
    if len(text) and numbers.notna().all():
        integral = not text.str.contains(r"[.eE]", regex=True).any()
        return _Column(name, "int" if integral else "float", numbers.astype(float), rows)
    return _Column(name, "string", text, rows)


def _max_delay(event: _Column, label: _Column) -> tuple[str, str] | None:
    """How long labels take at most, from the sample: its 99th percentile delay with a
    fifth more, in whole hours or days (after it a window's performance is final)."""
    start = pd.to_datetime(event.values, utc=True, errors="coerce")
    known = pd.to_datetime(label.values, utc=True, errors="coerce")
    delays = (known - start.reindex(known.index)).dropna()
    delays = delays[delays >= pd.Timedelta(0)]
    if len(delays) < 20:
        return None
    seconds = delays.dt.total_seconds().to_numpy()
    hours = float(np.quantile(seconds, 0.99)) / 3600 * 1.2
    text = f"{max(1, math.ceil(hours))}h" if hours < 24 else f"{math.ceil(hours / 24)}d"
    return text, f"the sample's labels took up to {seconds.max() / 3600:,.0f} h"


def named_as(name: str, patterns: Sequence[str]) -> int | None:
    """The rank of the first pattern the (lowercased) name matches, or None."""
    low = name.lower()
    return next((i for i, p in enumerate(patterns) if fnmatch.fnmatchcase(low, p)), None)


def _looked(patterns: Sequence[str]) -> str:
    return ", ".join(patterns)


class _Inference:
    def __init__(
        self,
        columns: dict[str, _Column],
        model: str,
        label: str | None,
        outcomes: tuple[str, ...] = (),
    ) -> None:
        self.columns = columns
        self.outcomes = outcomes
        self.model = model
        self.label_arg = label
        self.free = dict(columns)  # the columns no role has taken yet
        self.found: list[Found] = []
        self.missing: list[str] = []

    def take(self, role: str, column: _Column, reason: str) -> str:
        self.free.pop(column.name, None)
        self.found.append(Found(role, column.name, reason))
        return column.name

    def by_name(self, patterns: Sequence[str], test: Any = lambda c: True) -> _Column | None:
        ranked = [(named_as(c.name, patterns), c) for c in self.free.values()]
        fitting = [(r, c) for r, c in ranked if r is not None and test(c)]
        return min(fitting, key=lambda rc: rc[0])[1] if fitting else None

    def run(self) -> Inferred:
        event_id = self.event_id()
        timestamp = self.timestamp()
        label, label_ts = self.label()
        score = self.score()
        prediction = self.prediction()
        task, task_reason = self.task(label, score, prediction)
        if task == "regression":
            self.missing = [m for m in self.missing if not m.startswith("no score column")]
        if task == "regression" and prediction is None:
            prediction = self.regression_prediction(label)
        if task == "regression" and score is not None:  # a regression model has no score
            self.free[score.name] = score
            self.found = [f for f in self.found if f.role != "score"]
            score = None
        if task == "binary_classification" and score is None and prediction is None:
            raise InputError(
                "no score or prediction column found: looked for a float within [0, 1] named "
                f"{_looked(SCORE)}, or 0/1 values named {_looked(PREDICTION)}"
            )
        if task == "regression" and prediction is None:
            raise InputError(
                f"no prediction column found for a regression model: looked for numbers named "
                f"{_looked(PREDICTION)}, or a numeric column close to the label's values"
            )
        latency = self.latency()
        status = self.status()
        version = self.model_version()
        sensitive = self.sensitive()
        segments = self.segments()
        metadata = self.metadata()
        features = self.features()
        threshold = self.threshold(score, prediction) if task == "binary_classification" else None
        inputs = RuleInputs(
            task=task,
            features=tuple(name for name, _, _ in features),
            score=score.name if score is not None else None,
            prediction=prediction.name if prediction is not None else None,
            latency=latency is not None,
            status=status is not None,
            model_version=version is not None,
            segments=bool(segments),
            sensitive=bool(sensitive),
            outcomes=bool(self.outcomes),
        )
        alerting = default_alerting(inputs)
        self.missing += alerting.notes
        reasons = {(f.role, f.column): f.reason for f in self.found}

        def why(role: str, column: str | None) -> str:
            return reasons.get((role, column or ""), "")

        lines = [
            "# watchkeeper.yaml, written by `watchkeeper init --from` from a sample of the events.",
            "# Each role was guessed from the column's name and values; the reason is beside it.",
            "# Check them, then `watchkeeper reference set` and `watchkeeper ingest events`.",
            "",
            "engine:",
            _line(2, "path: watchkeeper.duckdb", "an embedded DuckDB file beside this config"),
            "",
            "models:",
            _line(2, f"- name: {self.model}", "lowercase letters, digits, underscores"),
            _line(4, f"task: {task}", task_reason),
            _line(4, "owner: model", "the team that answers for this model"),
            _line(4, 'version: "1"', "used when events carry no model_version column"),
        ]
        if threshold is not None:
            lines.append(_line(4, f"threshold: {threshold[0]:g}", threshold[1]))
        lines += [
            "    columns:",
            _line(6, f"event_id: {flow_item(event_id)}", why("event_id", event_id)),
            _line(6, f"timestamp: {flow_item(timestamp)}", why("timestamp", timestamp)),
            "      # Features carry no range, nullable or values constraints: a row that breaks",
            "      # one is quarantined, so add them only where you know them to hold.",
            "      features:" + ("" if features else " []"),
        ]
        lines += [
            _line(8, f"- {{name: {flow_item(name)}, kind: {kind}}}", reason)
            for name, kind, reason in features
        ]
        for role, col in (("score", score), ("prediction", prediction)):
            if col is not None:
                lines.append(_line(6, f"{role}: {flow_item(col.name)}", why(role, col.name)))
        for role, key, names in (
            ("segment", "segments", segments),
            ("sensitive", "sensitive", sensitive),
        ):
            if names:
                lines.append(f"      {key}:")
                lines += [_line(8, f"- {flow_item(n)}", why(role, n)) for n in names]
        for role, col in (("latency", latency), ("status", status), ("model_version", version)):
            if col is not None:
                lines.append(_line(6, f"{role}: {flow_item(col.name)}", why(role, col.name)))
        if metadata:
            lines.append(_line(6, "metadata:", "travels with every event"))
            lines += [_line(8, f"- {flow_item(n)}", why("metadata", n)) for n in metadata]
        if label is not None:
            lines += [
                "    labels:",
                _line(6, f"column: {flow_item(label.name)}", why("label", label.name)),
            ]
            if label_ts is not None:
                lines.append(
                    _line(
                        6, f"timestamp: {flow_item(label_ts.name)}", "when the truth became known"
                    )
                )
            share = len(label.values) / label.rows if label.rows else 1.0
            if share < 0.995:
                coverage = max(0.05, int(share * 20) / 20)
                lines.append(
                    _line(
                        6,
                        f"expected_coverage: {coverage:g}",
                        f"{share:.0%} of the rows are labelled",
                    )
                )
            delay = _max_delay(self.columns[timestamp], label_ts) if label_ts is not None else None
            if delay is not None:
                lines.append(_line(6, f"max_delay: {delay[0]}", delay[1]))
        if self.outcomes:
            lines.append(_line(4, "outcomes:", "business results the events lead to"))
            lines += [f"      - name: {flow_item(n)}" for n in self.outcomes]
        lines += [
            "    monitoring:",
            _line(6, "window: 1d", "data and model metrics per day; service rules, hourly"),
            "",
            alerting.text,
        ]
        return Inferred("\n".join(lines), self.found, self.missing)

    # -- the roles, in the order they are taken ------------------------------------------

    def event_id(self) -> str:
        col = self.by_name(EVENT_ID, lambda c: c.kind in ("string", "int") and c.unique)
        if col is None:
            raise InputError(
                "no event id column: looked for a column of unique strings or integers, "
                f"without nulls, named {_looked(EVENT_ID)}"
            )
        return self.take("event_id", col, f"{col.kind} values, all {col.rows:,} distinct")

    def timestamp(self) -> str:
        dated = [c for c in self.free.values() if c.kind == "datetime"]
        dated = [c for c in dated if named_as(c.name, LABEL_TIMESTAMP) is None]
        if dated:
            col = min(dated, key=lambda c: (named_as(c.name, TIMESTAMP) is None, c.name))
            return self.take("timestamp", col, "a datetime column")
        named = self.by_name(TIMESTAMP, _parses_as_time)
        if named is None:
            raise InputError(
                "no timestamp column: looked for a datetime column, or one named "
                f"{_looked(TIMESTAMP)} whose values read as times"
            )
        return self.take("timestamp", named, "named like a time, its values read as times")

    def label(self) -> tuple[_Column | None, _Column | None]:
        if self.label_arg is not None:
            if self.label_arg not in self.free:
                raise InputError(f"no column {self.label_arg!r} (given as the label) in the data")
            col: _Column | None = self.free[self.label_arg]
            reason = "given with --label"
        else:
            col = self.by_name(LABEL, lambda c: c.kind in ("int", "float", "bool"))
            reason = "named like a label"
        if col is None:
            self.missing.append(
                f"no label column (looked for {_looked(LABEL)}): labels arrive in their own "
                "files, with the default column names label and label_timestamp"
            )
            return None, None
        self.take("label", col, f"{reason}, {_values(col)}")
        ts = self.by_name(LABEL_TIMESTAMP, lambda c: c.kind == "datetime" or _parses_as_time(c))
        if ts is not None:
            self.take("label_timestamp", ts, "named like the label's time")
        return col, ts

    def score(self) -> _Column | None:
        col = self.by_name(SCORE, lambda c: c.kind == "float" and c.between(0, 1))
        if col is None:
            self.missing.append(
                f"no score column (looked for floats in [0, 1] named {_looked(SCORE)})"
            )
            return None
        self.take("score", col, "floats within [0, 1], named like a probability")
        return col

    def prediction(self) -> _Column | None:
        col = self.by_name(PREDICTION, lambda c: c.kind in ("int", "float", "bool"))
        if col is None:
            return None
        kind = "0/1 values" if _binary(col) else f"{col.kind} values"
        self.take("prediction", col, f"{kind}, named like a prediction")
        return col

    def regression_prediction(self, label: _Column | None) -> _Column | None:
        """The numeric column closest to a continuous label, if any is close."""
        if label is None:
            return None
        spread = float(label.values.std()) or 1.0
        best: tuple[float, _Column] | None = None
        for c in self.free.values():
            if c.kind not in ("int", "float"):
                continue
            paired = pd.concat([c.values, label.values], axis=1, join="inner").dropna()
            if len(paired) < 10:
                continue
            gap = float((paired.iloc[:, 0] - paired.iloc[:, 1]).abs().mean()) / spread
            if gap < 1.0 and (best is None or gap < best[0]):
                best = (gap, c)
        if best is None:
            return None
        reason = f"numbers closest to the label's (mean gap {best[0]:.2f} of its spread)"
        self.take("prediction", best[1], reason)
        return best[1]

    def task(
        self, label: _Column | None, score: _Column | None, prediction: _Column | None
    ) -> tuple[str, str]:
        if label is not None and _binary(label):
            return "binary_classification", f"the label column {label.name} is 0/1"
        if score is not None:
            return "binary_classification", f"a score within [0, 1] ({score.name})"
        if label is not None and label.kind in ("int", "float"):
            return "regression", f"the label column {label.name} is continuous"
        if prediction is not None and not _binary(prediction):
            return "regression", f"the prediction {prediction.name} is continuous"
        return "binary_classification", "the default (no continuous label or prediction)"

    def latency(self) -> _Column | None:
        col = self.by_name(LATENCY, lambda c: c.kind in ("int", "float") and c.between(0, 1e12))
        if col is None:
            self.missing.append(f"no latency column (looked for {_looked(LATENCY)})")
            return None
        self.take("latency", col, "non-negative numbers named like a latency (read as ms)")
        return col

    def status(self) -> _Column | None:
        def fits(c: _Column) -> bool:
            if c.kind != "string" or c.distinct > MAX_SEGMENT_VALUES:
                return False
            return bool(set(c.values.str.lower().unique()) & STATUS_VALUES)

        named = self.by_name(STATUS, fits)
        col = named or next((c for c in self.free.values() if fits(c)), None)
        if col is None:
            self.missing.append(
                "no status column (looked for a few strings such as ok, error, timeout)"
            )
            return None
        values = sorted(col.values.unique())
        if "ok" not in values:
            self.missing.append(
                f"{col.name} looks like a status ({', '.join(values[:6])}) but has no 'ok': "
                "every status but ok counts as an error, so it is left as metadata; write "
                "ok for served requests to monitor the error rate"
            )
            return None
        self.take("status", col, f"a few strings: {', '.join(values[:6])}")
        return col

    def model_version(self) -> _Column | None:
        col = self.by_name(MODEL_VERSION, lambda c: c.distinct <= MAX_SEGMENT_VALUES)
        if col is None:
            self.missing.append(
                "no model_version column: every event is version 1 (the config's version)"
            )
            return None
        self.take("model_version", col, f"named like a version, {_values(col)}")
        return col

    def sensitive(self) -> list[str]:
        found = [
            self.take("sensitive", c, f"a protected attribute, {_values(c)}")
            for c in list(self.free.values())
            if named_as(c.name, SENSITIVE) is not None and _few(c)
        ]
        if not found:
            self.missing.append(f"no sensitive column (looked for {_looked(SENSITIVE)})")
        return found

    def segments(self) -> list[str]:
        found = [
            self.take("segment", c, f"named like a slice of traffic, {_values(c)}")
            for c in list(self.free.values())
            if named_as(c.name, SEGMENTS) is not None and _few(c)
        ]
        for c in self.free.values():  # kept free: they are features too
            if named_as(c.name, INPUT_SEGMENTS) is not None and _few(c):
                self.found.append(Found("segment", c.name, f"also a feature, {_values(c)}"))
                found.append(c.name)
        if not found:
            self.missing.append(
                "no segment column (looked for at most 20 strings named "
                f"{_looked(SEGMENTS + INPUT_SEGMENTS)})"
            )
        return found

    def metadata(self) -> list[str]:
        out = []
        for c in list(self.free.values()):
            if c.kind == "datetime":
                self.free.pop(c.name)
                self.missing.append(f"{c.name}: a second datetime column, not monitored")
            elif c.name.lower().endswith("version"):
                out.append(self.take("metadata", c, f"a version of something else, {_values(c)}"))
            elif c.kind == "string" and (
                named_as(c.name, ("*_id", "id_*", "*uuid*")) is not None
                or c.distinct > max(200, 0.05 * c.rows)
            ):
                what = "an id" if "id" in c.name.lower() else "free text"
                out.append(self.take("metadata", c, f"{what}: {c.distinct:,} distinct values"))
            elif not len(c.values):
                self.free.pop(c.name)
                self.missing.append(f"{c.name}: always empty, not monitored")
        return out

    def features(self) -> list[tuple[str, str, str]]:
        out = []
        for c in list(self.free.values()):
            kind = {"bool": "boolean", "string": "categorical"}.get(c.kind, "numeric")
            if c.kind == "int" and c.distinct <= 2 and set(c.values.unique()) <= {0.0, 1.0}:
                kind = "boolean"
            reason = f"{c.kind} values, {c.distinct:,} distinct"
            out.append((self.take("feature", c, f"{kind}: {reason}"), kind, reason))
        return out

    def threshold(self, score: _Column | None, prediction: _Column | None) -> tuple[float, str]:
        """The cut between the scores predicted 0 and those predicted 1, when one exists."""
        if score is None or prediction is None or not _binary(prediction):
            return 0.5, "the default decision threshold"
        paired = pd.concat([score.values, prediction.values.astype(float)], axis=1).dropna()
        low = paired.iloc[:, 0][paired.iloc[:, 1] == 0].max()
        high = paired.iloc[:, 0][paired.iloc[:, 1] == 1].min()
        if pd.isna(low) or pd.isna(high) or not low < high:
            return 0.5, "the default (the predictions are not a cut of the scores)"
        for digits in range(1, 7):
            cut = -(-float(low) * 10**digits // 1) / 10**digits  # low rounded up
            if low < cut <= high:
                break
        else:
            cut = float(high)
        return cut, f"{prediction.name} is 1 exactly where {score.name} >= {cut:g}"


def _line(indent: int, text: str, comment: str = "") -> str:
    """A YAML line with its comment at column 36 (or just after the text)."""
    head = " " * indent + text
    return f"{head.ljust(35)} # {comment}" if comment else head


def _parses_as_time(c: _Column) -> bool:
    if c.kind != "string" or not len(c.values):
        return False
    parsed = pd.to_datetime(c.values.head(1000), errors="coerce", utc=True, format="mixed")
    return bool(parsed.notna().all())


def _binary(c: _Column) -> bool:
    return c.kind == "bool" or (c.kind in ("int", "float") and set(c.values.unique()) <= {0, 1})


def _few(c: _Column) -> bool:
    return c.kind in ("string", "bool", "int") and 1 <= c.distinct <= MAX_SEGMENT_VALUES


def _values(c: _Column) -> str:
    if c.kind in ("string", "bool") and c.distinct <= 6:
        shown = ", ".join(str(v) for v in sorted(c.values.astype(str).unique()))
        return f"values {shown}"
    return f"{c.kind}, {c.distinct:,} distinct values"


__all__ = ["Found", "Inferred", "infer", "infer_config"]
