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

from watchkeeper.triage.evidence import Metrics, moment
from watchkeeper.triage.model import CAUSES, TITLES, Hypothesis, Step, Triage, default_metric
from watchkeeper.triage.run import triage

__all__ = [
    "CAUSES",
    "TITLES",
    "Hypothesis",
    "Metrics",
    "Step",
    "Triage",
    "default_metric",
    "moment",
    "triage",
]
