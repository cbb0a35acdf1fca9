"""The metric catalogue: every metric key watchkeeper emits, with what it means.

A metric key is API: it is in YAML rules, the metrics table, Prometheus series and the
dashboard. This module is the one place that says, for each key, its family, unit,
direction (is higher better?), whether it adds up across windows and versions, what it is
computed from, what the row's ``column`` holds, and how it is exported to Prometheus.
Triage, alerts, the exporter, the Grafana and Prometheus-rules exports, the dashboard and the
report read it; nothing else declares metric metadata.

Drift methods' keys (``drift_<method>``) come from the drift registry, so a method added
there is catalogued with its own description; estimated metrics (``estimated_<metric>``)
take their unit and direction from the metric they estimate.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from watchkeeper.errors import UnknownMetricError
from watchkeeper.stats import drift as drift_methods

Direction = Literal["higher_is_better", "lower_is_better", "neither"]
Unit = Literal[
    "ratio",  # a share in [0, 1]
    "score",  # a dimensionless metric (AUC, F1, a distance, a loss)
    "count",
    "ms",
    "seconds",
    "currency",  # the cost matrix's unit of money
    "value",  # the unit of the column itself (a feature's mean, a residual)
    "difference",  # a difference of two values of the named metric
    "times_usual",  # a multiple of the recent usual level
]
TASKS = frozenset({"binary_classification", "multiclass_classification", "regression", "ranking"})


@dataclass(frozen=True)
class PromFamily:
    """A Prometheus metric family of ``/metrics`` (a gauge over the newest window)."""

    name: str
    help: str
    labels: tuple[str, ...]  # "model" first
    unit: Unit


@dataclass(frozen=True)
class Export:
    """How rows of a metric become samples of a Prometheus family.

    ``labels`` maps each label after ``model`` to where its value comes from: ``{column}``,
    ``{segment}`` (``*`` or ``column=value``), ``{metric}``, ``{base}`` (the metric key
    without ``estimated_``), ``{version}`` (the row's model version), or a constant."""

    family: str
    labels: Mapping[str, str]
    value: Literal["value", "drifted"] = "value"  # drifted: 1 when the status is drifted
    whole_traffic: bool = False  # only the whole traffic's rows (no segments)
    no_column: bool = False  # only rows without a column (a class's recall is not exported)


@dataclass(frozen=True)
class Metric:
    """One catalogue entry."""

    key: str
    family: str  # the metric family that emits it (data_quality, drift, service, ...)
    unit: Unit
    direction: Direction
    additive: bool  # adds up across windows and versions (counts, amounts)
    description: str
    computed_from: str
    column: str = ""  # what the row's column holds ("" when none)
    needs_labels: bool = False  # measured on labelled events only
    tasks: frozenset[str] = TASKS  # the model tasks it is emitted for
    estimates: str | None = None  # an estimated metric: the realized key it estimates
    on_reference: bool = False  # the reference holds a value of it (rules compare with it)
    exports: tuple[Export, ...] = ()

    @property
    def lower_is_better(self) -> bool:
        return self.direction == "lower_is_better"


# -- Prometheus families ------------------------------------------------------------------

# name: (help, labels, unit)
_FAMILIES: dict[str, tuple[str, tuple[str, ...], Unit]] = {
    "watchkeeper_drift_score": (
        "Drift of a column from the reference (the deciding effect size), newest window",
        ("model", "column", "segment", "version"),
        "score",
    ),
    "watchkeeper_drift_detected": (
        "1 when the column has drifted (effect and test agree), newest window",
        ("model", "column", "segment", "version"),
        "score",
    ),
    "watchkeeper_data_quality_ratio": (
        "Share of values failing a data-quality check, newest window",
        ("model", "column", "segment", "check"),
        "ratio",
    ),
    "watchkeeper_model_performance": (
        "Model performance, realized from labels or estimated without them, newest window",
        ("model", "metric", "segment", "kind", "version"),
        "score",
    ),
    "watchkeeper_segment_gap": (
        "A segment's performance minus the rest's, newest window",
        ("model", "metric", "segment"),
        "difference",
    ),
    "watchkeeper_fairness_disparity": (
        "Disparity between protected groups, newest window",
        ("model", "metric", "segment"),
        "score",
    ),
    "watchkeeper_label_coverage_ratio": (
        "Share of the newest window's events with a label",
        ("model",),
        "ratio",
    ),
    "watchkeeper_label_lag_seconds": (
        "Delay from an event to its label, newest window with labels",
        ("model", "percentile"),  # not `quantile`: that label is a summary's
        "seconds",
    ),
    "watchkeeper_served_error_ratio": (
        "Share of the served model's requests that failed (status not ok), newest window",
        ("model",),
        "ratio",
    ),
    "watchkeeper_served_events": (
        "Events logged by the served model in the newest window",
        ("model",),
        "count",
    ),
    "watchkeeper_served_volume_ratio": (
        "Events in the newest window over the median of the recent windows",
        ("model",),
        "times_usual",
    ),
    "watchkeeper_outcome_rate": (
        "A business outcome's total value per event in the newest window",
        ("model", "outcome"),
        "value",
    ),
}
PROMETHEUS: dict[str, PromFamily] = {
    name: PromFamily(name, text, labels, unit) for name, (text, labels, unit) in _FAMILIES.items()
}


# -- the entries --------------------------------------------------------------------------

PROFILE = "the window's profile (counts over the reference's bins, moments)"
LABELLED = "the labelled events' counts (score bin × label × prediction, or confusion, sums)"
FAIRNESS_KEYS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
)
_TASK_SETS: Mapping[str, frozenset[str]] = {
    "all": TASKS,
    "binary": frozenset({"binary_classification"}),
    "multiclass": frozenset({"multiclass_classification"}),
    "classifiers": frozenset({"binary_classification", "multiclass_classification"}),
    "regression": frozenset({"regression"}),
    "ranking": frozenset({"ranking"}),
    "labelled": TASKS - {"ranking"},
}
_DIRECTIONS: Mapping[str, Direction] = {
    "up": "higher_is_better",
    "down": "lower_is_better",
    "none": "neither",
}
_COLUMNS = {
    "-": "",
    "column": "the column",
    "latency": "the latency column",
    "class": "a class",
    "bin": "the score bin",
    "metric": "the metric compared",
    "estimate": "the estimated metric",
    "slice": "the slice",
    "rate": "the rate",
    "outcome": "the outcome",
    "reason": "the reason code",
    "item": "the item column",
    "family": "the family",
}
# What each family's metrics are computed from (an entry may say otherwise).
_FROM = {
    "service": PROFILE,
    "data_quality": PROFILE,
    "drift": f"{PROFILE}, against the reference's",
    "multivariate": "the window's rows reconstructed from the reference's principal components",
    "labels": "events and their labels per window",
    "performance": LABELLED,
    "estimation": "the estimate and the labelled counts",
    "proxies": "the score histogram",
    "segments": LABELLED,
    "weak_slices": "the labelled events' losses per slice",
    "fairness": LABELLED,
    "business": "the outcomes in force, or the confusion counts and the cost matrix",
    "arrivals": "the quarantine and the ingestion records, by arrival time",
    "run": "the run",
}

