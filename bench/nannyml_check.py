"""Watchkeeper's performance estimation without labels against NannyML's CBPE, on NannyML's
own synthetic binary-classification datasets, chunk by chunk.

    python bench/nannyml_check.py                      # both datasets
    python bench/nannyml_check.py --dataset car_loan --json out.json

NannyML is not a dependency: its wheel (``nannyml==0.13.1``, which bundles the datasets) is
fetched once with ``pip download --no-deps`` into ``~/.cache/watchkeeper-bench`` (or
``$WATCHKEEPER_BENCH_CACHE``) and only its CSV files are read. NannyML's own outputs are not
recomputed: they are the numbers NannyML published in its tutorials (``PUBLISHED`` below,
each with the notebook and commit it was copied from).

Chunks and windows. NannyML's tutorials chunk by size (``chunk_size=5000``): rows in order,
5,000 at a time, whatever time they span. Watchkeeper's windows are fixed UTC-aligned
durations. The car loan's timestamps are evenly spaced (523.152 s), so a 2,615,760 s window
would fit only once the data is shifted to start on a window edge; the work-from-home
dataset's are irregular, so no duration holds 5,000 rows each time. The script therefore
synthesises timestamps: chunk ``i`` is day ``i`` (UTC) and its ``k``-th row is at
``k × 17.28 s`` into the day, in the data's own order, so each 1-day window is exactly one
NannyML chunk (the reference needs no timestamps). Labels for every analysis row are
ingested too, so each window's realized value is watchkeeper's own, checked against
scikit-learn on the same rows and (car loan) against NannyML's published realized values.

The two datasets hold the same scores and labels row for row; they differ in their
features and in where ``y_pred`` cuts the score (0.65 and 0.48), so the second checks F1 at
another cut and NannyML's older estimate of ROC AUC (see ``WFH_ESTIMATED``).

Printed per window: watchkeeper's estimate with its 95% interval, its band (the judged
``threshold``) and status; NannyML's published estimate, thresholds and alert; the
realized value; and what the status would be with a band fixed by the reference (its sd that
of a window of as many events with the reference's own score mix, sampling error only, as
NannyML's thresholds are fixed at fit). Then per metric: how often ``degraded`` agrees with
NannyML's alert, the mean absolute difference of the estimates, and the sds behind each band.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

import watchkeeper
from watchkeeper.config import parse_config
from watchkeeper.profiles.counts import score_bins
from watchkeeper.reference.estimators import estimator
from watchkeeper.stats import estimation as est
from watchkeeper.stats.performance import Z95

NANNYML = "nannyml==0.13.1"
CHUNK = 5000
T0 = datetime(2024, 1, 1, tzinfo=UTC)  # day 0 of the synthesised windows
METRICS = ("roc_auc", "accuracy", "f1")


def cache_dir() -> Path:
    return Path(
        os.environ.get("WATCHKEEPER_BENCH_CACHE", Path.home() / ".cache" / "watchkeeper-bench")
    )


def cached_wheel(cache: Path) -> Path | None:
    version = NANNYML.split("==")[1]
    found = sorted(cache.glob(f"nannyml-{version}-*.whl"))
    return found[0] if found else None


def wheel(cache: Path) -> Path:
    """NannyML's wheel, downloaded (no dependencies) into the cache the first time."""
    found = cached_wheel(cache)
    if found is not None:
        return found
    cache.mkdir(parents=True, exist_ok=True)
    print(f"downloading {NANNYML} (its wheel only, for the datasets) into {cache}", flush=True)
    cmd = [sys.executable, "-m", "pip", "download", NANNYML, "--no-deps", "-d", str(cache)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = cached_wheel(cache)
    if done.returncode != 0 or found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SystemExit(
            f"could not download {NANNYML} from PyPI (offline?): {' / '.join(tail)}\n"
            f"put nannyml-0.13.1-py3-none-any.whl in {cache} by hand, or set "
            "WATCHKEEPER_BENCH_CACHE to a folder that has it"
        )
    return found


# -- the datasets -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[str, str, str]  # reference, analysis, analysis targets (in nannyml/datasets/data)
    label: str
    threshold: float  # the cut y_pred is made at (y_pred = score >= threshold in every row)
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    boolean: tuple[str, ...]


DATASETS = {
    "car_loan": Dataset(
        "car_loan",
        (
            "synthetic_car_loan_reference.csv",
            "synthetic_car_loan_analysis.csv",
            "synthetic_car_loan_analysis_target.csv",
        ),
        label="repaid",
        threshold=0.65,
        numeric=("car_value", "debt_to_income_ratio", "loan_length", "driver_tenure"),
        categorical=("salary_range", "size_of_downpayment"),
        boolean=("repaid_loan_on_prev_car",),
    ),
    # nml.load_synthetic_binary_classification_dataset(), "work from home": the car loan's
    # scores and labels row for row (other features), its predictions cut at 0.48, not 0.65
    "work_from_home": Dataset(
        "work_from_home",
        (
            "synthetic_sample_reference.csv",
            "synthetic_sample_analysis.csv",
            "synthetic_sample_analysis_gt.csv",
        ),
        label="work_home_actual",
        threshold=0.48,
        numeric=(
            "distance_from_office",
            "gas_price_per_litre",
            "public_transportation_cost",
            "tenure",
        ),
        categorical=("salary_range", "workday"),
        boolean=("wfh_prev_workday",),
    ),
}


def load(whl: Path, ds: Dataset) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, analysis with its labels joined by id), as NannyML's loaders read them."""
    with zipfile.ZipFile(whl) as z:
        ref, ana, tgt = (
            pd.read_csv(BytesIO(z.read(f"nannyml/datasets/data/{f}"))) for f in ds.files
        )
    analysis = ana.merge(tgt, on="id", how="left", validate="one_to_one")
    for frame in (ref, analysis):
        # y_pred is the score cut at the threshold in every row of both datasets
        assert (frame.y_pred == (frame.y_pred_proba >= ds.threshold - 1e-9)).all(), ds.name
    return ref, analysis


