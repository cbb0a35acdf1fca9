"""The incident classes: each draws a production history from a seed, plants its incident
with magnitudes and timings drawn from ranges, and says what a monitor should have done
(the ``Truth``). The same class drawn with another seed is another incident of its kind,
which is what detection is measured on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from watchkeeper.incidents.world import (
    AGE_BANDS,
    START,
    Array,
    Draw,
    draw_classifier,
    draw_regression,
    finish_classifier,
    finish_regression,
    rescore,
    risk_logit,
)

Layer = str  # data, model, infrastructure, business (None: nothing is wrong)


@dataclass(frozen=True)
class Truth:
    """What happened and what a good monitor does about it."""

    kind: str
    layer: Layer | None  # the layer triage should name first (None: no incident)
    severity: str | None  # "page": must page; "ticket": must raise a ticket; None: quiet
    start: datetime | None = None
    end: datetime | None = None
    deadline: datetime | None = None  # the first alert of its severity is due by then
    segment: str | None = None  # e.g. "region=east" or "region=west, device=android"
    version: str | None = None
    features: tuple[str, ...] = ()
    note: str = ""


@dataclass
class History:
    """One model's logged history with a planted incident, ready to be replayed."""

    name: str  # e.g. "pipeline_break/2"
    model: str
    task: str
    start: datetime
    days: int
    reference: pd.DataFrame  # training rows with the label (no id, no timestamp)
    events: pd.DataFrame
    labels: pd.DataFrame  # with label_timestamp: when each label arrives
    outcomes: pd.DataFrame  # with timestamp: when each outcome is known
    truth: Truth
    label: str = "label"


CLASSIFIER, REGRESSOR = "payments", "delivery"
QUIET_DAYS = 30  # calm-like histories run a month (three draws: the quarter the targets name)
INCIDENT_DAYS = 18


def _reference(rng: np.random.Generator, per_day: float) -> pd.DataFrame:
    draw = draw_classifier(rng, START - timedelta(days=30), 14, per_day)
    events, labels, _ = finish_classifier(draw, rng, "r")
    ref = events.merge(labels[["event_id", "label"]], on="event_id")
    return ref.drop(columns=["event_id", "timestamp"])


def _classifier(
    kind: str,
    seed: int,
    plant: Callable[[Draw, np.random.Generator, datetime], Truth],
    *,
    days: int = INCIDENT_DAYS,
    per_day: float = 2_400,
    start_day: float | None = None,
) -> History:
    rng = np.random.default_rng([seed, sum(map(ord, kind))])
    reference = _reference(rng, per_day)
    draw = draw_classifier(rng, START, days, per_day)
    start = _start(rng, start_day)
    truth = plant(draw, rng, start)
    events, labels, outcomes = finish_classifier(draw, rng, f"{kind[:3]}{seed}-")
    if kind == "label_stall":
        labels = labels[labels["label_timestamp"] < pd.Timestamp(start)]
    return History(
        f"{kind}/{seed}", CLASSIFIER, "binary_classification", START, days,
        reference, events, labels, outcomes, truth,
    )  # fmt: skip


def _start(rng: np.random.Generator, start_day: float | None) -> datetime:
    """Incidents start between day 9 and day 12, at any hour: nine days of history first,
    enough for the rolling baselines and the same hour of the last week."""
    day, hour = int(rng.integers(9, 13)), int(rng.integers(0, 24))
    return START + (
        timedelta(days=start_day) if start_day is not None else timedelta(days=day, hours=hour)
    )


def _after(draw: Draw, start: datetime, end: datetime | None = None) -> Array:
    ts = draw.ts
    mask = np.asarray(ts >= pd.Timestamp(start))
    if end is not None:
        mask &= np.asarray(ts < pd.Timestamp(end))
    return mask


# -- the planters --------------------------------------------------------------------------