# key | family | unit | direction | adds up | needs labels | tasks | column | description
# (a description goes on over indented lines)
_TABLE = """
row_count | service | count | none | yes | no | all | - | Events in the window.
error_rate | service | ratio | down | no | no | all | - | Share of requests whose status is not ok.
latency_p50 | service | ms | down | no | no | all | latency | Median latency of the served
    predictions.
latency_p90 | service | ms | down | no | no | all | latency | 90th percentile of the latency.
latency_p99 | service | ms | down | no | no | all | latency | 99th percentile of the latency.
volume_ratio | service | times_usual | none | no | no | all | - | Events over the median of the
    recent windows' (the run's own and the stored ones).
missing_rate | data_quality | ratio | down | no | no | all | column | Share of the window's rows
    where the column is null (NaN counts as null).
out_of_range_rate | data_quality | ratio | down | no | no | all | column | Share of the column's
    values outside the reference's range (below its lowest or above its highest fitted edge).
unseen_rate | data_quality | ratio | down | no | no | all | column | Share of the column's values
    that never occur in the reference.
mean | data_quality | value | none | no | no | all | column | Mean of the column's non-missing
    values.
std | data_quality | value | none | no | no | all | column | Standard deviation (population) of the
    column's non-missing values.
drift | drift | score | down | no | no | all | column | The drift decision of a column: the value
    is the deciding effect size (compared with the threshold), the status drifted when the effect
    is large and the test, Benjamini-Hochberg adjusted across the window, is significant.
version_shift | drift | score | down | no | no | all | column | A version's scores (or predictions)
    against the established version's in the same window, during a rollout: the effect
    size, status drifted when the test agrees.
reconstruction_error | multivariate | score | down | no | no | all | - | Mean distance of the
    window's standardised feature values from their reconstruction by the reference's principal
    components (a change in how features move together): drifted when outside the reference's
    band at the window's size and moved at least min_change; the band's top is the threshold.
label_coverage | labels | ratio | up | no | no | all | - | Share of the window's events with a
    label so far (provisional until the labels' maximum delay).
label_lag_p50 | labels | seconds | down | no | yes | all | - | Median delay from an event to its
    label.
label_lag_p90 | labels | seconds | down | no | yes | all | - | 90th percentile of the delay from an
    event to its label.
accuracy | performance | score | up | no | yes | classifiers | - | Share of labelled events
    predicted right.
precision | performance | score | up | no | yes | binary | - | Share of predicted positives that
    are positive.
recall | performance | score | up | no | yes | classifiers | class | Share of positives predicted
    positive (multiclass: per class, the class in the column).
specificity | performance | score | up | no | yes | binary | - | Share of negatives predicted
    negative.
false_positive_rate | performance | score | down | no | yes | binary | - | Share of negatives
    predicted positive.
false_negative_rate | performance | score | down | no | yes | binary | - | Share of positives
    predicted negative.
f1 | performance | score | up | no | yes | binary | - | Harmonic mean of precision and recall.
positive_rate | performance | ratio | none | no | yes | binary | - | Share of labelled events
    predicted positive.
roc_auc | performance | score | up | no | yes | binary | - | Area under the ROC curve, exact
    (from the rank sum of the positives' scores; ties count half).
pr_auc | performance | score | up | no | yes | binary | - | Average precision over the score bins'
    thresholds.
log_loss | performance | score | down | no | yes | classifiers | - | Mean negative log-likelihood
    of the label.
brier | performance | score | down | no | yes | binary | - | Mean squared gap between score and
    label.
expected_calibration_error | performance | score | down | no | yes | binary | - |
    Count-weighted gap between mean score and positive rate over ten score bins.
reliability | performance | ratio | none | no | yes | binary | bin | Positive rate of a score bin
    (the reliability table; the mean score in the detail).
macro_precision | performance | score | up | no | yes | multiclass | - | Mean of the classes'
    precisions.
macro_recall | performance | score | up | no | yes | multiclass | - | Mean of the classes' recalls.
macro_f1 | performance | score | up | no | yes | multiclass | - | Mean of the classes' F1 scores.
weighted_precision | performance | score | up | no | yes | multiclass | - | The classes' precisions
    weighted by their support.
weighted_recall | performance | score | up | no | yes | multiclass | - | The classes' recalls
    weighted by their support.
weighted_f1 | performance | score | up | no | yes | multiclass | - | The classes' F1 scores
    weighted by their support.
mae | performance | value | down | no | yes | regression | - | Mean absolute error of the
    prediction.
rmse | performance | value | down | no | yes | regression | - | Root mean squared error of the
    prediction.
mape | performance | ratio | down | no | yes | regression | - | Mean absolute percentage error (a
    fraction), over labels away from zero.
r2 | performance | score | up | no | yes | regression | - | Coefficient of determination.
mean_error | performance | value | none | no | yes | regression | - | Mean of prediction minus
    label (the bias).
residual_p10 | performance | value | none | no | yes | regression | - | 10th percentile of
    prediction minus label.
residual_p50 | performance | value | none | no | yes | regression | - | Median of prediction minus
    label.
residual_p90 | performance | value | none | no | yes | regression | - | 90th percentile of
    prediction minus label.
ctr | performance | ratio | up | no | yes | ranking | - | Share of shown items with a positive
    label.
precision_at_k | performance | score | up | no | yes | ranking | - | Mean over queries of the hits
    in the top k, over k.
ndcg_at_k | performance | score | up | no | yes | ranking | - | Mean over queries of DCG@k over the
    ideal DCG@k.
mrr | performance | score | up | no | yes | ranking | - | Mean reciprocal rank of the first
    relevant item.
catalogue_coverage | performance | ratio | up | no | no | ranking | item | Distinct items shown
    over the reference's distinct items.
estimation_error | estimation | difference | none | no | yes | labelled | estimate |
    Estimated minus realized value; status missed when the band did not cover the realized value
    (the backtest).
mean_confidence | proxies | ratio | up | no | no | binary | - | Mean of max(p, 1 - p) over the
    scores (at bin centres: within half a bin).
low_confidence_share | proxies | ratio | down | no | no | binary | - | Share of scores in [0.4,
    0.6).
predicted_positive_rate | proxies | ratio | none | no | no | binary | - | Share of events
    predicted positive (the prediction column, else scores at or above the threshold).
segment_gap | segments | difference | none | no | yes | labelled | metric | A segment's metric
    minus the rest's, with a two-sided test (Benjamini-Hochberg across the window); status worse
    when significantly worse.
weak_slice | weak_slices | difference | down | no | yes | labelled | slice | A slice's mean loss
    minus the rest's, significant after Benjamini-Hochberg; column '' is the window's search
    (the worst slice's, 0 when none; status worse when any).
traffic_share | fairness | ratio | none | no | no | all | - | A protected group's share of the
    window's events (the reference's in the detail).
demographic_parity_difference | fairness | difference | down | no | yes | binary | - |
    Largest gap between the groups' selection rates (as fairlearn), with a homogeneity test.
demographic_parity_ratio | fairness | ratio | up | no | yes | binary | - | Smallest over largest of
    the groups' selection rates (as fairlearn).
equalized_odds_difference | fairness | difference | down | no | yes | binary | - |
    The larger of the gaps between the groups' true and false positive rates (as fairlearn).
equalized_odds_ratio | fairness | ratio | up | no | yes | binary | - | The smaller of the ratios of
    the groups' true and false positive rates (as fairlearn).
difference_to_overall | fairness | difference | none | no | yes | binary | rate |
    A group's rate minus the whole traffic's, with a test of the group against the rest.
ratio_to_overall | fairness | ratio | none | no | yes | binary | rate | A group's rate over the
    whole traffic's.
cost | business | currency | down | yes | yes | binary | - | Cost of the decisions' mistakes (the
    cost matrix times the false positives and negatives).
value | business | currency | up | yes | yes | binary | - | Value of the true positives (the cost
    matrix).
net_value | business | currency | up | yes | yes | binary | - | Value minus cost.
outcome_total | business | value | none | yes | no | all | outcome | Sum of a business outcome's
    values in the window.
outcome_rate | business | value | none | no | no | all | outcome | A per-event outcome's total over
    the window's events.
outcome_delay | business | seconds | down | no | no | all | outcome | 99th percentile of the time
    from an event to its outcome's arrival, in the window's complete outcomes (how long after a
    window its outcome rate is complete).
outcome_change | business | times_usual | none | no | no | all | outcome | An outcome rate over the
    median of the recent windows'.
quarantined_rows | arrivals | count | down | yes | no | all | reason | Rows refused at ingestion,
    per window of the time they arrived.
schema_changes | arrivals | count | down | no | no | all | - | Columns missing from or unexpected
    in the inputs that arrived (status changed).
family_error | run | count | down | no | no | all | family | A metric family failed for the window:
    its metrics are missing (the error in the detail) and the run went on.
"""

