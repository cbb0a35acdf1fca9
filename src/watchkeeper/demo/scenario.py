"""Sixty days of a production fraud model (and a delivery-time model beside it), with
incidents planted where a monitoring engineer would want them caught.

Deterministic for a seed. The fraud model's world: fraud grows with the amount up to a
point and with how new the account is; the model learnt it from data where amounts were
moderate, so it is right where it was trained and wrong far outside. Labels (confirmed
fraud or not) arrive 2 to 12 days after the event; outcomes are confirmed fraud and manual
reviews.

The incidents, by day (0 is the first day):

- days 0 to 19: calm.
- from day 20, ``product_change``: a checkout change adds a fee to new users' amounts (x3):
  a top feature shifts for new users only, and the model over-flags them.
- days 33 and 34, ``latency``: the serving path slows down eight-fold and times out.
- from day 40, ``segment_failure``: fraud in region ``asia`` moves to small amounts the
  model does not suspect: it quietly fails there while the average looks fine.
- from day 48, ``version_rollout``: version 2 serves half of the traffic and ranks worse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 60
EVENTS_PER_DAY = 2_500

INCIDENTS = {
    "product_change": (20, DAYS),
    "latency": (33, 35),
    "segment_failure": (40, DAYS),
    "version_rollout": (48, DAYS),
}
CALM = (0, 20)

COUNTRIES = ["US", "GB", "DE", "FR", "BR", "IN"]
REGION = {
    "US": "americas",
    "BR": "americas",
    "GB": "europe",
    "DE": "europe",
    "FR": "europe",
    "IN": "asia",
}
CATEGORIES = ["grocery", "travel", "electronics", "fashion", "gaming", "fuel", "pharmacy"]
RISK = {
    "grocery": -0.5,
    "travel": 0.4,
    "electronics": 0.8,
    "fashion": 0.1,
    "gaming": 0.9,
    "fuel": -0.3,
    "pharmacy": -0.6,
}


def active(name: str, day: int) -> bool:
    first, last = INCIDENTS[name]
    return first <= day < last


Array = np.ndarray[Any, Any]


def _logit(amount: Array, new: Array, category: Array) -> Array:
    """The true risk: grows with the (log) amount up to about 400, then falls."""
    x = np.log(amount)
    shape = np.where(x < 6.0, x - 4.0, 2.0 - 1.5 * (x - 6.0))
    risk = np.array([RISK[c] for c in category])
    found: Array = 1.6 * shape + 1.8 * new + 1.5 * risk - 3.3
    return found


def _model_logit(amount: Array, new: Array, category: Array) -> Array:
    """What the model learnt: linear in the log amount (right below 400, wrong above)."""
    risk = np.array([RISK[c] for c in category])
    found: Array = 1.6 * (np.log(amount) - 4.0) + 1.8 * new + 1.5 * risk - 3.3
    return found


@dataclass
class Day:
    events: pd.DataFrame
    labels: pd.DataFrame  # with the time each label arrives
    outcomes: pd.DataFrame


def fraud_day(rng: np.random.Generator, day: int, n: int, prefix: str = "") -> Day:
    start = START + timedelta(days=day)
    seconds = np.sort(rng.uniform(0, 86_399, n))
    ts = pd.to_datetime(start) + pd.to_timedelta(seconds, unit="s")
    country = rng.choice(COUNTRIES, n, p=[0.3, 0.12, 0.14, 0.1, 0.14, 0.2])
    region = np.array([REGION[c] for c in country])
    device = rng.choice(["ios", "android", "web"], n, p=[0.35, 0.35, 0.3])
    new = rng.uniform(size=n) < 0.25
    account_age = np.where(new, rng.integers(0, 30, n), rng.integers(30, 3000, n))
    category = rng.choice(CATEGORIES, n)
    amount = np.round(rng.lognormal(3.9, 0.7, n), 2)
    if active("product_change", day):
        amount = np.where(new, np.round(amount * 3, 2), amount)  # a fee added at checkout
    truth = _logit(amount, new, category)
    if active("segment_failure", day):
        # Fraud in asia moves to small amounts, which the model does not suspect.
        small = amount < 40
        truth = np.where(region == "asia", np.where(small, 0.5, -4.5), truth)
    p = 1 / (1 + np.exp(-truth))
    y = (rng.uniform(size=n) < p).astype(int)
    score = 1 / (1 + np.exp(-_model_logit(amount, new, category)))
    version = np.full(n, "1")
    if active("version_rollout", day):
        version = np.where(rng.uniform(size=n) < 0.5, "2", "1")
        noisy = 1 / (
            1 + np.exp(-(0.45 * _model_logit(amount, new, category) + rng.normal(0, 1.2, n) - 1.6))
        )
        score = np.where(version == "2", noisy, score)
    score = np.round(score, 4)
    latency = rng.lognormal(np.log(35), 0.35, n)
    status = np.where(rng.uniform(size=n) < 0.004, "error", "ok")
    if active("latency", day):
        latency = latency * 8
        status = np.where(rng.uniform(size=n) < 0.09, "timeout", status)
    ids = [f"{prefix}f{day:02d}-{i:05d}" for i in range(n)]
    events = pd.DataFrame(
        {
            "event_id": ids,
            "timestamp": ts,
            "amount": amount,
            "merchant_category": category,
            "country": country,
            "account_age_days": account_age.astype(float),
            "is_new_user": new,
            "score": score,
            "prediction": (score >= 0.5).astype(int),
            "region": region,
            "device": device,
            "user_type": np.where(new, "new", "returning"),
            "age_band": rng.choice(["18-25", "26-40", "41-60", "60+"], n, p=[0.2, 0.4, 0.3, 0.1]),
            "latency_ms": np.round(latency, 1),
            "status": status,
            "model_version": version,
            "feature_version": "fv3",
        }
    )
    delay = pd.to_timedelta(rng.uniform(2, 12, n), unit="D")
    labels = pd.DataFrame({"event_id": ids, "label": y, "label_timestamp": ts + delay})
    reviewed = events["prediction"].to_numpy() == 1
    outcomes = pd.concat(
        [
            pd.DataFrame(
                {
                    "event_id": np.array(ids)[y == 1],
                    "outcome": "confirmed_fraud",
                    "value": 1.0,
                    "timestamp": (ts + delay)[y == 1],
                }
            ),
            pd.DataFrame(
                {
                    "event_id": np.array(ids)[reviewed],
                    "outcome": "manual_review",
                    "value": 1.0,
                    "timestamp": ts[reviewed] + pd.Timedelta(hours=4),
                }
            ),
        ],
        ignore_index=True,
    )
    return Day(events, labels, outcomes)


def eta_day(rng: np.random.Generator, day: int, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A delivery-time model: minutes from distance and traffic, labels hours later."""
    start = START + timedelta(days=day)
    ts = pd.to_datetime(start) + pd.to_timedelta(np.sort(rng.uniform(0, 86_399, n)), unit="s")
    distance = rng.gamma(2.0, 2.5, n)
    traffic = rng.choice(["low", "normal", "heavy"], n, p=[0.3, 0.5, 0.2])
    factor = np.select([traffic == "low", traffic == "heavy"], [0.8, 1.5], 1.0)
    actual = 8 + 4.2 * distance * factor + rng.normal(0, 3 + 0.4 * distance, n)
    predicted = 8 + 4.0 * distance * factor
    ids = [f"t{day:02d}-{i:05d}" for i in range(n)]
    events = pd.DataFrame(
        {
            "event_id": ids,
            "timestamp": ts,
            "distance_km": np.round(distance, 2),
            "traffic": traffic,
            "city": rng.choice(["lisbon", "porto", "braga"], n, p=[0.5, 0.35, 0.15]),
            "eta_minutes": np.round(predicted, 1),
        }
    )
    labels = pd.DataFrame(
        {
            "event_id": ids,
            "minutes": np.round(actual, 1),
            "label_timestamp": ts + pd.Timedelta(hours=2),
        }
    )
    return events, labels


ETA_MODEL = """
  - name: delivery_eta
    task: regression
    owner: logistics-ml
    columns:
      event_id: event_id
      timestamp: timestamp
      features:
        - {name: distance_km, kind: numeric}
        - {name: traffic, kind: categorical}
      prediction: eta_minutes
      segments: [city]
    labels: {column: minutes, timestamp: label_timestamp, max_delay: 1d}
    monitoring: {window: 1d, min_rows: 200, min_labels: 100}
"""


def demo_config(example: str) -> str:
    """The example config, set up for the demo: daily windows, a new-vs-returning segment,
    and the delivery-time model beside the fraud model."""
    text = example.replace(
        "      segments: [region, device]    # slices to monitor separately",
        "      segments: [region, device, user_type]   # slices to monitor separately",
    )
    text = text.replace(
        "    monitoring:\n      window: 1d ",
        "    monitoring:\n      min_rows: 200\n      min_labels: 100\n"
        "      max_segment_values: 10\n      window: 1d ",
        1,
    )
    text = text.replace("\nalerting:\n", ETA_MODEL + "\nalerting:\n", 1)
    text = text.replace("    threshold: 0.5 ", "    threshold: 0.3 ")
    return text.replace("      max_delay: 30d ", "      max_delay: 14d ")