def calm(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    return Truth("calm", None, None)


def pipeline_break(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """A feature pipeline change: one feature arrives in another unit, another goes
    missing in bulk, or a category is renamed (one or two of these at once)."""
    mask = _after(draw, start)
    c = draw.columns
    kinds = list(rng.choice(["unit", "nulls", "rename"], int(rng.integers(1, 3)), replace=False))
    features = []
    if "unit" in kinds:  # cents instead of currency units, or thousands
        factor = float(rng.choice([100.0, 1000.0, 0.01]))
        c["amount"] = np.where(mask, np.round(c["amount"] * factor, 2), c["amount"])
        features.append("amount")
    if "nulls" in kinds:
        share = float(rng.uniform(0.3, 0.9))
        gone = mask & (rng.uniform(size=len(mask)) < share)
        c["tenure_days"] = np.where(gone, np.nan, c["tenure_days"])
        features.append("tenure_days")
    if "rename" in kinds:
        old = str(rng.choice(["app", "store"]))  # a third or a sixth of the traffic
        c["channel"] = np.where(mask & (c["channel"] == old), f"{old}_v2", c["channel"])
        features.append("channel")
    rescore(draw, mask)
    return Truth(
        "pipeline_break", "data", "page", start, None, start + timedelta(hours=24),
        features=tuple(features), note=" and ".join(kinds),
    )  # fmt: skip


def segment_shift(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """A new population in one region (larger baskets from a partner launch) on which the
    model is wrong: it is there that performance falls."""
    region = str(rng.choice(["east", "west", "south"]))
    mask = _after(draw, start) & (draw.columns["region"] == region)
    c = draw.columns
    c["amount"] = np.where(mask, np.round(c["amount"] * rng.uniform(2.5, 4.0), 2), c["amount"])
    rescore(draw, mask)
    # The new customers' risk does not grow with the amount as the old ones' did.
    flat = risk_logit(np.full(mask.sum(), 36.0), c["tenure_days"][mask], c["items"][mask],
                      c["channel"][mask])  # fmt: skip
    draw.truth_logit[mask] = flat + rng.normal(0, 0.8, mask.sum())
    return Truth(
        "segment_shift", "data", "ticket", start, None, start + timedelta(days=5),
        segment=f"region={region}", features=("amount",),
    )  # fmt: skip


def bad_rollout(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """Version 2 goes to half of the traffic, then to all of it a day or three later; it
    ranks worse and scores higher. The inputs do not change."""
    ramp = start + timedelta(days=float(rng.uniform(1, 3)))
    n = len(draw.ts)
    half = _after(draw, start, ramp) & (rng.uniform(size=n) < 0.5)
    v2 = half | _after(draw, ramp)
    draw.version = np.where(v2, "2", draw.version)
    noise = rng.normal(0, rng.uniform(0.7, 1.2), n)
    worse = 0.55 * draw.model_logit + noise + rng.uniform(0.6, 1.2)
    draw.model_logit = np.where(v2, worse, draw.model_logit)
    return Truth(
        "bad_rollout", "model", "page", start, None, start + timedelta(hours=24), version="2",
        note=f"all traffic from {ramp:%m-%d %H:%M}",
    )  # fmt: skip


def serving(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """The serving path slows down several times and times out, for a few hours."""
    end = start + timedelta(hours=float(rng.uniform(2, 6)))
    mask = _after(draw, start, end)
    c = draw.columns
    c["latency_ms"] = np.where(mask, np.round(c["latency_ms"] * rng.uniform(3, 8), 1),
                               c["latency_ms"])  # fmt: skip
    timeout = mask & (rng.uniform(size=len(mask)) < rng.uniform(0.06, 0.2))
    c["status"] = np.where(timeout, "timeout", c["status"])
    return Truth(
        "serving", "infrastructure", "page", start, end, start + timedelta(hours=1),
        note=f"{(end - start).total_seconds() / 3600:.1f} h",
    )  # fmt: skip


def label_stall(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """The label feed stops (the labels are dropped in ``_classifier``): nothing about the
    model changed, so nothing may page."""
    return Truth("label_stall", "data", None, start)


def concept_shift(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """What makes a positive changes (a new fraud pattern): inputs and scores stay as they
    were, realized performance falls as the labels arrive."""
    mask = _after(draw, start)
    c = draw.columns
    strength = rng.uniform(0.6, 0.9)
    new = risk_logit(1.0 / np.maximum(c["amount"], 1) * 1600.0, c["tenure_days"], c["items"],
                     c["channel"])  # fmt: skip
    draw.truth_logit = np.where(mask, (1 - strength) * draw.truth_logit + strength * new,
                                draw.truth_logit)  # fmt: skip
    # Labels covering the changed period: half of its first day's labels have arrived.
    first = _after(draw, start, start + timedelta(days=1)) & draw.labelled
    arrive = draw.ts[first] + pd.to_timedelta(draw.label_delay_days[first], unit="D")
    covered = pd.Timestamp(np.quantile(arrive.asi8, 0.5), tz="UTC").floor("s").to_pydatetime()
    return Truth(
        "concept_shift", "model", "page", start, None, covered + timedelta(days=2),
        note=f"strength {strength:.2f}",
    )  # fmt: skip


def intersection(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """The model fails on west-region android users (about 5% of traffic): neither the
    region nor the device shows it on its own."""
    c = draw.columns
    mask = _after(draw, start) & (c["region"] == "west") & (c["device"] == "android")
    # Their risk runs against the model's ranking, at the same base rate.
    draw.truth_logit[mask] = -(draw.model_logit[mask] + 2.3) - 2.3
    return Truth(
        "intersection", "model", "ticket", start, None, start + timedelta(days=7),
        segment="region=west, device=android",
    )  # fmt: skip


def trivial_shift(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """At ten times the traffic, amounts grow by a few percent: significant, harmless."""
    mask = _after(draw, start)
    c = draw.columns
    c["amount"] = np.where(mask, np.round(c["amount"] * rng.uniform(1.02, 1.05), 2), c["amount"])
    rescore(draw, mask)
    return Truth("trivial_shift", None, None, start, features=("amount",))


def fairness_gap(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """A feature change scores one age group lower than it should: their requests are
    flagged less often and their positives missed more."""
    group = str(rng.choice([AGE_BANDS[0], AGE_BANDS[3]]))
    mask = _after(draw, start) & (draw.columns["age_band"] == group)
    draw.model_logit = np.where(mask, draw.model_logit - rng.uniform(1.2, 2.0), draw.model_logit)
    return Truth(
        "fairness_gap", "model", "ticket", start, None, start + timedelta(days=7),
        segment=f"age_band={group}",
    )  # fmt: skip


def kpi_drop(draw: Draw, rng: np.random.Generator, start: datetime) -> Truth:
    """Approved customers convert less (a competitor's offer): the model is fine."""
    mask = _after(draw, start)
    draw.conversion = np.where(mask, draw.conversion * rng.uniform(0.55, 0.75), draw.conversion)
    return Truth("kpi_drop", "business", "ticket", start, None, start + timedelta(days=5))


CLASSES: dict[str, Callable[[Draw, np.random.Generator, datetime], Truth]] = {
    "calm": calm,
    "pipeline_break": pipeline_break,
    "segment_shift": segment_shift,
    "bad_rollout": bad_rollout,
    "serving": serving,
    "label_stall": label_stall,
    "concept_shift": concept_shift,
    "intersection": intersection,
    "trivial_shift": trivial_shift,
    "fairness_gap": fairness_gap,
    "kpi_drop": kpi_drop,
}
QUIET = {"calm", "label_stall", "trivial_shift"}


def draw(
    kind: str,
    seed: int,
    *,
    days: int | None = None,
    per_day: float = 2_400,
    start_day: float | None = None,
) -> History:
    """One history of an incident class (``CLASSES``, or ``regression_calm``,
    ``regression_break``, ``regression_concept`` for the delivery-time model). Its length,
    traffic and the incident's start (in days from the first) can be set; by default
    quiet classes run ``QUIET_DAYS``, the others ``INCIDENT_DAYS`` with the incident
    starting between day 9 and day 12."""
    if kind.startswith("regression_"):
        return _regression(kind, seed, days or INCIDENT_DAYS, per_day / 2, start_day)
    if kind not in CLASSES:
        known = ", ".join([*CLASSES, *REGRESSION])
        raise ValueError(f"unknown incident class {kind!r}; known: {known}")
    length = days or (QUIET_DAYS if kind in QUIET else INCIDENT_DAYS)
    traffic = per_day * 10 if kind == "trivial_shift" else per_day
    return _classifier(kind, seed, CLASSES[kind], days=length, per_day=traffic, start_day=start_day)


REGRESSION = ("regression_calm", "regression_break", "regression_concept")


def _regression(
    kind: str, seed: int, days: int, per_day: float, start_day: float | None
) -> History:
    if kind not in REGRESSION:
        raise ValueError(f"unknown incident class {kind!r}; known: {', '.join(REGRESSION)}")
    rng = np.random.default_rng([seed, sum(map(ord, kind))])
    ref_draw = draw_regression(rng, START - timedelta(days=30), 14, per_day)
    ref_events, ref_labels, _ = finish_regression(ref_draw, rng, "r")
    reference = ref_events.merge(ref_labels[["event_id", "minutes"]], on="event_id").drop(
        columns=["event_id", "timestamp"]
    )
    d = draw_regression(rng, START, days, per_day)
    start = _start(rng, start_day)
    mask = np.asarray(d.ts >= pd.Timestamp(start))
    truth = Truth("regression_calm", None, None)
    if kind == "regression_break":  # distances in metres
        d.columns["distance_km"] = np.where(mask, d.columns["distance_km"] * 1000,
                                            d.columns["distance_km"])  # fmt: skip
        d.predicted = np.where(mask, 8 + 4.0 * d.columns["distance_km"], d.predicted)
        truth = Truth(kind, "data", "page", start, None, start + timedelta(hours=24),
                      features=("distance_km",))  # fmt: skip
    elif kind == "regression_concept":  # a new road layout: every trip takes longer
        slower = rng.uniform(1.25, 1.5)
        d.actual = np.where(mask, d.actual * slower + 3, d.actual)
        truth = Truth(kind, "model", "page", start, None, start + timedelta(days=2))
    events, labels, outcomes = finish_regression(d, rng, f"{kind[11:14]}{seed}-")
    return History(
        f"{kind}/{seed}", REGRESSOR, "regression", START, days,
        reference, events, labels, outcomes, truth, label="minutes",
    )  # fmt: skip


__all__ = ["CLASSES", "QUIET", "REGRESSION", "History", "Truth", "draw"]