# Measured on the reference besides the task's performance (reference.values).
_ON_REFERENCE = ("missing_rate", "predicted_positive_rate")

# How metrics are exported to Prometheus (the rest are not).
_DRIFT_LABELS = {"column": "{column}", "segment": "{segment}", "version": "{version}"}
_EXPORTS: Mapping[str, tuple[Export, ...]] = {
    "row_count": (Export("watchkeeper_served_events", {}, whole_traffic=True),),
    "error_rate": (Export("watchkeeper_served_error_ratio", {}, whole_traffic=True),),
    "volume_ratio": (Export("watchkeeper_served_volume_ratio", {}, whole_traffic=True),),
    **{
        key: (
            Export(
                "watchkeeper_data_quality_ratio",
                {"column": "{column}", "segment": "{segment}", "check": check},
            ),
        )
        for key, check in (
            ("missing_rate", "missing"),
            ("out_of_range_rate", "out_of_range"),
            ("unseen_rate", "unseen"),
        )
    },
    "drift": (
        Export("watchkeeper_drift_score", _DRIFT_LABELS),
        Export(
            "watchkeeper_drift_detected",
            _DRIFT_LABELS,
            value="drifted",
        ),
    ),
    "label_coverage": (Export("watchkeeper_label_coverage_ratio", {}, whole_traffic=True),),
    "label_lag_p50": (
        Export("watchkeeper_label_lag_seconds", {"percentile": "50"}, whole_traffic=True),
    ),
    "label_lag_p90": (
        Export("watchkeeper_label_lag_seconds", {"percentile": "90"}, whole_traffic=True),
    ),
    "segment_gap": (
        Export("watchkeeper_segment_gap", {"metric": "{column}", "segment": "{segment}"}),
    ),
    **{
        key: (
            Export(
                "watchkeeper_fairness_disparity", {"metric": "{metric}", "segment": "{segment}"}
            ),
        )
        for key in FAIRNESS_KEYS
    },
    "outcome_rate": (
        Export("watchkeeper_outcome_rate", {"outcome": "{column}"}, whole_traffic=True),
    ),
}
_PERFORMANCE_EXPORT = {"metric": "{base}", "segment": "{segment}"}


