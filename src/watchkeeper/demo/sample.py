"""Simulated data for the fraud model of the example config (deterministic for a seed)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

COUNTRIES = ["US", "GB", "DE", "FR", "BR", "IN"]
CATEGORIES = ["grocery", "travel", "electronics", "fashion", "gaming", "fuel", "pharmacy"]
REGIONS = {
    "US": "americas",
    "BR": "americas",
    "GB": "europe",
    "DE": "europe",
    "FR": "europe",
    "IN": "asia",
}
DEVICES = ["ios", "android", "web"]
AGE_BANDS = ["18-25", "26-40", "41-60", "60+"]


def fraud_rows(
    n: int,
    start: datetime,
    span: timedelta,
    seed: int,
    id_prefix: str = "e",
    android_change: datetime | None = None,
) -> pa.Table:
    """Events with inputs, a score, its true label (column ``label``) and service fields.

    From ``android_change`` on, a release of the Android app sends amounts with a fee added
    (a product change that shifts a top feature for one segment only).
    """
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.uniform(0, span.total_seconds(), n))
    ts = np.datetime64(start.replace(tzinfo=None), "us") + (seconds * 1e6).astype("timedelta64[us]")
    country = rng.choice(COUNTRIES, n, p=[0.35, 0.15, 0.15, 0.1, 0.15, 0.1])
    category = rng.choice(CATEGORIES, n)
    amount = np.round(rng.lognormal(3.5, 1.1, n), 2).clip(0.5, 49_000)
    age = rng.gamma(2.0, 200.0, n).round()
    new_user = age < 30
    risk = -4.0 + 0.6 * np.log(amount) + 1.2 * new_user + 0.8 * (category == "electronics")
    p = 1 / (1 + np.exp(-(risk - 2.0)))
    label = (rng.uniform(size=n) < p).astype(np.int64)
    score = np.clip(p + rng.normal(0, 0.05, n), 0, 1).round(4)
    latency = np.round(rng.gamma(4.0, 10.0, n), 2)
    status = np.where(rng.uniform(size=n) < 0.005, "error", "ok")
    device = rng.choice(DEVICES, n)
    if android_change is not None:
        changed = (device == "android") & (
            ts >= np.datetime64(android_change.replace(tzinfo=None), "us")
        )
        amount = np.where(changed, np.round(amount * 1.6 + 15, 2), amount).clip(0.5, 49_000)
    return pa.table(
        {
            "event_id": [f"{id_prefix}{seed}-{i:07d}" for i in range(n)],
            "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "amount": amount,
            "merchant_category": category,
            "country": country,
            "account_age_days": age,
            "is_new_user": new_user,
            "score": score,
            "prediction": (score >= 0.5).astype(np.int64),
            "region": [REGIONS[c] for c in country],
            "device": device,
            "age_band": rng.choice(AGE_BANDS, n),
            "latency_ms": latency,
            "status": status,
            "model_version": ["1"] * n,
            "feature_version": ["fv3"] * n,
            "label": label,
        }
    )


def labels_for(events: pa.Table, seed: int, delay_days: float = 3.0) -> pa.Table:
    """The ground truth of ``events``, known some days after each event."""
    rng = np.random.default_rng(seed)
    n = events.num_rows
    lag = (rng.exponential(delay_days, n) * 86_400e6).astype("timedelta64[us]")
    ts = events["timestamp"].to_numpy().astype("datetime64[us]") + lag
    return pa.table(
        {
            "event_id": events["event_id"],
            "label": events["label"],
            "label_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        }
    )
