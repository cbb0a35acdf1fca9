"""One investigation's state: the metric under triage, the votes each cause has gathered
(with their reasons and actions), the first step (is it real?) and the ranking."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from watchkeeper.catalogue import lower_is_better, needs_labels
from watchkeeper.config import ModelConfig
from watchkeeper.stats.baseline import change_start
from watchkeeper.triage.evidence import BASELINE_WINDOWS, Metrics, _num
from watchkeeper.triage.model import CAUSES, TITLES, Hypothesis, Step

RECENT_SLICE_WINDOWS = 3


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
        self.concept: str | None = None  # realized fell beyond doubt, the estimate held
        # The alert under triage judged something other than the metric investigated (a
        # new version's scores on short windows): whether the metric fell yet is evidence,
        # but not evidence that nothing is wrong.
        self.judged_elsewhere = False
        self.w = w
        self.size = size
        self.alert = alert
        self.points: dict[str, float] = defaultdict(float)
        self.reasons: dict[str, list[str]] = defaultdict(list)
        self.actions: dict[str, str] = {}
        self.bad_up = lower_is_better(metric)
        self.before = self.change_began()
        self.segment: tuple[str, str] | None = None  # where the change concentrates
        self.feature: str | None = None  # the input that moved most
        self.slice_began: dict[str, datetime] = {}  # each weak slice's first window
        self.slices = self.weak_slices()

    def weak_slices(self) -> list[Any]:
        """For a metric measured on labels: the weak slices new since the change began, or
        in the last few windows (a slice fails before the whole shows it), newest window
        first, then worst first. Each was significant across every slice tested and worse
        than on the reference; a slice already weak before is how the model always was."""
        if not needs_labels(self.metric) or self.metric == "weak_slice":
            return []
        since = min(self.before, self.w - RECENT_SLICE_WINDOWS * self.size)
        found, before = [], set()
        for (metric, col, sc, _), rows in self.m.by_key.items():
            if metric != "weak_slice" or not col or sc != "*":
                continue
            for start, r in rows.items():
                if r.status != "worse" or start > self.w:
                    continue
                if start < since:
                    before.add(col)
                else:
                    found.append(r)
        self.slice_began = {
            r.column: min(x.window_start for x in found if x.column == r.column) for r in found
        }
        new = [r for r in found if r.column not in before]
        return sorted(new, key=lambda r: (r.window_start, _num(r.value) or 0.0), reverse=True)

    def change_began(self) -> datetime:
        """The window the change under triage began at: where the metric's trailing run of
        worse values started (or the alert's first window, if earlier). Every "usual level"
        of the investigation is read before it, so an incident that has lasted a while is
        not compared with a baseline it has already moved."""
        series = self.m.series(self.metric, self.column)
        starts = sorted(s for s in series if s <= self.w)
        found = change_start([series[s] for s in starts], self.bad_up)
        began = starts[found] if found is not None else self.w
        if self.alert is not None and self.alert.get("window_start") is not None:
            began = min(began, self.alert["window_start"])
        return began

    def vote(self, cause: str, points: float, reason: str, action: str | None = None) -> None:
        if cause == "not_real" and self.judged_elsewhere:
            return
        self.points[cause] += points
        self.reasons[cause].append(reason)
        if action and (cause not in self.actions or points >= 2):
            self.actions[cause] = action

    def worse(self, now: float, usual: float) -> float:
        """How much worse ``now`` is than ``usual`` (positive: worse), for this metric."""
        return (now - usual) if self.bad_up else (usual - now)

    def is_it_real(self, value: float | None, usual: float | None) -> Step:
        s = Step(
            1, "Is it real", "is the change beyond noise, on enough traffic and mature labels?"
        )
        m, w = self.m, self.w
        row = m.row(self.metric, w, self.column)
        past = m.history(self.metric, self.before, self.column)
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
            lower, upper = (row.lower, row.upper) if row else (None, None)
            if change <= 0:
                self.slices = []  # nothing fell: a weak slice is no evidence of a drop
            if lower is not None and upper is not None and lower <= usual <= upper:
                self.vote(
                    "not_real",
                    1 if self.slices else 2,  # a slice's failure is diluted in the whole
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
        usual_rows = m.usual("row_count", self.before)
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
        if coverage is not None and needs_labels(self.metric):
            now_cov = _num(coverage.value) or 0.0
            usual_cov = m.usual("label_coverage", self.before) or 0.0
            s.findings.append(
                f"labels: {now_cov:.0%} of this window's events have one (usually {usual_cov:.0%})"
                + ("; the window is provisional" if coverage.provisional else "")
            )
            s.evidence.append(
                {
                    "metric": "label_coverage",
                    "value": now_cov,
                    "usual": usual_cov,
                    "provisional": coverage.provisional,
                }
            )
            # Labels still arriving: an artefact, unless the drop already clears its
            # interval on the labels there are (what the alert judged).
            beyond = self._beyond_interval(row, value, usual)
            early = coverage.provisional and now_cov < 0.6 * usual_cov
            if early and beyond:  # an early sample may be a biased one: an older window's
                beyond = self._confirmed_earlier(usual, usual_cov)  # maturer labels decide
            if self.slices:
                r = self.slices[0]
                began = self.slice_began.get(r.column, r.window_start)
                s.findings.append(
                    f"since {began:%Y-%m-%d} the model does significantly worse on "
                    f"{r.column} than elsewhere and than on the reference (q = {r.p_value:.2g})"
                    if r.p_value is not None
                    else f"since {began:%Y-%m-%d} the model does worse on {r.column}"
                )
            if early:
                detail = coverage.detail or ""
                self.vote(
                    "not_real",
                    1 if beyond or self.slices else 4,
                    f"only {now_cov:.0%} of events are labelled yet (usually "
                    f"{usual_cov:.0%}): early labels are rarely a fair sample",
                    "wait for the labels to mature before acting"
                    + (f" ({detail.split('; ')[-1]})" if "final by" in detail else ""),
                )
                s.findings.append("the drop is measured on immature labels: possibly an artefact")
                self.immature = True
            estimate = m.value(f"estimated_{self.metric}", w)
            usual_estimate = m.usual(f"estimated_{self.metric}", self.before)
            if (
                estimate is not None
                and usual_estimate is not None
                and abs(estimate - usual_estimate) < 0.02
            ):
                s.findings.append(f"the estimate without labels held at {estimate:.3g}")
                if beyond:
                    # The estimate held and the realized metric fell beyond doubt: what the
                    # scores mean may have changed (a concept shift). The model step decides,
                    # once it has seen whether the scores themselves moved.
                    self.concept = (
                        f"the realized {self.metric.replace('_', ' ')} fell beyond its interval "
                        f"while the estimate from the scores held ({estimate:.3g} vs "
                        f"{usual_estimate:.3g}): a concept shift"
                    )
                elif self.immature and not self.slices:  # a slice's failure moves no estimate
                    self.vote(
                        "not_real",
                        2,
                        "the estimate from the scores held "
                        f"({estimate:.3g} vs {usual_estimate:.3g})",
                    )
        gaps = self._missing_windows()
        if gaps:
            s.findings.append(f"{gaps} window(s) without data in the recent past")
            self.vote("infrastructure", 1, f"{gaps} recent window(s) had no events")
        return s

    def _beyond_interval(self, row: Any, value: float | None, usual: float | None) -> bool:
        """Whether the window is worse than usual with its interval clear of the usual."""
        if row is None or value is None or usual is None or self.worse(value, usual) <= 0:
            return False
        lower, upper = row.lower, row.upper
        return lower is not None and upper is not None and not (lower <= usual <= upper)

    def _confirmed_earlier(self, usual: float | None, usual_cov: float) -> bool:
        """Whether a window since the change began, older than this one and with most of
        its labels in, fell beyond its interval too."""
        for start in sorted(self.m.series(self.metric, self.column)):
            if not (self.before <= start < self.w):
                continue
            coverage = self.m.row("label_coverage", start)
            share = (_num(coverage.value) or 0.0) if coverage is not None else 0.0
            if share < 0.6 * usual_cov:
                continue
            row = self.m.row(self.metric, start, self.column)
            if self._beyond_interval(row, _num(row.value) if row else None, usual):
                return True
        return False

    def _missing_windows(self) -> int:
        counts = self.m.series("row_count")
        starts = sorted(s for s in counts if s <= self.w)[-BASELINE_WINDOWS - 1 :]
        if len(starts) < 2:
            return 0
        expected = int((starts[-1] - starts[0]) / self.size) + 1
        return max(expected - len(starts), 0)

    def _previous(self) -> list[datetime]:
        counts = self.m.series("row_count")
        return sorted(s for s in counts if s < self.w)[-BASELINE_WINDOWS:]

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


__all__ = ["Investigation"]
