"""Which windows a run computes: the closed ones whose data arrived after their metrics
were last computed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from watchkeeper.config import ModelConfig
from watchkeeper.store import Store
from watchkeeper.store.metrics import MetricsTable
from watchkeeper.store.tables import TOUCHED
from watchkeeper.windows import window_start

HOUR = timedelta(hours=1)


def dirty_windows(
    store: Store,
    model: ModelConfig,
    size: timedelta,
    now: datetime,
    kinds: Sequence[str] = ("events", "labels", "outcomes"),
) -> list[datetime]:
    """Closed windows with data (of the given kinds) that arrived after their metrics were
    last computed, and windows whose provisional values are due to become final (their
    labels' maximum delay has passed)."""
    touched = store.table(TOUCHED)
    mine = touched.filter((touched.model == model.name) & touched.kind.isin(list(kinds)))
    hours = store.execute(mine.group_by("hour").aggregate(last=mine.wk_ingested_at.max()))
    last_touch: dict[datetime, datetime] = {}
    for row in hours.to_pylist():
        for start in windows_of_hour(row["hour"], size):
            last_touch[start] = max(last_touch.get(start, row["last"]), row["last"])
    reader = MetricsTable(store)
    maturing = set(reader.maturing(model.name, size, model.labels.max_delay, now))
    if not last_touch:
        return sorted(maturing)
    computed = reader.computed(model.name, size)
    return sorted(
        {
            start
            for start, touch in last_touch.items()
            if start + size <= now and (start not in computed or touch > computed[start])
        }
        | maturing
    )


def windows_of_hour(hour: datetime, size: timedelta) -> Iterable[datetime]:
    """The windows of ``size`` that an event-time hour overlaps."""
    start = window_start(hour, size)
    while start < hour + HOUR:
        yield start
        start += size


__all__ = ["dirty_windows", "windows_of_hour"]
