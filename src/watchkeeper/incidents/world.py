"""Production histories of two models, drawn from a seed: a scored binary classifier (a
payment-risk model) and a regression model (delivery minutes).

The classifier's world: traffic with a daily and a weekly cycle; five features; the model
is right on the world it was trained on (its score is the true probability), so whatever
changes later is the incident's doing. Labels arrive a day or two after the event (a
tenth never do); the business outcome is a conversion of the approved requests, and a
chargeback for each missed positive once its label is known.

An incident is a function that changes the drawn columns from its start on (see
``incidents.classes``); this module only draws the calm world and hands the arrays over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

Array = np.ndarray[Any, Any]

START = datetime(2026, 5, 4, tzinfo=UTC)  # a Monday
CHANNELS = ["web", "app", "store"]
REGIONS = ["north", "south", "east", "west"]
DEVICES = ["ios", "android", "desktop"]
AGE_BANDS = ["18-25", "26-40", "41-60", "60+"]
CHANNEL_RISK = {"web": 0.0, "app": -0.3, "store": -0.8}
THRESHOLD = 0.3  # the decision: review above it
CONVERSION = 0.6  # share of approved requests that convert


def sigmoid(x: Array) -> Array:
    found: Array = 1.0 / (1.0 + np.exp(-x))
    return found


def risk_logit(amount: Array, tenure: Array, items: Array, channel: Array) -> Array:
    """The true log-odds of a positive (and, on the calm world, the model's)."""
    chan = np.select([channel == c for c in CHANNELS], [CHANNEL_RISK[c] for c in CHANNELS], 0.0)
    found: Array = (
        -2.3
        + 1.0 * (np.log(np.maximum(amount, 0.01)) - 3.6) / 0.8
        - 0.7 * (np.log1p(np.nan_to_num(tenure, nan=400.0)) - 5.3)
        + 0.25 * (items - 2.5)
        + chan
    )
    return found


def arrivals(
    rng: np.random.Generator, start: datetime, days: int, per_day: float
) -> pd.DatetimeIndex:
    """Event times with a daily cycle (busiest mid-afternoon, quietest at night) and a
    weekly one (weekends 20% quieter), as datetime64[ns, UTC] sorted."""
    hours = np.arange(days * 24)
    hour_of_day = hours % 24
    weekday = (start.weekday() + hours // 24) % 7
    shape = (1 + 0.6 * np.sin(2 * np.pi * (hour_of_day - 9) / 24)) * np.where(weekday >= 5, 0.8, 1)
    rate = per_day / 24 * shape / shape.mean()
    counts = rng.poisson(rate)
    offsets = np.repeat(hours, counts) * 3600.0 + rng.uniform(0, 3600, counts.sum())
    offsets.sort()
    return pd.DatetimeIndex(pd.to_datetime(start) + pd.to_timedelta(offsets, unit="s"))


@dataclass
class Draw:
    """The columns of one stretch of the classifier's world, before and after an incident
    changed them: ``true_*`` is what really happened, the rest is what was logged."""

    ts: pd.DatetimeIndex
    columns: dict[str, Array]  # logged inputs and outputs, by column
    truth_logit: Array  # the world's log-odds of a positive
    model_logit: Array  # what the model computes from the logged inputs
    label_delay_days: Array
    labelled: Array  # bool: the label ever arrives
    conversion: Array  # each request's chance to convert when approved
    version: Array
    extra: dict[str, Any] = field(default_factory=dict)


def draw_classifier(rng: np.random.Generator, start: datetime, days: int, per_day: float) -> Draw:
    ts = arrivals(rng, start, days, per_day)
    n = len(ts)
    amount = np.round(rng.lognormal(3.6, 0.8, n), 2)
    tenure = np.floor(rng.exponential(400, n))
    items = 1 + rng.poisson(1.5, n)
    channel = rng.choice(CHANNELS, n, p=[0.5, 0.35, 0.15])
    logit = risk_logit(amount, tenure, items, channel)
    columns: dict[str, Array] = {
        "amount": amount,
        "tenure_days": tenure,
        "items": items.astype(float),
        "channel": channel,
        "is_returning": tenure > 90,
        "region": rng.choice(REGIONS, n, p=[0.3, 0.25, 0.2, 0.25]),
        "device": rng.choice(DEVICES, n, p=[0.4, 0.2, 0.4]),
        "age_band": rng.choice(AGE_BANDS, n, p=[0.2, 0.4, 0.3, 0.1]),
        "latency_ms": np.round(rng.lognormal(np.log(40), 0.3, n), 1),
        "status": np.where(rng.uniform(size=n) < 0.003, "error", "ok").astype(object),
    }
    return Draw(
        ts=ts,
        columns=columns,
        truth_logit=logit.copy(),
        model_logit=logit.copy(),
        label_delay_days=rng.lognormal(np.log(1.5), 0.6, n),
        labelled=rng.uniform(size=n) < 0.9,
        conversion=np.full(n, CONVERSION),
        version=np.full(n, "1", dtype=object),
    )


def rescore(draw: Draw, mask: Array) -> None:
    """The model's log-odds recomputed from the logged inputs where ``mask`` (after an
    incident changed them); a missing tenure is imputed as the model's pipeline does."""
    c = draw.columns
    draw.model_logit = np.where(
        mask,
        risk_logit(c["amount"], c["tenure_days"], c["items"], c["channel"]),
        draw.model_logit,
    )


def finish_classifier(
    draw: Draw, rng: np.random.Generator, prefix: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Events, labels (with their arrival time) and outcomes of a drawn stretch."""
    n = len(draw.ts)
    y = (rng.uniform(size=n) < sigmoid(draw.truth_logit)).astype(int)
    score = np.round(sigmoid(draw.model_logit), 4)
    failed = draw.columns["status"] != "ok"
    ids = np.char.add(prefix, np.arange(n).astype(str))
    events = pd.DataFrame(
        {
            "event_id": ids,
            "timestamp": draw.ts,
            **{k: v for k, v in draw.columns.items() if k not in ("status", "latency_ms")},
            "score": np.where(failed, np.nan, score),
            "prediction": np.where(failed, np.nan, (score >= THRESHOLD).astype(float)),
            "latency_ms": draw.columns["latency_ms"],
            "status": draw.columns["status"],
            "model_version": draw.version,
        }
    )
    events["prediction"] = events["prediction"].astype("Int64")
    arrive = draw.ts + pd.to_timedelta(draw.label_delay_days, unit="D")
    keep = draw.labelled & ~failed
    labels = pd.DataFrame(
        {"event_id": ids[keep], "label": y[keep], "label_timestamp": arrive[keep]}
    )
    approved = ~failed & (score < THRESHOLD)
    converted = approved & (rng.uniform(size=n) < draw.conversion)
    chargeback = approved & (y == 1) & draw.labelled
    outcomes = pd.concat(
        [
            pd.DataFrame(
                {
                    "event_id": ids[converted],
                    "outcome": "conversion",
                    "value": 1.0,
                    "timestamp": draw.ts[converted] + pd.Timedelta(hours=1),
                }
            ),
            pd.DataFrame(
                {
                    "event_id": ids[chargeback],
                    "outcome": "chargeback",
                    "value": 1.0,
                    "timestamp": arrive[chargeback],
                }
            ),
        ],
        ignore_index=True,
    )
    return events, labels, outcomes


# -- the regression model: minutes to deliver ------------------------------------------

CITIES = ["lisbon", "porto", "braga"]
TRAFFIC = ["low", "normal", "heavy"]


@dataclass
class RegressionDraw:
    ts: pd.DatetimeIndex
    columns: dict[str, Array]
    actual: Array  # minutes it really took
    predicted: Array


def draw_regression(
    rng: np.random.Generator, start: datetime, days: int, per_day: float
) -> RegressionDraw:
    ts = arrivals(rng, start, days, per_day)
    n = len(ts)
    distance = np.round(rng.gamma(2.0, 2.5, n), 2)
    traffic = rng.choice(TRAFFIC, n, p=[0.3, 0.5, 0.2])
    factor = np.select([traffic == "low", traffic == "heavy"], [0.8, 1.5], 1.0)
    predicted = 8 + 4.0 * distance * factor
    actual = predicted + rng.normal(0, 3 + 0.4 * distance, n)
    columns: dict[str, Array] = {
        "distance_km": distance,
        "traffic": traffic,
        "city": rng.choice(CITIES, n, p=[0.5, 0.35, 0.15]),
        "latency_ms": np.round(rng.lognormal(np.log(25), 0.3, n), 1),
        "status": np.where(rng.uniform(size=n) < 0.003, "error", "ok").astype(object),
    }
    return RegressionDraw(ts, columns, actual, predicted)


def finish_regression(
    draw: RegressionDraw, rng: np.random.Generator, prefix: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    n = len(draw.ts)
    failed = draw.columns["status"] != "ok"
    ids = np.char.add(prefix, np.arange(n).astype(str))
    events = pd.DataFrame(
        {
            "event_id": ids,
            "timestamp": draw.ts,
            **{k: v for k, v in draw.columns.items() if k not in ("status", "latency_ms")},
            "eta_minutes": np.where(failed, np.nan, np.round(draw.predicted, 1)),
            "latency_ms": draw.columns["latency_ms"],
            "status": draw.columns["status"],
        }
    )
    arrive = draw.ts + pd.to_timedelta(rng.uniform(1, 3, n), unit="h")
    keep = ~failed
    labels = pd.DataFrame(
        {
            "event_id": ids[keep],
            "minutes": np.round(draw.actual[keep], 1),
            "label_timestamp": arrive[keep],
        }
    )
    outcomes = pd.DataFrame(
        {
            "event_id": pd.Series([], dtype=str),
            "outcome": pd.Series([], dtype=str),
            "value": pd.Series([], dtype=float),
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
        }
    )
    return events, labels, outcomes


__all__ = [
    "START",
    "THRESHOLD",
    "Draw",
    "RegressionDraw",
    "arrivals",
    "draw_classifier",
    "draw_regression",
    "finish_classifier",
    "finish_regression",
    "rescore",
    "risk_logit",
    "sigmoid",
]
