"""Arrivals: rows refused at ingestion (by reason) and changes of the logged columns, per
window of the time they arrived, over every version."""

from __future__ import annotations

from watchkeeper.metrics.family import Aggregates, Context, Family
from watchkeeper.rows import ALL, MetricRow, Where


def arrival_rows(ctx: Context, agg: Aggregates) -> list[MetricRow]:
    a = agg.arrivals
    out = []
    for (start, reason), n in sorted(a.quarantined.items()):
        where = Where(start, start + ctx.size, ALL, ALL, ALL)
        out.append(where.row("quarantined_rows", reason, float(n), n))
    for start in a.windows:
        missing, unexpected = a.missing.get(start, set()), a.unexpected.get(start, set())
        detail = "; ".join(
            part
            for part in (
                f"missing: {', '.join(sorted(missing))}" if missing else "",
                f"unexpected: {', '.join(sorted(unexpected))}" if unexpected else "",
            )
            if part
        )
        where = Where(start, start + ctx.size, ALL, ALL, ALL)
        out.append(
            where.row(
                "schema_changes",
                "",
                float(len(missing) + len(unexpected)),
                0,
                status="ok" if not detail else "changed",
                detail=detail,
            )
        )
    return out


ARRIVALS = Family(
    "arrivals",
    "Quarantined rows by reason and schema changes, by the time they arrived.",
    ("quarantined_rows", "schema_changes"),
    arrival_rows,
    needs=("arrivals",),
)

__all__ = ["ARRIVALS"]