# -- NannyML's published outputs ----------------------------------------------------------------

REPO = "https://github.com/NannyML/nannyml/blob"
CAR_LOAN_ESTIMATED = (
    f"{REPO}/11ef5c86ca892fd178ff4158a70a14da99747acf/docs/example_notebooks/"
    "Tutorial%20-%20Estimating%20Standard%20Performance%20Metrics%20-%20Binary%20Classification.ipynb"
    " (cell 5, analysis chunks; NannyML v0.10.7+, rendered 2024-06-07; the page "
    "https://nannyml.readthedocs.io/en/stable/tutorials/performance_estimation/"
    "binary_performance_estimation/standard_metric_estimation.html)"
)
CAR_LOAN_REALIZED = (
    f"{REPO}/11ef5c86ca892fd178ff4158a70a14da99747acf/docs/example_notebooks/"
    "Tutorial%20-%20Calculating%20Standard%20Metrics%20-%20Binary%20Classification.ipynb"
    " (cell 5: PerformanceCalculator on the analysis chunks with their targets)"
)
WFH_ESTIMATED = (
    f"{REPO}/06c564267581f50571cf2bb730bfa676512334a8/docs/example_notebooks/"
    "Tutorial%20-%20Estimating%20Performance%20-%20Binary%20Classification.ipynb"
    " (cell 4; NannyML v0.8.3+, 2023-02-19, before the tutorials moved to the car loan). "
    "Its estimated roc_auc is NannyML's older one, which ranked events by the calibrated "
    "probability; since NannyML PR #374 (2024-03, commit 70aecce6) it ranks them by the "
    "model's score, as watchkeeper does, so expect a difference there and nowhere else"
)

