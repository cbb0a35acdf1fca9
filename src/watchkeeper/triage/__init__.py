"""Triage of a drop: the systematic first hour of an investigation, from stored metrics.

Given a model, a metric and a window (or an alert), it works through what a monitoring
engineer would check, writes down each step with its evidence, and ends with ranked
hypotheses (data, model, infrastructure, business behaviour, or not real), each with its
confidence and a recommended action:

1. Is it real? Traffic, the metric's interval against its usual level, label coverage (a
   drop on immature labels may be an artefact), missing windows.
2. Data: quarantine and schema changes, missing-value and range spikes, the features ranked
   by drift, and how closely each one's drift has tracked the metric over recent windows.
3. Model: a version change at the drop, calibration, score drift, estimated vs realized.
4. Infrastructure: latency, errors, volume gaps.
5. Where: the segments (and weak slices) that account for the change.
6. Business: outcome rates and the cost of the decisions over the same period.

Everything is read from the metrics table, so triage costs the same for any traffic.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from watchkeeper.config import ModelConfig
from watchkeeper.errors import TriageError
from watchkeeper.stats.multiclass import METRICS as MULTICLASS
from watchkeeper.stats.performance import METRICS as PERFORMANCE
from watchkeeper.stats.ranking import METRICS as RANKING
from watchkeeper.stats.regression import METRICS as REGRESSION
from watchkeeper.store import Store

BASELINE_WINDOWS = 7  # usual level: the median of the windows before the drop
CORRELATION_WINDOWS = 14  # how far back a feature's drift is compared with the metric

# Metrics where a higher value is worse.
LOWER_IS_BETTER = {
    "mae",
    "rmse",
    "mape",
    "log_loss",
    "brier",
    "expected_calibration_error",
    "false_positive_rate",
    "false_negative_rate",
    "error_rate",
    "latency_p50",
    "latency_p90",
    "latency_p99",
    "missing_rate",
    "out_of_range_rate",
    "unseen_rate",
    "cost",
    "drift",
}

LABELLED = set(PERFORMANCE) | set(MULTICLASS) | set(REGRESSION) | set(RANKING) | {"cost"}

CAUSES = ("data", "model", "infrastructure", "business", "not_real")
TITLES = {
    "data": "the data changed",
    "model": "the model is at fault",
    "infrastructure": "the serving infrastructure",
    "business": "user behaviour changed",
    "not_real": "not a real drop",
}


def default_metric(model: ModelConfig) -> str:
    return {
        "binary_classification": "roc_auc",
        "multiclass_classification": "macro_f1",
        "regression": "mae",
        "ranking": "ndcg_at_k",
    }[model.task]


@dataclass
class Step:
    number: int
    title: str
    question: str
    findings: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "title": self.title,
            "question": self.question,
            "findings": list(self.findings),
            "evidence": list(self.evidence),
        }


@dataclass
class Hypothesis:
    cause: str
    title: str
    score: float
    confidence: float  # share of the evidence points
    evidence: list[str]
    action: str

    @property
    def level(self) -> str:
        return "high" if self.confidence >= 0.6 else "medium" if self.confidence >= 0.35 else "low"

    def to_dict(self) -> dict[str, Any]:
        return {
            "cause": self.cause,
            "title": self.title,
            "confidence": round(self.confidence, 3),
            "level": self.level,
            "evidence": list(self.evidence),
            "action": self.action,
        }


@dataclass
class Triage:
    model: str
    metric: str
    window_start: datetime
    window_end: datetime
    value: float | None
    usual: float | None
    steps: list[Step]
    hypotheses: list[Hypothesis]
    alert_id: str | None = None

    @property
    def top(self) -> Hypothesis:
        return self.hypotheses[0]

    @property
    def headline(self) -> str:
        change = ""
        if self.value is not None and self.usual is not None:
            change = f" ({self.usual:.3g} usually, {self.value:.3g} now)"
        top = self.top
        return (
            f"{self.model}: {self.metric.replace('_', ' ')} in the window of "
            f"{self.window_start:%Y-%m-%d %H:%M}{change}. Most likely: {top.title} "
            f"({top.level} confidence). Next: {top.action}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "metric": self.metric,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "value": self.value,
            "usual": self.usual,
            "alert_id": self.alert_id,
            "headline": self.headline,
            "steps": [s.to_dict() for s in self.steps],
            "hypotheses": [h.to_dict() for h in self.hypotheses],
        }

    def to_text(self) -> str:
        lines = [self.headline, ""]
        for s in self.steps:
            lines.append(f"{s.number}. {s.title}: {s.question}")
            lines += [f"   - {f}" for f in s.findings] or ["   - nothing unusual"]
        lines += ["", "Hypotheses, most likely first:"]
        for i, h in enumerate(self.hypotheses, 1):
            lines.append(f"{i}. {h.title} ({h.level}, {h.confidence:.0%}): {h.action}")
            lines += [f"     because {e}" for e in h.evidence[:4]]
        return "\n".join(lines)


# -- reading the metrics ----------------------------------------------------------------------


Key = tuple[str, str, str, str]  # metric, column, segment_column, segment_value


class Metrics:
    """A model's metric rows over a span, by series (the versions of a window merged by
    sample size, as the alerts do) and by version."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_key: dict[Key, dict[datetime, dict[str, Any]]] = defaultdict(dict)
        self.by_version: dict[tuple[str, str], dict[datetime, dict[str, dict[str, Any]]]] = (
            defaultdict(lambda: defaultdict(dict))
        )
        parts: dict[Key, dict[datetime, list[dict[str, Any]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for r in rows:
            key = (r["metric"], r["column"], r["segment_column"], r["segment_value"])
            parts[key][r["window_start"]].append(r)
            if r["segment_column"] == "*":
                self.by_version[(r["metric"], r["column"])][r["window_start"]][
                    r["model_version"]
                ] = r
        # Where versions share a window (a rollout), the whole traffic is their mix: counts
        # add up, rates are averaged by their events.
        for key, by_start in parts.items():
            for start, found in by_start.items():
                self.by_key[key][start] = found[0] if len(found) == 1 else _mix(key[0], found)

    def row(
        self, metric: str, at: datetime, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> dict[str, Any] | None:
        return self.by_key.get((metric, column, *seg), {}).get(at)

    def value(
        self, metric: str, at: datetime, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> float | None:
        r = self.row(metric, at, column, seg)
        return _num(r["value"]) if r else None

    def history(
        self,
        metric: str,
        before: datetime,
        column: str = "",
        seg: tuple[str, str] = ("*", "*"),
        n: int = BASELINE_WINDOWS,
    ) -> list[float]:
        found = self.by_key.get((metric, column, *seg), {})
        starts = sorted(s for s in found if s < before)[-n:]
        return [v for s in starts if (v := _num(found[s]["value"])) is not None]

    def usual(
        self, metric: str, before: datetime, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> float | None:
        past = self.history(metric, before, column, seg)
        return statistics.median(past) if past else None

    def columns(self, metric: str, seg: tuple[str, str] = ("*", "*")) -> list[str]:
        return sorted({k[1] for k in self.by_key if k[0] == metric and (k[2], k[3]) == seg})

    def segments(self, metric: str, column: str = "") -> list[tuple[str, str]]:
        return sorted(
            {(k[2], k[3]) for k in self.by_key if k[0] == metric and k[1] == column and k[2] != "*"}
        )

    def series(
        self, metric: str, column: str = "", seg: tuple[str, str] = ("*", "*")
    ) -> dict[datetime, float]:
        found = self.by_key.get((metric, column, *seg), {})
        return {s: v for s, r in found.items() if (v := _num(r["value"])) is not None}


ADDITIVE = {"row_count", "outcome_total", "cost", "value", "net_value", "quarantined_rows"}


def _mix(metric: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = sum(int(r["sample_size"] or 0) for r in rows)
    values = [(_num(r["value"]), int(r["sample_size"] or 0)) for r in rows]
    known = [(v, k) for v, k in values if v is not None]
    if not known:
        value = None
    elif metric in ADDITIVE:
        value = sum(v for v, _ in known)
    else:
        weight = sum(k for _, k in known)
        value = sum(v * k for v, k in known) / weight if weight else known[0][0]
    first = max(rows, key=lambda r: int(r["sample_size"] or 0))
    provisional = any(r["provisional"] for r in rows)
    return {
        **first,
        "value": value,
        "lower": None,
        "upper": None,
        "sample_size": n,
        "model_version": "*",
        "provisional": provisional,
    }


def moment(value: Any) -> datetime | None:
    """A timestamp from an engine's scalar: None for nothing (pandas says NaT)."""
    if value is None or value != value:  # NaT is not equal to itself
        return None
    if hasattr(value, "to_pydatetime"):
        found: datetime = value.to_pydatetime()
        return found
    return value if isinstance(value, datetime) else None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return None if math.isnan(v) else v


def load(
    store: Store, model: ModelConfig, since: datetime, until: datetime, size: timedelta
) -> Metrics:
    import ibis

    from watchkeeper.store.tables import METRICS

    t = store.table(METRICS)
    seconds = int(size.total_seconds())
    expr = t.filter(
        (t.model == model.name)
        & (t.window_start >= since)
        & (t.window_start <= until)
        & (t.window_end == t.window_start + ibis.interval(seconds=seconds))
    )
    return Metrics(store.execute(expr.drop("run_id")).to_pylist())


# -- the investigation ---------------------------------------------------------------------------


def triage(
    store: Store,
    model: ModelConfig,
    *,
    metric: str | None = None,
    at: datetime | None = None,
    window: timedelta | None = None,
    alert: dict[str, Any] | None = None,
) -> Triage:
    """Investigate ``metric`` (default: the task's headline metric, or the alert's) at the
    window containing ``at`` (default: the alert's window, else the newest window)."""
    size = window or model.monitoring.window
    column = ""
    if alert is not None:
        import json

        labels = json.loads(alert["labels"])
        # A rule on one series names its metric; a combined rule's drop is the model's
        # headline metric (its conditions are the evidence, not the thing that fell).
        metric = metric or labels.get("metric")
        column = labels.get("column") or ""
        at = at or alert["window_start"]
        size = timedelta(seconds=int(alert["window_size_s"] or size.total_seconds()))
    wanted = metric or default_metric(model)
    horizon = size * (CORRELATION_WINDOWS + BASELINE_WINDOWS + 2)
    end = at
    if end is None:
        from watchkeeper.store.tables import METRICS

        t = store.table(METRICS)
        mine = t.filter((t.model == model.name) & t.metric.isin([wanted, f"estimated_{wanted}"]))
        end = moment(store.scalar(mine.window_start.max()))
        if end is None:
            raise TriageError(f"{model.name} has no {wanted!r} metric yet; run it first")
    m = load(store, model, end - horizon, end + size, size)
    # The metric's column: the alert's, else none, else the one it has (latency_ms).
    columns = m.columns(wanted) or m.columns(f"estimated_{wanted}")
    column = column or ("" if "" in columns or not columns else columns[0])
    starts = sorted(s for s in m.series(wanted, column) if s <= end)
    if not starts and m.series(f"estimated_{wanted}", column):
        wanted = f"estimated_{wanted}"  # no labels yet: the estimate is what there is
        starts = sorted(s for s in m.series(wanted, column) if s <= end)
    if not starts and alert is not None and metric is not None:
        # The alert is on a segment's series (a gap, a slice): what matters is whether the
        # model's headline metric fell, and where.
        return triage(store, model, at=end, window=size)
    if not starts:
        raise TriageError(
            f"{model.name} has no {wanted!r} values at or before {end:%Y-%m-%d %H:%M}"
        )
    return Investigation(model, m, wanted, column, starts[-1], size, alert).run()


class Investigation:
    def __init__(
        self,
        model: ModelConfig,
        m: Metrics,
        metric: str,
        column: str,
        w: datetime,
        size: timedelta,
        alert: dict[str, Any] | None,
    ) -> None:
        self.model = model
        self.m = m
        self.metric = metric
        self.column = column
        self.immature = False  # the drop is measured on labels still arriving
        self.w = w
        self.size = size
        self.alert = alert
        self.points: dict[str, float] = defaultdict(float)
        self.reasons: dict[str, list[str]] = defaultdict(list)
        self.actions: dict[str, str] = {}
        self.bad_up = metric.removeprefix("estimated_") in LOWER_IS_BETTER

    def vote(self, cause: str, points: float, reason: str, action: str | None = None) -> None:
        self.points[cause] += points
        self.reasons[cause].append(reason)
        if action and (cause not in self.actions or points >= 2):
            self.actions[cause] = action

    def worse(self, now: float, usual: float) -> float:
        """How much worse ``now`` is than ``usual`` (positive: worse), for this metric."""
        return (now - usual) if self.bad_up else (usual - now)

    def run(self) -> Triage:
        value = self.m.value(self.metric, self.w, self.column)
        usual = self.m.usual(self.metric, self.w, self.column)
        steps = [
            self.is_it_real(value, usual),
            self.data(),
            self.model_step(),
            self.infrastructure(),
            self.where(),
            self.business(),
        ]
        return Triage(
            self.model.name,
            self.metric,
            self.w,
            self.w + self.size,
            value,
            usual,
            steps,
            self.rank(),
            self.alert["alert_id"] if self.alert else None,
        )

    # 1 -------------------------------------------------------------------------------------
    def is_it_real(self, value: float | None, usual: float | None) -> Step:
        s = Step(
            1, "Is it real", "is the change beyond noise, on enough traffic and mature labels?"
        )
        m, w = self.m, self.w
        row = m.row(self.metric, w, self.column)
        past = m.history(self.metric, w, self.column)
        if value is not None and usual is not None:
            spread = statistics.pstdev(past) if len(past) > 1 else 0.0
            change = self.worse(value, usual)
            s.findings.append(
                f"{self.metric.replace('_', ' ')} is {value:.3g} against a usual {usual:.3g} "
                f"(median of {len(past)} windows, spread {spread:.2g})"
            )
            s.evidence.append(
                {"metric": self.metric, "value": value, "usual": usual, "spread": spread}
            )
            lower, upper = (row or {}).get("lower"), (row or {}).get("upper")
            if lower is not None and upper is not None and lower <= usual <= upper:
                self.vote(
                    "not_real",
                    2,
                    f"the usual {usual:.3g} is inside this "
                    f"window's interval [{lower:.3g}, {upper:.3g}]",
                    "observe: the change is within sampling noise",
                )
                s.findings.append("its interval includes the usual level: it may be noise")
            if change <= 0:
                self.vote(
                    "not_real",
                    3,
                    "the metric is not worse than usual",
                    "observe: nothing has dropped",
                )
                s.findings.append("it is not worse than usual")
            elif spread > 0 and change < 2 * spread:
                self.vote("not_real", 1, "the change is within twice the usual spread")
        rows = m.value("row_count", w)
        usual_rows = m.usual("row_count", w)
        if rows is not None and usual_rows:
            ratio = rows / usual_rows
            s.findings.append(
                f"traffic: {rows:,.0f} events against a usual {usual_rows:,.0f} ({ratio:.0%})"
            )
            s.evidence.append({"metric": "row_count", "value": rows, "usual": usual_rows})
            if ratio < 0.5:
                self.vote(
                    "infrastructure",
                    2,
                    f"traffic fell to {ratio:.0%} of usual",
                    "check the serving path: traffic is missing",
                )
        coverage = m.row("label_coverage", w)
        if coverage is not None and self.metric in LABELLED:
            now_cov = _num(coverage["value"]) or 0.0
            usual_cov = m.usual("label_coverage", w) or 0.0
            s.findings.append(
                f"labels: {now_cov:.0%} of this window's events have one (usually {usual_cov:.0%})"
                + ("; the window is provisional" if coverage["provisional"] else "")
            )
            s.evidence.append(
                {
                    "metric": "label_coverage",
                    "value": now_cov,
                    "usual": usual_cov,
                    "provisional": coverage["provisional"],
                }
            )
            if coverage["provisional"] and now_cov < 0.6 * usual_cov:
                detail = coverage["detail"] or ""
                self.vote(
                    "not_real",
                    4,
                    f"only {now_cov:.0%} of events are labelled yet (usually "
                    f"{usual_cov:.0%}): early labels are rarely a fair sample",
                    "wait for the labels to mature before acting"
                    + (f" ({detail.split('; ')[-1]})" if "final by" in detail else ""),
                )
                s.findings.append("the drop is measured on immature labels: possibly an artefact")
                self.immature = True
                estimate = m.value(f"estimated_{self.metric}", w)
                usual_estimate = m.usual(f"estimated_{self.metric}", w)
                if (
                    estimate is not None
                    and usual_estimate is not None
                    and abs(estimate - usual_estimate) < 0.02
                ):
                    self.vote(
                        "not_real",
                        2,
                        "the estimate from the scores held "
                        f"({estimate:.3g} vs {usual_estimate:.3g})",
                    )
                    s.findings.append(f"the estimate without labels held at {estimate:.3g}")
        gaps = self._missing_windows()
        if gaps:
            s.findings.append(f"{gaps} window(s) without data in the recent past")
            self.vote("infrastructure", 1, f"{gaps} recent window(s) had no events")
        return s

    def _missing_windows(self) -> int:
        counts = self.m.series("row_count")
        starts = sorted(s for s in counts if s <= self.w)[-BASELINE_WINDOWS - 1 :]
        if len(starts) < 2:
            return 0
        expected = int((starts[-1] - starts[0]) / self.size) + 1
        return max(expected - len(starts), 0)

    # 2 -------------------------------------------------------------------------------------
    def data(self) -> Step:
        s = Step(2, "Data", "did the inputs change: rejected rows, schema, missing values, drift?")
        m, w = self.m, self.w
        quarantined = sum(
            v
            for c in m.columns("quarantined_rows")
            if (v := m.value("quarantined_rows", w, c)) is not None
        )
        usual_q = statistics.median(
            [
                sum(vals)
                for vals in [
                    [
                        m.value("quarantined_rows", p, c) or 0.0
                        for c in m.columns("quarantined_rows")
                    ]
                    for p in self._previous()
                ]
            ]
            or [0.0]
        )
        if quarantined > max(10, 3 * usual_q):
            s.findings.append(
                f"{quarantined:,.0f} rows quarantined in this window (usually {usual_q:,.0f})"
            )
            self.vote(
                "data",
                3,
                f"{quarantined:,.0f} rows were refused at ingestion (usually {usual_q:,.0f})",
                "fix the pipeline that feeds the model: rows are being rejected",
            )
        schema = m.row("schema_changes", w)
        if schema is not None and schema["status"] == "changed":
            s.findings.append(f"schema change: {schema['detail']}")
            self.vote(
                "data",
                3,
                f"the logged events changed columns ({schema['detail']})",
                "fix the pipeline: the logged columns changed",
            )
        spikes = []
        for check in ("missing_rate", "out_of_range_rate", "unseen_rate"):
            for column in m.columns(check):
                now = m.value(check, w, column)
                usual = m.usual(check, w, column)
                if now is None or usual is None:
                    continue
                if now - usual >= 0.05:
                    spikes.append((now - usual, check, column, now, usual))
        for jump, check, column, now, usual in sorted(spikes, reverse=True)[:5]:
            what = check.removesuffix("_rate").replace("_", " ")
            s.findings.append(f"{column}: {what} {now:.0%} (usually {usual:.0%})")
            s.evidence.append({"metric": check, "column": column, "value": now, "usual": usual})
            self.vote(
                "data",
                4 if jump >= 0.2 else 2,
                f"{column} is {what} in {now:.0%} of events (usually {usual:.0%})",
                f"fix the pipeline that computes {column}",
            )
        metric_series = m.series(self.metric, self.column)
        drifted = []
        features = {f.name for f in self.model.columns.features}
        for column in m.columns("drift"):
            row = m.row("drift", w, column)
            if row is None or _num(row["value"]) is None:
                continue
            corr = _correlation(m.series("drift", column), metric_series, w, self.bad_up)
            drifted.append((row["status"] == "drifted", _num(row["value"]) or 0.0, column, corr))
        drifted.sort(key=lambda d: (not d[0], -d[1]))
        for is_drifted, value, column, corr in drifted[:8]:
            s.evidence.append(
                {
                    "metric": "drift",
                    "column": column,
                    "value": value,
                    "drifted": is_drifted,
                    "tracks_the_drop": corr,
                }
            )
        for is_drifted, value, column, corr in drifted:
            if not is_drifted:
                continue
            tracks = corr is not None and corr >= 0.6
            s.findings.append(
                f"{column} drifted (distance {value:.2g})"
                + (
                    f"; its drift has tracked the drop (correlation {corr:.2f} over recent windows)"
                    if tracks
                    else ""
                )
            )
            if column in features:
                self.vote(
                    "data",
                    2.5 if tracks else 1.0,
                    f"{column} drifted" + (" and its drift tracks the drop" if tracks else ""),
                    "retrain on recent data" if tracks else None,
                )
        return s

    def _previous(self) -> list[datetime]:
        counts = self.m.series("row_count")
        return sorted(s for s in counts if s < self.w)[-BASELINE_WINDOWS:]

    # 3 -------------------------------------------------------------------------------------
    def model_step(self) -> Step:
        s = Step(
            3,
            "Model",
            "did the model change: a new version, calibration, scores, estimate vs labels?",
        )
        m, w = self.m, self.w
        base = self.metric.removeprefix("estimated_")
        by_version = m.by_version.get((self.metric, self.column), {})
        values = {
            v: x
            for v, r in by_version.get(w, {}).items()
            if v != "*" and (x := _num(r["value"])) is not None
        }
        earlier = [p for p in sorted(by_version) if p < w]
        first_seen: dict[str, datetime] = {}
        for p in sorted(by_version):
            for v in by_version[p]:
                first_seen.setdefault(v, p)
        blamed = False
        if len(values) > 1:
            s.findings.append(
                "; ".join(
                    f"version {v}: {x:.3g} on {by_version[w][v]['sample_size']:,} events"
                    for v, x in sorted(values.items())
                )
            )
            best = min(values, key=lambda v: self.worse(values[v], 0.0))
            worst = max(values, key=lambda v: self.worse(values[v], 0.0))
            gap = self.worse(values[worst], values[best])
            if gap > 0.02:
                since = first_seen.get(worst)
                when = f", serving since {since:%Y-%m-%d %H:%M}" if since else ""
                self.vote(
                    "model",
                    6,
                    f"version {worst}{when} does worse than version {best} on the same traffic "
                    f"({values[worst]:.3g} against {values[best]:.3g})",
                    f"roll back to version {best}",
                )
                s.findings.append(f"version {worst} does worse than version {best}")
                blamed = True
        elif len(values) == 1 and earlier:
            (version,) = values
            before = {v for p in earlier[-BASELINE_WINDOWS:] for v in by_version[p] if v != "*"}
            if before and version not in before:
                usual = m.usual(self.metric, w, self.column)
                if usual is not None and self.worse(values[version], usual) > 0.02:
                    old = sorted(before)[-1]
                    self.vote(
                        "model",
                        5,
                        f"version {version} replaced version {old} and does worse "
                        f"({values[version]:.3g} against {usual:.3g})",
                        f"roll back to version {old}",
                    )
                    s.findings.append(f"version {version} replaced version {old}")
                    blamed = True
        ece = m.value("expected_calibration_error", w)
        usual_ece = m.usual("expected_calibration_error", w)
        if ece is not None and usual_ece is not None and ece - usual_ece > 0.03:
            s.findings.append(f"calibration error {ece:.3f} (usually {usual_ece:.3f})")
            self.vote("model", 1, f"calibration worsened ({ece:.3f} vs {usual_ece:.3f})")
        score = self.model.columns.score or self.model.columns.prediction
        if score:
            row = m.row("drift", w, score)
            if row is not None and row["status"] == "drifted":
                s.findings.append(f"the scores drifted (distance {_num(row['value']) or 0:.2g})")
                s.evidence.append({"metric": "drift", "column": score, "value": _num(row["value"])})
        realized = m.value(base, w)
        estimate = m.value(f"estimated_{base}", w)
        usual_realized = m.usual(base, w)
        usual_estimate = m.usual(f"estimated_{base}", w)
        if None not in (realized, estimate, usual_realized, usual_estimate):
            assert realized is not None and estimate is not None
            assert usual_realized is not None and usual_estimate is not None
            realized_drop = self.worse(realized, usual_realized)
            estimate_drop = self.worse(estimate, usual_estimate)
            s.findings.append(
                f"realized {realized:.3g} (usually {usual_realized:.3g}); estimated "
                f"from the scores {estimate:.3g} (usually {usual_estimate:.3g})"
            )
            s.evidence.append(
                {
                    "realized": realized,
                    "estimated": estimate,
                    "usual_realized": usual_realized,
                    "usual_estimated": usual_estimate,
                }
            )
            if blamed or self.immature:
                pass  # a worse version, or labels not yet in, explain the gap
            elif realized_drop > 0.02 and estimate_drop < realized_drop / 3:
                self.vote(
                    "business",
                    3,
                    f"labels say {base} fell to {realized:.3g} while the scores predicted "
                    f"{estimate:.3g}: the link between inputs and outcome changed",
                    "retrain on recent data; meanwhile review the decision threshold",
                )
                s.findings.append(
                    "the estimate held while the labels dropped: the relation "
                    "between inputs and outcome changed (concept shift)"
                )
            elif realized_drop > 0.02 and estimate_drop >= realized_drop / 2:
                self.vote(
                    "data", 1, "the drop shows in the scores' own estimate too: the inputs moved"
                )
        return s

    # 4 -------------------------------------------------------------------------------------
    def infrastructure(self) -> Step:
        s = Step(4, "Infrastructure", "did serving slow down, fail or lose traffic?")
        m, w = self.m, self.w
        latency = self.model.columns.latency or ""
        for q in ("latency_p99", "latency_p90"):
            now = m.value(q, w, latency)
            usual = m.usual(q, w, latency)
            if now is not None and usual:
                s.evidence.append({"metric": q, "value": now, "usual": usual})
                if now > 1.5 * usual:
                    s.findings.append(
                        f"{q.replace('_', ' ')} {now:,.0f} ms (usually {usual:,.0f} ms)"
                    )
                    self.vote(
                        "infrastructure",
                        4 if q == "latency_p99" else 2,
                        f"{q.replace('_', ' ')} is {now / usual:.1f}x usual ({now:,.0f} ms)",
                        "fix the serving latency (capacity, a "
                        "slow dependency); model metrics follow",
                    )
                break
        errors = m.value("error_rate", w)
        usual_errors = m.usual("error_rate", w)
        if errors is not None and usual_errors is not None:
            s.evidence.append({"metric": "error_rate", "value": errors, "usual": usual_errors})
            if errors - usual_errors > 0.02:
                s.findings.append(f"{errors:.1%} of requests failed (usually {usual_errors:.1%})")
                self.vote(
                    "infrastructure",
                    4,
                    f"{errors:.1%} of requests failed (usually {usual_errors:.1%})",
                    "fix the failing requests in the serving path",
                )
        volume = m.value("volume_ratio", w)
        if volume is not None and volume < 0.5:
            s.findings.append(f"traffic at {volume:.0%} of recent windows")
        return s

    # 5 -------------------------------------------------------------------------------------
    def where(self) -> Step:
        s = Step(5, "Where", "which segments account for the change?")
        m, w = self.m, self.w
        total_rows = m.value("row_count", w) or 0.0
        contributions = []
        for seg in m.segments(self.metric, self.column):
            now = m.value(self.metric, w, self.column, seg)
            usual = m.usual(self.metric, w, self.column, seg)
            rows = m.value("row_count", w, "", seg) or 0.0
            if now is None or usual is None or not total_rows:
                continue
            share = rows / total_rows
            contributions.append((share * self.worse(now, usual), seg, now, usual, share))
        by_column: dict[str, list[tuple[float, tuple[str, str], float, float, float]]] = (
            defaultdict(list)
        )
        for c in contributions:
            by_column[c[1][0]].append(c)
        concentrated = None
        for found in by_column.values():
            positive = sum(max(c[0], 0) for c in found)
            if positive <= 0:
                continue
            top = max(found, key=lambda c: c[0])
            explained = max(top[0], 0) / positive
            s.evidence.append(
                {
                    "segment": f"{top[1][0]}={top[1][1]}",
                    "value": top[2],
                    "usual": top[3],
                    "traffic_share": top[4],
                    "share_of_change": explained,
                }
            )
            clear = explained >= 0.6 and top[4] <= 0.6 and self.worse(top[2], top[3]) > 0
            if clear and (concentrated is None or explained > concentrated[0]):
                concentrated = (explained, top)
        if concentrated is not None:
            explained, (_, seg, now, usual, share) = concentrated
            where = f"{seg[0]}={seg[1]}"
            s.findings.append(
                f"{where} accounts for {explained:.0%} of the change with "
                f"{share:.0%} of the traffic ({now:.3g}, usually {usual:.3g})"
            )
            drifted = [
                c
                for c in self.m.columns("drift", seg)
                if (r := self.m.row("drift", w, c, seg)) is not None
                and r["status"] == "drifted"
                and c in {f.name for f in self.model.columns.features}
            ]
            if drifted:
                self.vote(
                    "data",
                    3,
                    f"the drop is concentrated in {where}, where {', '.join(drifted)} drifted",
                    f"retrain on recent data, or add a guardrail for {where} meanwhile",
                )
                s.findings.append(f"in {where}, {', '.join(drifted)} drifted")
            else:
                self.vote(
                    "model",
                    1,
                    f"the drop is concentrated in {where} without drift there",
                    f"adjust the threshold or add a guardrail for {where}",
                )
        else:
            s.findings.append("the whole population: no segment accounts for most of the change")
        slices = [
            r
            for (metric, col, sc, sv), found in m.by_key.items()
            if metric == "weak_slice" and (r := found.get(w)) is not None
        ]
        for r in sorted(slices, key=lambda r: -(_num(r["value"]) or 0))[:3]:
            s.findings.append(f"weak slice: {r['column']} ({r['detail']})")
            s.evidence.append({"weak_slice": r["column"], "value": _num(r["value"])})
        return s

    # 6 -------------------------------------------------------------------------------------
    def business(self) -> Step:
        s = Step(6, "Business", "did the outcomes the model exists for move?")
        m, w = self.m, self.w
        for outcome in m.columns("outcome_rate"):
            now = m.value("outcome_rate", w, outcome)
            past = m.history("outcome_rate", w, outcome)
            if now is None or len(past) < 3:
                continue
            usual = statistics.median(past)
            spread = statistics.pstdev(past) or abs(usual) * 0.05 or 1e-9
            s.evidence.append(
                {"metric": "outcome_rate", "column": outcome, "value": now, "usual": usual}
            )
            if abs(now - usual) > 3 * spread:
                s.findings.append(f"{outcome}: {now:.2%} of events (usually {usual:.2%})")
                self.vote("business", 1.5, f"{outcome} moved to {now:.2%} (usually {usual:.2%})")
        for name in ("net_value", "cost"):
            amount = m.value(name, w)
            typical = m.usual(name, w)
            if amount is not None and typical is not None:
                s.evidence.append({"metric": name, "value": amount, "usual": typical})
                if name == "cost" and typical and amount > 1.2 * typical:
                    s.findings.append(
                        f"the cost of the model's mistakes: {amount:,.0f} (usually {typical:,.0f})"
                    )
        return s

    # -------------------------------------------------------------------------------------------
    def rank(self) -> list[Hypothesis]:
        defaults = {
            "data": "check the pipelines feeding the model",
            "model": "compare with the previous model version",
            "infrastructure": "check the serving path",
            "business": "observe; retrain on recent data if it persists",
            "not_real": "observe",
        }
        total = sum(self.points.values())
        out = []
        for cause in CAUSES:
            points = self.points.get(cause, 0.0)
            out.append(
                Hypothesis(
                    cause,
                    TITLES[cause],
                    points,
                    points / total if total else 0.0,
                    self.reasons.get(cause, []),
                    self.actions.get(cause, defaults[cause]),
                )
            )
        out.sort(key=lambda h: (-h.score, CAUSES.index(h.cause)))
        if total == 0:
            out.sort(key=lambda h: h.cause != "not_real")
            out[0] = Hypothesis(
                "not_real", TITLES["not_real"], 0.0, 0.0, ["no signal points anywhere"], "observe"
            )
        return out


def _correlation(
    drift: dict[datetime, float], metric: dict[datetime, float], w: datetime, bad_up: bool
) -> float | None:
    """How closely a feature's drift has tracked the metric getting worse, over the recent
    windows (Pearson; positive: more drift, worse metric)."""
    starts = sorted(s for s in drift.keys() & metric.keys() if s <= w)[-CORRELATION_WINDOWS:]
    if len(starts) < 4:
        return None
    x = np.array([drift[s] for s in starts])
    y = np.array([metric[s] for s in starts]) * (1 if bad_up else -1)
    if x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])
