"""The steps after "is it real?": data, model, infrastructure, where, business. Each reads
the stored metrics, writes down what it found, and votes for the causes it points at."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime

import numpy as np

from watchkeeper.catalogue import CATALOGUE
from watchkeeper.triage.evidence import BASELINE_WINDOWS, CORRELATION_WINDOWS, _num
from watchkeeper.triage.investigation import Investigation
from watchkeeper.triage.model import Step

MIN_OUTCOME_MOVE = 0.1  # an outcome rate must move by a tenth of its usual level to count


# 2 -------------------------------------------------------------------------------------
def data(inv: Investigation) -> Step:
    s = Step(2, "Data", "did the inputs change: rejected rows, schema, missing values, drift?")
    m, w = inv.m, inv.w
    quarantined = sum(
        v
        for c in m.columns("quarantined_rows")
        if (v := m.value("quarantined_rows", w, c)) is not None
    )
    usual_q = statistics.median(
        [
            sum(vals)
            for vals in [
                [m.value("quarantined_rows", p, c) or 0.0 for c in m.columns("quarantined_rows")]
                for p in inv._previous()
            ]
        ]
        or [0.0]
    )
    if quarantined > max(10, 3 * usual_q):
        s.findings.append(
            f"{quarantined:,.0f} rows quarantined in this window (usually {usual_q:,.0f})"
        )
        inv.vote(
            "data",
            3,
            f"{quarantined:,.0f} rows were refused at ingestion (usually {usual_q:,.0f})",
            "fix the pipeline that feeds the model: rows are being rejected",
        )
    schema = m.row("schema_changes", w)
    if schema is not None and schema.status == "changed":
        s.findings.append(f"schema change: {schema.detail}")
        inv.vote(
            "data",
            3,
            f"the logged events changed columns ({schema.detail})",
            "fix the pipeline: the logged columns changed",
        )
    spikes = []
    for check in ("missing_rate", "out_of_range_rate", "unseen_rate"):
        for column in m.columns(check):
            now = m.value(check, w, column)
            usual = m.usual(check, inv.before, column)
            if now is None or usual is None:
                continue
            if now - usual >= 0.05:
                spikes.append((now - usual, check, column, now, usual))
    for jump, check, column, now, usual in sorted(spikes, reverse=True)[:5]:
        what = check.removesuffix("_rate").replace("_", " ")
        s.findings.append(f"{column}: {what} {now:.0%} (usually {usual:.0%})")
        s.evidence.append({"metric": check, "column": column, "value": now, "usual": usual})
        inv.vote(
            "data",
            4 if jump >= 0.2 else 2,
            f"{column} is {what} in {now:.0%} of events (usually {usual:.0%})",
            f"fix the pipeline that computes {column}",
        )
    metric_series = m.series(inv.metric, inv.column)
    drifted = []
    features = {f.name for f in inv.model.columns.features}
    for column in m.columns("drift"):
        row = m.row("drift", w, column)
        if row is None or _num(row.value) is None:
            continue
        corr = _correlation(m.series("drift", column), metric_series, w, inv.bad_up)
        drifted.append((row.status == "drifted", _num(row.value) or 0.0, column, corr))
    drifted.sort(key=lambda d: (not d[0], -d[1]))
    inv.feature = next((c for d, _, c, _ in drifted if d and c in features), None)
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
        if column in features and value >= BROKEN_SHIFT:
            # Several standard deviations at once is a pipeline, not a population.
            inv.vote(
                "data",
                4,
                f"{column} moved by {value:.1f} reference standard deviations at once",
                f"fix the pipeline that computes {column}: its values moved as a unit change "
                "or a broken join would move them",
            )
        elif column in features:
            inv.vote(
                "data",
                2.5 if tracks else 1.0,
                f"{column} drifted" + (" and its drift tracks the drop" if tracks else ""),
                "retrain on recent data" if tracks else None,
            )
    return s


BROKEN_SHIFT = 1.5  # a drift effect (wasserstein, in reference stds) that only breakage makes


def _meaningful_gap(metric: str, gap: float, best: float) -> bool:
    """A difference between versions worth blaming one for: 0.02 on a score or a share,
    10% elsewhere; on the service's own metrics (latency, errors), double."""
    entry = CATALOGUE.get(metric.removeprefix("estimated_"))
    if entry is not None and entry.family == "service":
        return gap > abs(best)
    if entry is not None and entry.unit in ("score", "ratio"):
        return gap > 0.02
    return gap > 0.1 * abs(best)