# Per metric: (lower_threshold, upper_threshold), then per analysis chunk (estimate, alert).
# The thresholds are the mean ± 3 sd of the metric *realized* on the ten reference chunks
# (nannyml/performance_estimation/confidence_based/metrics.py, Metric.fit; thresholds.py,
# StandardDeviationThreshold: np.nanmean ± 3 · np.nanstd).
PUBLISHED: dict[str, dict[str, Any]] = {
    "car_loan": {
        "source": CAR_LOAN_ESTIMATED,
        "roc_auc": {
            "thresholds": (0.963317, 0.97866),
            "chunks": [
                (0.970744, False), (0.971011, False), (0.971407, False), (0.971091, False),
                (0.971123, False), (0.961090, True), (0.961825, True), (0.961073, True),
                (0.962533, True), (0.961316, True),
            ],
        },
        "accuracy": {
            "thresholds": (0.935859, 0.951421),
            "chunks": [
                (0.941792, False), (0.943321, False), (0.945492, False), (0.944816, False),
                (0.944645, False), (0.910714, True), (0.911149, True), (0.911193, True),
                (0.914389, True), (0.911731, True),
            ],
        },
        "f1": {
            "thresholds": (0.93466, 0.95085),
            "chunks": [
                (0.943030, False), (0.941324, False), (0.943574, False), (0.943159, False),
                (0.944204, False), (0.911753, True), (0.911766, True), (0.911661, True),
                (0.913763, True), (0.914751, True),
            ],
        },
        # NannyML's realized values (its PerformanceCalculator), to check the data and chunks
        "realized_source": CAR_LOAN_REALIZED,
        "realized": {
            "roc_auc": [0.970962, 0.970248, 0.976282, 0.967721, 0.969886,
                        0.96005, 0.95853, 0.959041, 0.963094, 0.957556],
            "accuracy": [0.9422, 0.9422, 0.9502, 0.9436, 0.941,
                         0.9146, 0.9156, 0.9144, 0.9224, 0.9122],
            "f1": [0.943344, 0.940178, 0.948201, 0.942142, 0.940488,
                   0.913685, 0.914954, 0.913395, 0.920589, 0.913498],
        },
    },
    "work_from_home": {
        "source": WFH_ESTIMATED,
        "roc_auc": {
            "thresholds": (0.963317, 0.97866),
            "chunks": [
                (0.968631, False), (0.969044, False), (0.969444, False), (0.969047, False),
                (0.968873, False), (0.960478, True), (0.961134, True), (0.960536, True),
                (0.961869, True), (0.960537, True),
            ],
        },
        "f1": {
            "thresholds": (0.935047, 0.961094),
            "chunks": [
                (0.948555, False), (0.946578, False), (0.948807, False), (0.947655, False),
                (0.948834, False), (0.923233, True), (0.923596, True), (0.922902, True),
                (0.924172, True), (0.924915, True),
            ],
        },
    },
}  # fmt: skip


def sklearn_metric(name: str, y: Any, score: Any, pred: Any) -> float:
    if name == "roc_auc":
        return float(skm.roc_auc_score(y, score))
    if name == "accuracy":
        return float(skm.accuracy_score(y, pred))
    return float(skm.f1_score(y, pred))


def reference_thresholds(ref: pd.DataFrame, ds: Dataset, name: str) -> tuple[float, float, float]:
    """NannyML's thresholds recomputed from the reference (mean ± 3 sd over its 5,000-row
    chunks of the realized metric), and that sd: checks the reference is the one it used."""
    values = np.array(
        [
            sklearn_metric(name, c[ds.label], c.y_pred_proba, c.y_pred)
            for c in (ref.iloc[i : i + CHUNK] for i in range(0, len(ref), CHUNK))
        ]
    )
    mean, sd = float(values.mean()), float(values.std())
    return mean - 3 * sd, mean + 3 * sd, sd


# -- watchkeeper ------------------------------------------------------------------------------


def config_yaml(ds: Dataset) -> str:
    features = "\n".join(
        f"        - {{name: {n}, kind: {kind}}}"
        for kind, names in (
            ("numeric", ds.numeric),
            ("categorical", ds.categorical),
            ("boolean", ds.boolean),
        )
        for n in names
    )
    return f"""\
engine: {{path: store.duckdb}}
models:
  - name: {ds.name}
    task: binary_classification
    threshold: {ds.threshold}
    columns:
      event_id: id
      timestamp: ts
      features:
{features}
      score: y_pred_proba
      prediction: y_pred
    labels:
      column: {ds.label}
      max_delay: 1d
    monitoring:
      window: 1d
      min_labels: 50
"""


