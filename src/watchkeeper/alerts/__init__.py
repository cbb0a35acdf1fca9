"""Alerts: rules over the metrics table, a pure evaluation, noise control and delivery."""

from watchkeeper.alerts.evaluate import (
    AlertEvent,
    AlertState,
    Evidence,
    Point,
    SeriesKey,
    evaluate,
    fingerprint,
)

__all__ = [
    "AlertEvent",
    "AlertState",
    "Evidence",
    "Point",
    "SeriesKey",
    "evaluate",
    "fingerprint",
]
