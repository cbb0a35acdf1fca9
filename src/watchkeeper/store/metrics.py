"""The metrics table's one reader and writer.

Every reader (alerts, triage, the report, the dashboard, the exporter, the API) asks here;
rows come back as ``MetricRow``. A window is identified by its start and its size (the same
store holds hourly and daily windows of a model).
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from watchkeeper.catalogue import additive
from watchkeeper.rows import ALL, MetricRow, from_records
from watchkeeper.store.engine import Store
from watchkeeper.store.tables import METRICS, WINDOW_PROFILES

ORDER = ("window_start", "model_version", "segment_column", "segment_value", "metric", "column")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MetricsTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _mine(self, model: str, size: timedelta | None = None) -> ir.Table:
        t = self.store.table(METRICS)
        expr = t.filter(t.model == model)
        if size is not None:
            seconds = int(size.total_seconds())
            expr = expr.filter(
                expr.window_end == expr.window_start + ibis.interval(seconds=seconds)
            )
        return expr

    # -- selections ---------------------------------------------------------------------

    def query(
        self,
        model: str,
        *,
        metrics: Sequence[str] | None = None,
        column: str | None = None,
        segment: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        through: datetime | None = None,
        size: timedelta | None = None,
        version: str | None = None,
    ) -> ir.Table:
        """The rows of a model as an expression, filtered. ``segment`` is ``*`` (the whole
        traffic), a column (every value), or ``column=value``; ``until`` excludes its
        window start, ``through`` includes it; ``version`` one model version's rows."""
        expr = self._mine(model, size)
        if version is not None:
            expr = expr.filter(expr.model_version == version)
        if metrics is not None:
            expr = expr.filter(expr.metric.isin(list(metrics)))
        if column is not None:
            expr = expr.filter(expr.column == column)
        if segment is not None:
            seg_col, _, seg_val = segment.partition("=")
            expr = expr.filter(expr.segment_column == seg_col)
            if seg_val:
                expr = expr.filter(expr.segment_value == seg_val)
        if since is not None:
            expr = expr.filter(expr.window_start >= since)
        if until is not None:
            expr = expr.filter(expr.window_start < until)
        if through is not None:
            expr = expr.filter(expr.window_start <= through)
        return expr

    def table(self, model: str, **filters: Any) -> pa.Table:
        """Matching rows as Arrow, oldest first (without the run id)."""
        expr = self.query(model, **filters)
        return self.store.execute(expr.order_by(list(ORDER)).drop("run_id"))

    def of_run(self, model: str, run_id: str, metrics: Sequence[str] | None = None) -> pa.Table:
        """The rows one run wrote (those of its windows no later run replaced), oldest first."""
        expr = self.query(model, metrics=metrics)
        return self.store.execute(expr.filter(expr.run_id == run_id).order_by(list(ORDER)))

    def select(self, model: str, **filters: Any) -> list[MetricRow]:
        """Matching rows, oldest first."""
        return from_records(self.table(model, **filters).to_pylist())

    def matching(
        self,
        model: str,
        patterns: Sequence[str],
        size: timedelta,
        since: datetime | None = None,
    ) -> list[MetricRow]:
        """The rows whose metric matches one of the patterns (``*``, ``?``)."""
        names = self.names(model)
        wanted = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not wanted:
            return []
        return self.select(model, metrics=wanted, size=size, since=since)

    def names(self, model: str, whole: bool = False) -> list[str]:
        """The metric keys stored for a model (of the whole traffic only, with ``whole``)."""
        expr = self._mine(model)
        if whole:
            expr = expr.filter(expr.segment_column == ALL)
        found = self.store.execute(expr.select("metric").distinct())["metric"].to_pylist()
        return sorted(found)

    def columns(self, model: str, metric: str) -> list[str]:
        """The columns a metric of the whole traffic is stored for ('' for a model-level one)."""
        t = self._mine(model)
        t = t.filter((t.segment_column == ALL) & (t.metric == metric))
        return sorted(self.store.execute(t.select("column").distinct())["column"].to_pylist())

    def newest(
        self, model: str, metrics: Sequence[str] | None = None, size: timedelta | None = None
    ) -> datetime | None:
        """The start of the newest window with any of ``metrics`` (any metric by default)."""
        expr = self._mine(model, size)
        if metrics is not None:
            expr = expr.filter(expr.metric.isin(list(metrics)))
        found = self.store.execute(expr.aggregate(at=expr.window_start.max()))["at"][0].as_py()
        return found if isinstance(found, datetime) else None

    def newest_size(self, model: str) -> timedelta | None:
        """The size of the windows computed most recently (a model run daily though its
        config says hourly has daily windows only)."""
        t = self._mine(model)
        found = self.store.execute(
            t.group_by(size=(t.window_end.epoch_seconds() - t.window_start.epoch_seconds()))
            .aggregate(at=t.computed_at.max())
            .order_by(ibis.desc("at"))
            .limit(1)
        ).to_pylist()
        return timedelta(seconds=int(found[0]["size"])) if found else None

    def segments(self, model: str, metric: str, column: str = "") -> list[tuple[str, str]]:
        """The segments (column, value) a metric is stored for, the whole traffic first."""
        t = self._mine(model)
        t = t.filter((t.metric == metric) & (t.column == column))
        found = self.store.execute(t.select("segment_column", "segment_value").distinct())
        pairs = zip(
            found["segment_column"].to_pylist(), found["segment_value"].to_pylist(), strict=True
        )
        return sorted(set(pairs), key=lambda p: (p[0] != ALL, p))

    def versions(self, model: str, metric: str, column: str = "") -> list[str]:
        """The model versions a metric is stored for (each on its own, not ``*``)."""
        t = self._mine(model)
        t = t.filter((t.metric == metric) & (t.column == column) & (t.model_version != ALL))
        found = self.store.execute(t.select("model_version").distinct())
        return sorted(found["model_version"].to_pylist())

    def starts(self, model: str, **filters: Any) -> list[datetime]:
        """The window starts of the matching rows, newest first (a picker's choices, read
        without the rows themselves)."""
        expr = self.query(model, **filters).select("window_start").distinct()
        found = self.store.execute(expr.order_by(ibis.desc("window_start")))
        return [s for s in found["window_start"].to_pylist() if isinstance(s, datetime)]

    def oldest(self, model: str, size: timedelta, since: datetime) -> datetime | None:
        expr = self._mine(model, size)
        expr = expr.filter(expr.window_start >= since)
        found = self.store.execute(expr.aggregate(at=expr.window_start.min()))["at"][0].as_py()
        return found if isinstance(found, datetime) else None

    def latest(
        self, model: str, metrics: Sequence[str], size: timedelta, *, with_value: bool = False
    ) -> list[MetricRow]:
        """Each series' newest window (per metric, column and segment; every version of
        that window); with `with_value`, its newest window that has a value (a segment's
        labels may not have arrived for the newest window)."""
        expr = self._mine(model, size).filter(ibis._.metric.isin(sorted(metrics)))
        if with_value:
            expr = expr.filter(expr.value.notnull())
        keys = ["metric", "column", "segment_column", "segment_value"]
        newest = expr.mutate(wk_newest=ibis._.window_start.max().over(group_by=keys))
        rows = newest.filter(newest.window_start == newest.wk_newest).drop("wk_newest", "run_id")
        return from_records(self.store.execute(rows).to_pylist())

    def first_seen(self, model: str) -> dict[str, datetime]:
        """When each model version first served traffic (its first window with events)."""
        expr = self._mine(model).filter(
            (ibis._.metric == "row_count") & (ibis._.model_version != ALL)
        )
        found = self.store.execute(
            expr.group_by("model_version").aggregate(first=ibis._.window_start.min())
        )
        return {r["model_version"]: r["first"] for r in found.to_pylist()}

    def maturing(
        self, model: str, size: timedelta, max_delay: timedelta, now: datetime
    ) -> list[datetime]:
        """Windows with provisional values whose labels' maximum delay has passed since
        they were computed: recomputed, they become final."""
        expr = self._mine(model, size).filter(ibis._.provisional)
        due = expr.filter(
            (expr.window_end + ibis.interval(seconds=int(max_delay.total_seconds())) <= now)
            & (
                expr.computed_at
                < expr.window_end + ibis.interval(seconds=int(max_delay.total_seconds()))
            )
        )
        found = self.store.execute(due.select("window_start").distinct())
        return sorted(found["window_start"].to_pylist())

    def computed(self, model: str, size: timedelta) -> dict[datetime, datetime]:
        """When each window of ``size`` was last computed."""
        expr = self._mine(model, size)
        found = self.store.execute(
            expr.group_by("window_start").aggregate(at=expr.computed_at.max())
        )
        return {r["window_start"]: r["at"] for r in found.to_pylist()}

    # -- series -------------------------------------------------------------------------

    def series(
        self,
        model: str,
        metric: str,
        column: str = "",
        *,
        size: timedelta,
        segment: tuple[str, str] = (ALL, ALL),
        since: datetime | None = None,
        through: datetime | None = None,
        version: str | None = None,
    ) -> list[tuple[datetime, float, bool]]:
        """A metric's series over every version (or one ``version``'s), one value per
        window: where versions share a window, amounts that add up are summed and the rest
        averaged by their events; provisional if any part is. Aggregated in the engine."""
        mine = self.query(
            model,
            metrics=[metric],
            column=column,
            size=size,
            since=since,
            through=through,
            version=version,
            segment=f"{segment[0]}={segment[1]}" if segment[0] != ALL else ALL,
        ).filter(ibis._.value.notnull())
        n = ibis.greatest(mine.sample_size, 1).cast("float64")
        value = (
            ibis._.value.sum()
            if additive(metric)
            else (ibis._.value * ibis._.wk_n).sum() / ibis._.wk_n.sum()
        )
        grouped = (
            mine.mutate(wk_us=self.store.epoch_micros(mine.window_start), wk_n=n)
            .group_by("wk_us")
            .aggregate(value=value, provisional=ibis._.provisional.any())
            .order_by("wk_us")
        )
        found = self.store.execute(grouped)
        return [
            (_EPOCH + timedelta(microseconds=us), v, bool(p))
            for us, v, p in zip(
                found["wk_us"].to_pylist(),
                found["value"].to_pylist(),
                found["provisional"].to_pylist(),
                strict=True,
            )
        ]

    def totals(
        self, model: str, metric: str, size: timedelta, since: datetime, until: datetime
    ) -> dict[tuple[str, str, str], dict[datetime, float]]:
        """Each window's ``metric`` summed over versions, per segment and column (the
        recent history a ratio compares with)."""
        expr = self.query(model, metrics=[metric], size=size, since=since, until=until)
        found = self.store.execute(
            expr.group_by(["window_start", "segment_column", "segment_value", "column"]).aggregate(
                total=expr.value.sum()
            )
        )
        out: dict[tuple[str, str, str], dict[datetime, float]] = defaultdict(dict)
        for r in found.to_pylist():
            if r["total"] is not None:
                key = (r["segment_column"], r["segment_value"], r["column"])
                out[key][r["window_start"]] = r["total"]
        return dict(out)

    # -- profiles behind the metrics -------------------------------------------------------

    def profiles(
        self, model: str, start: datetime, column: str, segment: tuple[str, str] = (ALL, ALL)
    ) -> list[tuple[str, str]]:
        """The stored window profiles of one column at one window: (version, JSON)."""
        t = self.store.table(WINDOW_PROFILES)
        found = self.store.execute(
            t.filter(
                (t.model == model)
                & (t.window_start == start)
                & (t.column == column)
                & (t.segment_column == segment[0])
                & (t.segment_value == segment[1])
            ).select("model_version", "profile")
        )
        return [(r["model_version"], r["profile"]) for r in found.to_pylist()]

    def newest_profiles(self, model: str, column: str, size: timedelta) -> list[str]:
        """The whole traffic's profiles of ``column`` at its newest window (every version)."""
        t = self.store.table(WINDOW_PROFILES)
        seconds = int(size.total_seconds())
        mine = t.filter(
            (t.model == model)
            & (t.column == column)
            & (t.segment_column == ALL)
            & (t.window_end == t.window_start + ibis.interval(seconds=seconds))
        )
        newest = mine.filter(mine.window_start == mine.window_start.max())
        return list(self.store.execute(newest.select("profile"))["profile"].to_pylist())

    # -- writing ------------------------------------------------------------------------------

    def replace_windows(
        self,
        model: str,
        size: timedelta,
        starts: Sequence[datetime],
        metrics: pa.Table,
        profiles: pa.Table,
        *,
        metric_keys: Sequence[str] | None = None,
        columns: Sequence[str] | None = None,
    ) -> None:
        """Replace the metrics and profiles of the given windows, in one transaction (only
        the given metric keys and profile columns, when given: a run of some families)."""
        seconds = int(size.total_seconds())
        lo, hi = (min(starts), max(starts)) if starts else (None, None)

        def where(t: ir.Table, only: str, keys: Sequence[str] | None) -> ir.BooleanValue:
            # The range first: metrics are appended in window order, so DuckDB's zone maps
            # skip every row group outside it (a batch of a backfill would otherwise read
            # the whole table to find its own windows).
            cond = (
                (t.model == model)
                & t.window_start.between(lo, hi)
                & t.window_start.isin(list(starts))
                & (t.window_end == t.window_start + ibis.interval(seconds=seconds))
            )
            return cond if keys is None else cond & t[only].isin(list(keys))

        with self.store.transaction():
            if starts:
                self.store.delete(METRICS, lambda t: where(t, "metric", metric_keys))
                self.store.delete(WINDOW_PROFILES, lambda t: where(t, "column", columns))
            self.store.insert(METRICS, metrics)
            self.store.insert(WINDOW_PROFILES, profiles)


__all__ = ["ORDER", "MetricsTable"]