def _parse(table: str) -> list[Metric]:
    """The table's entries: one per line, a description continued on indented lines."""
    lines: list[str] = []
    for line in table.strip().splitlines():
        if line.startswith(" "):
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    out = []
    for line in lines:
        key, family, unit, way, adds, labels, tasks, column, text = (
            part.strip() for part in line.split("|", 8)
        )
        exports = _EXPORTS.get(key, ())
        performance = family == "performance" and labels == "yes"
        if performance and not key.startswith("residual"):
            kind = {**_PERFORMANCE_EXPORT, "kind": "realized", "version": "{version}"}
            exports = (Export("watchkeeper_model_performance", kind, no_column=True),)
        out.append(
            Metric(
                key,
                family,
                unit,  # type: ignore[arg-type]
                _DIRECTIONS[way],
                adds == "yes",
                text,
                _FROM[family],
                column=_COLUMNS[column],
                needs_labels=labels == "yes",
                tasks=_TASK_SETS[tasks],
                exports=exports,
                on_reference=key in _ON_REFERENCE
                or (performance and column != "bin" and not key.startswith("residual")),
            )
        )
    return out


def _drift_entries() -> list[Metric]:
    out = []
    for method in drift_methods.REGISTRY.values():
        kinds = " and ".join(sorted(method.kinds))
        what = "a test, its p-value decides" if method.is_test else "a distance"
        out.append(
            Metric(
                f"drift_{method.key}",
                "drift",
                "score",
                "lower_is_better",
                False,
                f"{method.description} ({what}; {kinds} columns)",
                _FROM["drift"],
                column="the column",
            )
        )
    return out


