"""Alerts: rules over the metrics table, a pure evaluation, noise control and delivery."""

from watchkeeper.alerts.conditions import Evidence, Point, SeriesKey
from watchkeeper.alerts.history import VERDICTS, acknowledge, close, episode, episodes
from watchkeeper.alerts.machine import AlertEvent, AlertState, evaluate, fingerprint
from watchkeeper.alerts.noise import active_silences, add_silence, expire_silence, reconcile
from watchkeeper.alerts.notify import Delivery, deliver, http_send
from watchkeeper.alerts.service import Evaluated, evaluate_model
from watchkeeper.alerts.tuning import ReplayedAlert, RuleReview, edited, replay, review, rule_named

__all__ = [
    "VERDICTS",
    "AlertEvent",
    "AlertState",
    "Delivery",
    "Evaluated",
    "Evidence",
    "Point",
    "ReplayedAlert",
    "RuleReview",
    "SeriesKey",
    "acknowledge",
    "active_silences",
    "add_silence",
    "close",
    "deliver",
    "edited",
    "episode",
    "episodes",
    "evaluate",
    "evaluate_model",
    "expire_silence",
    "fingerprint",
    "http_send",
    "reconcile",
    "replay",
    "review",
    "rule_named",
]
