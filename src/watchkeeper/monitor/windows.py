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
# A window that only late labels or outcomes touched is re-judged at most this often (as a
# share of its size): its metrics follow its labels as they mature, but a daily window is
# not recomputed for every hour's trickle of labels.
RELABEL_SHARE = 0.25


def dirty_windows(
    store: Store,
    model: ModelConfig,
    size: timedelta,
    now: datetime,
    kinds: Sequence[str] = ("events", "labels", "outcomes"),
) -> list[datetime]:
    """Closed windows with events that arrived after their metrics were last computed;
    those with late labels or outcomes since, once a quarter of their size has passed
    since that computation; and windows whose provisional values are due to become final
    (their labels' maximum delay has passed)."""
    touched = store.table(TOUCHED)
    mine = touched.filter((touched.model == model.name) & touched.kind.isin(list(kinds)))
    found = store.execute(
        mine.group_by(["hour", mine.kind.isin(["events"]).name("events")]).aggregate(
            last=mine.wk_ingested_at.max()
        )
    )
    by_events: dict[datetime, datetime] = {}  # window → the newest events touching it
    by_late: dict[datetime, datetime] = {}  # window → the newest labels or outcomes
    for row in found.to_pylist():
        into = by_events if row["events"] else by_late
        for start in windows_of_hour(row["hour"], size):
            into[start] = max(into.get(start, row["last"]), row["last"])
    reader = MetricsTable(store)
    maturing = set(reader.maturing(model.name, size, model.labels.max_delay, now))
    if not by_events and not by_late:
        return sorted(maturing)
    computed = reader.computed(model.name, size)
    every = size * RELABEL_SHARE

    def due(start: datetime) -> bool:
        if start + size > now:
            return False
        done = computed.get(start)
        if done is None:
            return True
        if (touch := by_events.get(start)) is not None and touch > done:
            return True
        late = by_late.get(start)
        return late is not None and late > done and now - done >= every

    return sorted({s for s in {*by_events, *by_late} if due(s)} | maturing)


def windows_of_hour(hour: datetime, size: timedelta) -> Iterable[datetime]:
    """The windows of ``size`` that an event-time hour overlaps (none for an hour at the
    edge of time, which a store written before times were bounded may hold)."""
    try:
        start, end = window_start(hour, size), hour + HOUR
    except (OverflowError, ValueError):
        return
    while start < end:
        yield start
        try:
            start += size
        except OverflowError:
            return


__all__ = ["dirty_windows", "windows_of_hour"]