# The realized metrics performance is estimated for before labels arrive.
ESTIMABLE: Mapping[str, tuple[str, ...]] = {
    "binary_classification": ("accuracy", "precision", "recall", "specificity", "f1", "roc_auc"),
    "multiclass_classification": (
        "accuracy",
        "macro_precision",
        "macro_recall",
        "macro_f1",
        "recall",
    ),
    "regression": ("mae", "rmse"),
}


def _estimated_entries(entries: Mapping[str, Metric]) -> list[Metric]:
    out: dict[str, Metric] = {}
    for task, keys in ESTIMABLE.items():
        for key in keys:
            realized = entries[key]
            name = f"estimated_{key}"
            if name in out:
                out[name] = Metric(**{**out[name].__dict__, "tasks": out[name].tasks | {task}})
                continue
            out[name] = Metric(
                name,
                "estimation",
                realized.unit,
                realized.direction,
                False,
                f"{realized.key.replace('_', ' ')} estimated without labels (assuming no concept "
                "shift), with its sampling band.",
                "the score histogram and the reference's calibration"
                if task != "regression"
                else "each event's loss predicted by a model of the reference",
                column="a class" if key == "recall" else "",
                tasks=frozenset({task}),
                estimates=key,
                on_reference=realized.on_reference,
                exports=(
                    Export(
                        "watchkeeper_model_performance",
                        {**_PERFORMANCE_EXPORT, "kind": "estimated", "version": "{version}"},
                        no_column=True,
                    ),
                ),
            )
    return list(out.values())