def _version_shift(inv: Investigation, s: Step) -> bool:
    """A version whose outputs differ from the established version's on the same traffic,
    at (or up to a day before) the window under triage."""
    cols = inv.model.columns
    for output in dict.fromkeys(c for c in (cols.score, cols.prediction) if c):
        if _version_shift_of(inv, s, output):
            return True
    return False


def _version_shift_of(inv: Investigation, s: Step, score: str) -> bool:
    found = inv.m.by_version.get(("version_shift", score), {})
    # At or up to a day before the window under triage; shorter windows inside it count.
    recent = [p for p in sorted(found) if inv.before - inv.size <= p < inv.w + inv.size]
    for p in reversed(recent):
        for version, row in sorted(found[p].items()):
            if row.status != "drifted":
                continue
            base = row.detail.removeprefix("against version ").split(" ")[0]
            inv.vote(
                "model",
                6,
                f"version {version}'s {score} differs from version {base}'s on the same traffic "
                f"(effect {_num(row.value) or 0:.2g}, {row.detail})",
                f"roll back to version {base}",
            )
            s.findings.append(f"version {version}'s {score} differs from version {base}'s")
            s.evidence.append(
                {"metric": "version_shift", "version": version, "value": _num(row.value)}
            )
            return True
    return False


def model(inv: Investigation) -> Step:
    s = Step(
        3,
        "Model",
        "did the model change: a new version, calibration, scores, estimate vs labels?",
    )
    m, w = inv.m, inv.w
    base = inv.metric.removeprefix("estimated_")
    by_version = m.by_version.get((inv.metric, inv.column), {})
    values = {
        v: x
        for v, r in by_version.get(w, {}).items()
        if v != "*" and (x := _num(r.value)) is not None
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
                f"version {v}: {x:.3g} on {by_version[w][v].sample_size:,} events"
                for v, x in sorted(values.items())
            )
        )
        best = min(values, key=lambda v: inv.worse(values[v], 0.0))
        worst = max(values, key=lambda v: inv.worse(values[v], 0.0))
        gap = inv.worse(values[worst], values[best])
        if _meaningful_gap(inv.metric, gap, values[best]):
            since = first_seen.get(worst)
            when = f", serving since {since:%Y-%m-%d %H:%M}" if since else ""
            inv.vote(
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
            usual = m.usual(inv.metric, inv.before, inv.column)
            if usual is not None and _meaningful_gap(
                inv.metric, inv.worse(values[version], usual), usual
            ):
                old = sorted(before)[-1]
                inv.vote(
                    "model",
                    5,
                    f"version {version} replaced version {old} and does worse "
                    f"({values[version]:.3g} against {usual:.3g})",
                    f"roll back to version {old}",
                )
                s.findings.append(f"version {version} replaced version {old}")
                blamed = True
    if not blamed:
        blamed = _version_shift(inv, s)
    ece = m.value("expected_calibration_error", w)
    usual_ece = m.usual("expected_calibration_error", inv.before)
    if ece is not None and usual_ece is not None and ece - usual_ece > 0.03:
        s.findings.append(f"calibration error {ece:.3f} (usually {usual_ece:.3f})")
        inv.vote("model", 1, f"calibration worsened ({ece:.3f} vs {usual_ece:.3f})")
    score = inv.model.columns.score or inv.model.columns.prediction
    scores_moved = False
    if score:
        row = m.row("drift", w, score)
        if row is not None and row.status == "drifted":
            scores_moved = True
            s.findings.append(f"the scores drifted (distance {_num(row.value) or 0:.2g})")
            s.evidence.append({"metric": "drift", "column": score, "value": _num(row.value)})
    realized = m.value(base, w)
    estimate = m.value(f"estimated_{base}", w)
    usual_realized = m.usual(base, inv.before)
    usual_estimate = m.usual(f"estimated_{base}", inv.before)
    concept = inv.concept
    if None not in (realized, estimate, usual_realized, usual_estimate):
        assert realized is not None and estimate is not None
        assert usual_realized is not None and usual_estimate is not None
        realized_drop = inv.worse(realized, usual_realized)
        estimate_drop = inv.worse(estimate, usual_estimate)
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
        if concept is None and realized_drop > 0.02 and estimate_drop < realized_drop / 3:
            concept = (
                f"labels say {base} fell to {realized:.3g} while the scores predicted "
                f"{estimate:.3g}: the link between inputs and outcome changed"
            )
        elif realized_drop > 0.02 and estimate_drop >= realized_drop / 2:
            inv.vote("data", 1, "the drop shows in the scores' own estimate too: the inputs moved")
    if concept is None or blamed or inv.immature:
        pass  # a worse version, or labels not yet in, explain the gap
    elif scores_moved:
        # Inputs moved into a region where the model is wrong, and its estimate cannot see
        # that: a covariate shift the data step weighs, not a change of what scores mean.
        s.findings.append(
            "the estimate held while the labels dropped, but the scores moved too: the "
            "inputs changed, not only their relation to the outcome"
        )
    else:
        inv.vote(
            "model",
            3,
            concept,
            "retrain on recent labelled data: the relation the model learnt changed",
        )
        s.findings.append(
            "the estimate held while the labels dropped: the relation "
            "between inputs and outcome changed (concept shift)"
        )
    return s


def infrastructure(inv: Investigation) -> Step:
    s = Step(4, "Infrastructure", "did serving slow down, fail or lose traffic?")
    m, w = inv.m, inv.w
    latency = inv.model.columns.latency or ""
    for q in ("latency_p99", "latency_p90"):
        now = m.value(q, w, latency)
        usual = m.usual(q, inv.before, latency)
        if now is not None and usual:
            s.evidence.append({"metric": q, "value": now, "usual": usual})
            if now > 1.5 * usual:
                s.findings.append(f"{q.replace('_', ' ')} {now:,.0f} ms (usually {usual:,.0f} ms)")
                inv.vote(
                    "infrastructure",
                    4 if q == "latency_p99" else 2,
                    f"{q.replace('_', ' ')} is {now / usual:.1f}x usual ({now:,.0f} ms)",
                    "fix the serving latency (capacity, a slow dependency); model metrics follow",
                )
            break
    errors = m.value("error_rate", w)
    usual_errors = m.usual("error_rate", inv.before)
    if errors is not None and usual_errors is not None:
        s.evidence.append({"metric": "error_rate", "value": errors, "usual": usual_errors})
        if errors - usual_errors > 0.02:
            s.findings.append(f"{errors:.1%} of requests failed (usually {usual_errors:.1%})")
            inv.vote(
                "infrastructure",
                4,
                f"{errors:.1%} of requests failed (usually {usual_errors:.1%})",
                "fix the failing requests in the serving path",
            )
    volume = m.value("volume_ratio", w)
    if volume is not None and volume < 0.5:
        s.findings.append(f"traffic at {volume:.0%} of recent windows")
    return s


def where(inv: Investigation) -> Step:
    s = Step(5, "Where", "which segments account for the change?")
    m, w = inv.m, inv.w
    total_rows = m.value("row_count", w) or 0.0
    contributions = []
    for seg in m.segments(inv.metric, inv.column):
        now = m.value(inv.metric, w, inv.column, seg)
        usual = m.usual(inv.metric, inv.before, inv.column, seg)
        rows = m.value("row_count", w, "", seg) or 0.0
        if now is None or usual is None or not total_rows:
            continue
        share = rows / total_rows
        contributions.append((share * inv.worse(now, usual), seg, now, usual, share))
    by_column: dict[str, list[tuple[float, tuple[str, str], float, float, float]]] = defaultdict(
        list
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
        clear = explained >= 0.6 and top[4] <= 0.6 and inv.worse(top[2], top[3]) > 0
        if clear and (concentrated is None or explained > concentrated[0]):
            concentrated = (explained, top)
    if concentrated is not None:
        explained, (_, seg, now, usual, share) = concentrated
        inv.segment = seg
        where = f"{seg[0]}={seg[1]}"
        s.findings.append(
            f"{where} accounts for {explained:.0%} of the change with "
            f"{share:.0%} of the traffic ({now:.3g}, usually {usual:.3g})"
        )
        drifted = [
            c
            for c in inv.m.columns("drift", seg)
            if (r := inv.m.row("drift", w, c, seg)) is not None
            and r.status == "drifted"
            and c in {f.name for f in inv.model.columns.features}
        ]
        if drifted:
            inv.vote(
                "data",
                3,
                f"the drop is concentrated in {where}, where {', '.join(drifted)} drifted",
                f"retrain on recent data, or add a guardrail for {where} meanwhile",
            )
            s.findings.append(f"in {where}, {', '.join(drifted)} drifted")
        else:
            inv.vote(
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
        if metric == "weak_slice" and col and (r := found.get(w)) is not None
    ]
    worst = sorted(slices, key=lambda r: -(_num(r.value) or 0))[:3]
    for r in worst:
        s.findings.append(f"weak slice: {r.column} ({r.detail})")
        s.evidence.append({"weak_slice": r.column, "value": _num(r.value)})
    if inv.slices and inv.metric != "weak_slice" and concentrated is None and inv.feature is None:
        # A drop of the whole that a slice accounts for, with no input drifted: the
        # model fails there (a concept shift in that slice), however diluted the whole is.
        r = inv.slices[0]
        began = inv.slice_began.get(r.column, r.window_start)
        inv.vote(
            "model",
            3,
            f"since {began:%Y-%m-%d} the model does significantly worse on {r.column} "
            f"than elsewhere, with no input drifted ({r.detail})",
            f"look at {r.column}: retrain with more of it, or add a guardrail there",
        )
    if worst and inv.metric == "weak_slice" and concentrated is None:
        # The alert is the slice: the model fails there while the rest is as it was.
        inv.vote(
            "model",
            1 if worst[0].provisional else 2,  # less while its labels are still arriving
            f"the model does worse on {worst[0].column} than elsewhere ({worst[0].detail})",
            f"look at {worst[0].column}: retrain with more of it, or add a guardrail there",
        )
    return s


def business(inv: Investigation) -> Step:
    s = Step(6, "Business", "did the outcomes the model exists for move?")
    m, w = inv.m, inv.w
    for outcome in m.columns("outcome_rate"):
        now = m.value("outcome_rate", w, outcome)
        past = m.history("outcome_rate", inv.before, outcome)
        if now is None or len(past) < 3:
            continue
        usual = statistics.median(past)
        spread = statistics.pstdev(past) or abs(usual) * 0.05 or 1e-9
        s.evidence.append(
            {"metric": "outcome_rate", "column": outcome, "value": now, "usual": usual}
        )
        # Beyond its noise, and by a tenth or more: a rate over thousands of events has a
        # small spread, and a move of a few percent is not what changed the model's metric.
        if abs(now - usual) > max(3 * spread, MIN_OUTCOME_MOVE * abs(usual)):
            s.findings.append(f"{outcome}: {now:.2%} of events (usually {usual:.2%})")
            row = m.row("outcome_rate", w, outcome)
            if row is not None and row.provisional:  # still arriving: not yet comparable
                s.findings.append(f"{outcome} is still arriving for this window")
                continue
            inv.vote("business", 1.5, f"{outcome} moved to {now:.2%} (usually {usual:.2%})")
    for name in ("net_value", "cost"):
        amount = m.value(name, w)
        typical = m.usual(name, inv.before)
        if amount is not None and typical is not None:
            s.evidence.append({"metric": name, "value": amount, "usual": typical})
            if name == "cost" and typical and amount > 1.2 * typical:
                s.findings.append(
                    f"the cost of the model's mistakes: {amount:,.0f} (usually {typical:,.0f})"
                )
    return s


# -------------------------------------------------------------------------------------------


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


__all__ = ["business", "data", "infrastructure", "model", "where"]
