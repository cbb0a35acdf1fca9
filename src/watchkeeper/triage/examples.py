"""The predictions a triage shows: a handful from the affected window and segment, with
their ids, for the data science team to look at."""

from __future__ import annotations

from typing import Any

from watchkeeper.config import ModelConfig
from watchkeeper.profiles.queries import confidently_wrong, latest_per_key, most_changed
from watchkeeper.reference.profile import ReferenceProfile
from watchkeeper.schema import spec_for
from watchkeeper.store import Store
from watchkeeper.triage.model import Triage


def examples(
    engine: Store, cfg: ModelConfig, done: Triage, ref: ReferenceProfile | None
) -> list[dict[str, Any]]:
    """Once labels exist the most confidently wrong predictions (in the segment the change
    concentrates in), else the events whose most moved input is furthest from the
    reference."""
    cols = cfg.columns
    output = cols.score or (cols.prediction if cfg.task == "regression" else None)
    events = engine.table(spec_for("events", cfg).table)
    since, until = done.window_start, done.window_end
    labels_table = spec_for("labels", cfg).table
    if output is not None and labels_table in engine.tables():
        labels = latest_per_key(engine.table(labels_table), "event_id")
        joined = events.inner_join(labels, events[cols.event_id] == labels.event_id)
        joined = joined.mutate(wk_label=joined.label)
        found = confidently_wrong(
            engine, joined, cols.event_id, cols.timestamp, output, since, until, done.segment
        )
        if found:
            return found
    feature = cfg.feature(done.feature) if done.feature else None
    if feature is None or feature.kind != "numeric" or ref is None:
        return []
    profile = ref.overall.columns.get(feature.name)
    if profile is None or not profile.present:
        return []
    return most_changed(
        engine,
        events,
        cols.event_id,
        cols.timestamp,
        feature.name,
        profile.mean,
        profile.std,
        since,
        until,
        done.segment,
    )


__all__ = ["examples"]