def _build() -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for m in [*_parse(_TABLE), *_drift_entries()]:
        if m.key in found:
            raise ValueError(f"metric {m.key!r} is catalogued twice")
        found[m.key] = m
    for m in _estimated_entries(found):
        found[m.key] = m
    return found


CATALOGUE: Mapping[str, Metric] = _build()


@dataclass(frozen=True)
class Catalogue:
    """Lookups over the entries: ``catalogue.get(key)`` raises with the nearest keys."""

    entries: Mapping[str, Metric] = field(default_factory=lambda: CATALOGUE)

    def get(self, key: str) -> Metric:
        try:
            return self.entries[key]
        except KeyError:
            raise UnknownMetricError(key, nearest(key)) from None

    def matching(self, pattern: str) -> list[Metric]:
        """The entries whose key matches a pattern with ``*`` and ``?``."""
        return [m for k, m in self.entries.items() if fnmatch.fnmatchcase(k, pattern)]

    def of_family(self, family: str) -> list[Metric]:
        return [m for m in self.entries.values() if m.family == family]


catalogue = Catalogue()


def nearest(key: str, n: int = 3) -> list[str]:
    """The known keys closest to ``key`` (for an error message)."""
    return difflib.get_close_matches(key, list(CATALOGUE), n=n, cutoff=0.5)


def lower_is_better(key: str) -> bool:
    found = CATALOGUE.get(key)
    return found is not None and found.lower_is_better


def needs_labels(key: str) -> bool:
    found = CATALOGUE.get(key)
    return found is not None and found.needs_labels


def additive(key: str) -> bool:
    found = CATALOGUE.get(key)
    return found is not None and found.additive


__all__ = [
    "CATALOGUE",
    "ESTIMABLE",
    "FAIRNESS_KEYS",
    "PROMETHEUS",
    "Catalogue",
    "Direction",
    "Export",
    "Metric",
    "PromFamily",
    "Unit",
    "additive",
    "catalogue",
    "lower_is_better",
    "nearest",
    "needs_labels",
]