def synthesised_times(n: int) -> pd.Series:
    """Chunk i on day i, its k-th row k × 86,400 / 5,000 s into the day (exact in µs)."""
    i = np.arange(n)
    step_us = 86_400_000_000 // CHUNK
    offsets = (i // CHUNK) * 86_400_000_000 + (i % CHUNK) * step_us
    return pd.Series(pd.Timestamp(T0) + pd.to_timedelta(offsets, unit="us"))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def split_histogram(frame: pd.DataFrame) -> np.ndarray[Any, Any]:
    """Events per score bin, those predicted 0 then those predicted 1, as a run counts them
    (``tasks.binary.histograms``)."""
    bins = score_bins(frame.y_pred_proba.to_numpy()) + 100 * frame.y_pred.to_numpy()
    return np.bincount(bins, minlength=200).astype(float)


def sd_of(found: Any) -> float:
    return float((found.upper - found.lower) / (2 * Z95))


def alternative_sds(
    calibration: est.CalibrationMap, ref: pd.DataFrame, analysis: pd.DataFrame
) -> dict[str, list[dict[str, float]]]:
    """Per metric and window, through watchkeeper's own pure functions: the estimate and
    its sd recomputed from the window's histogram (to check the map is the run's), and the
    sd a window of as many events *with the reference's score mix* has, with and without
    the calibration map's error. The latter is a band fixed by the reference, as NannyML's
    is; the run's is the window's own."""
    reference = split_histogram(ref)
    out: dict[str, list[dict[str, float]]] = {m: [] for m in METRICS}
    for i in range(0, len(analysis), CHUNK):
        window = split_histogram(analysis.iloc[i : i + CHUNK])
        mine = est.one_vs_rest(window, calibration)
        like_ref = est.one_vs_rest(reference * window.sum() / reference.sum(), calibration)
        sampling = replace(like_ref, block=None, block_var=None)
        for name in METRICS:
            found = est.ESTIMATES[name](mine)
            out[name].append(
                {
                    "value": float(found.value),
                    "sd_window": sd_of(found),
                    "sd_window_sampling": sd_of(
                        est.ESTIMATES[name](replace(mine, block=None, block_var=None))
                    ),
                    "sd_reference": sd_of(est.ESTIMATES[name](like_ref)),
                    "sd_reference_sampling": sd_of(est.ESTIMATES[name](sampling)),
                }
            )
    return out


def watchkeeper_rows(
    ds: Dataset, ref: pd.DataFrame, analysis: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, list[dict[str, float]]], str]:
    """Every metric row of a run over the analysis windows (whole traffic), the alternative
    bands' sds from the reference's stored calibration map, and the map's note."""
    days = -(-len(analysis) // CHUNK)
    clock = Clock(T0 + timedelta(days=days + 2))  # every window closed, every label final
    events = analysis.drop(columns=[ds.label, "timestamp"]).assign(
        ts=synthesised_times(len(analysis))
    )
    with tempfile.TemporaryDirectory() as tmp:
        cfg = parse_config(config_yaml(ds), base_dir=Path(tmp))
        with watchkeeper.open(cfg, clock=clock) as ws:
            ws.set_reference(ds.name, ref.drop(columns=["id", "timestamp"]))
            ws.ingest_events(ds.name, events)
            ws.ingest_labels(ds.name, analysis[["id", ds.label]])
            table = ws.run(ds.name).metrics
            profile = ws.reference_profile(ds.name)
            assert profile is not None
            calibration = estimator(ws.store, ws.config.model(ds.name), profile, clock())
    frame = table.to_pandas()
    return (
        frame[frame.segment_column == "*"],
        alternative_sds(calibration, ref, analysis),
        calibration.note,
    )


def window_of(frame: pd.DataFrame) -> pd.Series:
    start = pd.to_datetime(frame.window_start, utc=True)
    return ((start - pd.Timestamp(T0)) // pd.Timedelta(days=1)).astype(int)


# -- the comparison -----------------------------------------------------------------------------


def compare(ds: Dataset, whl: Path) -> dict[str, Any]:
    ref, analysis = load(whl, ds)
    published = PUBLISHED[ds.name]
    rows, alternatives, note = watchkeeper_rows(ds, ref, analysis)
    rows = rows.assign(chunk=window_of(rows))
    chunks = [analysis.iloc[i : i + CHUNK] for i in range(0, len(analysis), CHUNK)]
    out: dict[str, Any] = {"dataset": ds.name, "source": published["source"], "metrics": {}}
    print(f"\n== {ds.name}: reference {len(ref):,} rows, analysis {len(analysis):,} rows "
          f"in {len(chunks)} windows of {CHUNK:,}; {note}")  # fmt: skip
    print(f"   NannyML's numbers: {published['source']}")
    if "realized" in published:
        print(f"   NannyML's realized values (checked): {published['realized_source']}")
    for name in METRICS:
        if name not in published:
            continue
        lo, hi = published[name]["thresholds"]
        rlo, rhi, ref_sd = reference_thresholds(ref, ds, name)
        # the reference is the one NannyML's thresholds came from
        assert abs(rlo - lo) < 2e-6 and abs(rhi - hi) < 2e-6, (name, rlo, rhi, lo, hi)
        est_rows = rows[rows.metric == f"estimated_{name}"].set_index("chunk").sort_index()
        real_rows = rows[rows.metric == name].set_index("chunk").sort_index()
        ref_value = sklearn_metric(name, ref[ds.label], ref.y_pred_proba, ref.y_pred)
        print(f"\n  {name}: NannyML's thresholds [{lo:.4f}, {hi:.4f}] = mean ± 3 × {ref_sd:.5f} "
              f"(the sd of the realized {name} over the reference's 10 chunks); watchkeeper's "
              f"band: the reference's {ref_value:.4f} ± 3 sd of a window this size drawn like the reference")  # fmt: skip
        print("  win | watchkeeper estimate [95%]   edge    status   | NannyML   diff       alert "
              "| realized | agree | fixed-band edge  status")  # fmt: skip
        per_chunk = []
        for i, chunk in enumerate(chunks):
            e, r, alt = est_rows.loc[i], real_rows.loc[i], alternatives[name][i]
            n_est, n_alert = published[name]["chunks"][i]
            exact = sklearn_metric(name, chunk[ds.label], chunk.y_pred_proba, chunk.y_pred)
            assert abs(r.value - exact) < 1e-9, (name, i, r.value, exact)
            if "realized" in published:
                assert abs(exact - published["realized"][name][i]) < 1e-6, (name, i, exact)
            # the recomputation reads the run's own calibration map
            assert abs(alt["value"] - e.value) < 1e-9, (name, i, alt["value"], e.value)
            assert abs(alt["sd_window"] - (e.upper - e.lower) / (2 * Z95)) < 1e-9
            fixed_edge = ref_value - 3 * alt["sd_reference_sampling"]
            record = {
                "window": i,
                "rows": int(e.sample_size),
                "watchkeeper": float(e.value),
                "lower": float(e.lower),
                "upper": float(e.upper),
                "edge": float(e.threshold),
                "status": str(e.status),
                "nannyml": n_est,
                "nannyml_alert": n_alert,
                "difference": float(e.value) - n_est,
                "realized": exact,
                "agree": (e.status == "degraded") == n_alert,
                "sd_window": alt["sd_window"],
                "sd_window_sampling": alt["sd_window_sampling"],
                "sd_reference": alt["sd_reference"],
                "sd_reference_sampling": alt["sd_reference_sampling"],
                "fixed_edge": fixed_edge,
                "fixed_degraded": bool(e.value < fixed_edge),
            }
            per_chunk.append(record)
            print(
                f"  {i:>3} | {e.value:.4f} [{e.lower:.4f}, {e.upper:.4f}]  {e.threshold:.4f} "
                f"{e.status:>8} | {n_est:.4f}  {record['difference']:+.6f} {n_alert!s:>5} "
                f"| {exact:.4f}   | {'yes' if record['agree'] else 'NO':>5} | {fixed_edge:.4f}  "
                f"{'degraded' if record['fixed_degraded'] else 'ok':>8}"
            )
        n = len(per_chunk)
        agree = sum(c["agree"] for c in per_chunk)
        fixed_agree = sum(c["fixed_degraded"] == c["nannyml_alert"] for c in per_chunk)
        mad = float(np.mean([abs(c["difference"]) for c in per_chunk]))
        summary = {
            "agree": agree,
            "fixed_band_agree": fixed_agree,
            "windows": n,
            "mean_abs_difference": mad,
            "max_abs_difference": float(max(abs(c["difference"]) for c in per_chunk)),
            "nannyml_thresholds": (lo, hi),
            "nannyml_reference_sd": ref_sd,
            "watchkeeper_reference_value": ref_value,
            "chunks": per_chunk,
        }
        out["metrics"][name] = summary

        def span(key: str, which: list[dict[str, Any]]) -> str:
            values = [c[key] for c in which]
            return f"{min(values):.5f}-{max(values):.5f}"

        calm = [c for c in per_chunk if not c["nannyml_alert"]]
        drifted = [c for c in per_chunk if c["nannyml_alert"]]
        print(
            f"  -> degraded agrees with NannyML's alert in {agree} of {n} windows "
            f"({fixed_agree} of {n} with the fixed band); mean |watchkeeper - NannyML| "
            f"{mad:.6f} (max {summary['max_abs_difference']:.6f})\n"
            f"     sd behind the band: NannyML {ref_sd:.5f}; watchkeeper's run: the window's "
            f"own, {span('sd_window', calm)} in the windows without alert, "
            f"{span('sd_window', drifted)} in those with (of which the calibration map's "
            f"error: sampling alone {span('sd_window_sampling', per_chunk)}); fixed from the "
            f"reference at 5,000 events: {span('sd_reference_sampling', per_chunk)} "
            f"(with calibration error {span('sd_reference', per_chunk)})"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    parser.add_argument("--json", type=Path, help="write the comparison here as JSON")
    args = parser.parse_args()
    whl = wheel(cache_dir())
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    results = [compare(DATASETS[n], whl) for n in names]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
