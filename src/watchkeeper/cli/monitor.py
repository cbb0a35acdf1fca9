"""Computing and reading results: `run`, `metrics`, `backtest`, `quarantine`, `models`,
`triage` and `report`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import click
import pyarrow.csv as pacsv
from rich.table import Table

from watchkeeper.cli.base import (
    FORMAT,
    MODEL,
    NOW,
    emit_json,
    json_value,
    out,
    print_cycle,
    progress,
    valid_duration,
    workspace,
)
from watchkeeper.schema import KINDS, Kind

__all__ = [
    "COMMANDS",
    "backtest",
    "metrics_cmd",
    "models",
    "quarantine",
    "report_cmd",
    "run_cmd",
    "triage_cmd",
]


@click.command("run")
@MODEL
@click.option("--window", default=None, help="Window size (default: the model's, e.g. 1h, 1d).")
@click.option(
    "--since", default=None, help="Compute every closed window from this time (ISO 8601)."
)
@click.option("--until", default=None, help="... up to this time (default: now).")
@click.option(
    "--full", is_flag=True, help="Recompute every closed window, not only the dirty ones."
)
@NOW
@FORMAT
@click.pass_context
def run_cmd(
    ctx: click.Context,
    model: str,
    window: str | None,
    since: str | None,
    until: str | None,
    full: bool,
    now: str | None,
    fmt: str,
) -> None:
    """Profile the due and dirty windows, compute quality and drift, write the metrics."""
    with workspace(ctx, now) as ws:
        with progress(f"run {model}") as advance:
            done = ws.cycle(
                [model],
                window=valid_duration(window),
                since=since,
                until=until,
                full=full,
                progress=advance,
            )
        if fmt == "json":
            emit_json(done.to_dict())
            return
        out.print(done.runs[model].summary(), highlight=False)
        print_cycle(ws, done, model)


@click.command("metrics")
@MODEL
@click.option("--metric", default=None, help="A metric key, e.g. drift, drift_psi, missing_rate.")
@click.option("--column", default=None, help="A column (feature, score, prediction, label).")
@click.option(
    "--segment", default=None, help="COLUMN=VALUE, COLUMN for all its values, * for all traffic."
)
@click.option("--since", default=None, help="Windows starting at or after this time.")
@click.option("--until", default=None, help="Windows starting before this time.")
@click.option("--window", default=None, help="Only windows of this size.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.option("--limit", default=200, show_default=True, help="Rows shown in table format.")
@click.pass_context
def metrics_cmd(
    ctx: click.Context,
    model: str,
    metric: str | None,
    column: str | None,
    segment: str | None,
    since: str | None,
    until: str | None,
    window: str | None,
    fmt: str,
    limit: int,
) -> None:
    """Print stored metrics: the way scripts read results."""
    with workspace(ctx) as ws:
        table = ws.metrics(
            model,
            metric=metric,
            column=column,
            segment=segment,
            since=since,
            until=until,
            window=valid_duration(window),
        )
        shown_metrics = set(table.column("metric").to_pylist())
        caveats = (
            [b.caveat for b in ws.backtest(model, window=valid_duration(window)).values()]
            or ["none has been checked against labels yet"]
            if any(m.startswith("estimated_") for m in shown_metrics)
            else []
        )
    if fmt == "csv":
        sink = io.BytesIO()
        pacsv.write_csv(table, sink)
        click.echo(sink.getvalue().decode(), nl=False)
        return
    if fmt == "json":
        rows = table.to_pylist()
        click.echo(json.dumps(rows, default=json_value))
        return
    shown = Table(
        "window", "version", "segment", "metric", "column", "value", "p", "n", "status", box=None
    )
    for r in table.slice(0, limit).to_pylist():
        seg = "*" if r["segment_column"] == "*" else f"{r['segment_column']}={r['segment_value']}"
        shown.add_row(
            f"{r['window_start']:%Y-%m-%d %H:%M}",
            r["model_version"],
            seg,
            r["metric"],
            r["column"],
            "" if r["value"] is None else f"{r['value']:.4g}",
            "" if r["p_value"] is None else f"{r['p_value']:.2g}",
            f"{r['sample_size']:,}",
            r["status"],
        )
    out.print(shown)
    if table.num_rows > limit:
        out.print(f"({table.num_rows - limit:,} more rows; use --format csv or json for all)")
    if caveats:
        out.print(
            "Estimated metrics are computed without labels and assume the relation between "
            "inputs and labels has not changed. Their record against labels so far:",
            highlight=False,
        )
        for caveat in caveats:
            out.print(f"  {caveat}", highlight=False)


@click.command()
@MODEL
@click.option("--last", default=30, show_default=True, help="Backtested windows to summarize.")
@click.option("--window", default=None, help="Only windows of this size.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def backtest(ctx: click.Context, model: str, last: int, window: str | None, fmt: str) -> None:
    """How far to trust performance estimated without labels: per estimated metric, how
    often its band covered the realized value once labels arrived."""
    with workspace(ctx) as ws:
        found = ws.backtest(model, last=last, window=valid_duration(window))
    if fmt == "json":
        click.echo(json.dumps([b.to_dict() for b in found.values()]))
        return
    if not found:
        out.print(
            f"{model}: no estimate has been checked against labels yet (a window needs both "
            "an estimate and labels)",
            highlight=False,
        )
        return
    shown = Table("estimated", "windows", "band held", "mean error", "trust", box=None)
    for b in found.values():
        shown.add_row(
            b.metric,
            str(b.windows),
            f"{b.covered} ({b.coverage:.0%})" if b.coverage is not None else "",
            "" if b.mean_error is None else f"{b.mean_error:+.3g}",
            b.trust,
        )
    out.print(shown)
    for b in found.values():
        if b.trust in ("rough", "failing"):
            out.print(b.caveat, highlight=False)


@click.command()
@MODEL
@click.option("--kind", type=click.Choice(list(KINDS)), default=None)
@click.option("--reason", default=None, help="Only this reason code.")
@click.option("--limit", default=20, show_default=True)
@FORMAT
@click.pass_context
def quarantine(
    ctx: click.Context, model: str, kind: Kind | None, reason: str | None, limit: int, fmt: str
) -> None:
    """Show quarantined rows, newest first, with their reason and raw values."""
    with workspace(ctx) as ws:
        rows = ws.quarantine(model, kind=kind, reason=reason, limit=limit).to_pylist()
    if fmt == "json":
        emit_json(rows)
        return
    if not rows:
        out.print("no quarantined rows")
        return
    table = Table("kind", "reason", "row", "detail", "raw", box=None)
    for r in rows:
        table.add_row(r["kind"], r["reason"], str(r["row_number"]), r["detail"], r["raw"][:80])
    out.print(table)


@click.command()
@FORMAT
@click.pass_context
def models(ctx: click.Context, fmt: str) -> None:
    """List the configured models and what is stored for each."""
    with workspace(ctx) as ws:
        found = [
            {"model": m.name, "task": m.task, "owner": m.owner}
            | {k: ws.count(m.name, k) for k in KINDS}
            for m in ws.config.models
        ]
    if fmt == "json":
        emit_json(found)
        return
    table = Table("model", "task", "owner", *KINDS, box=None)
    for f in found:
        table.add_row(
            str(f["model"]), str(f["task"]), str(f["owner"]), *(f"{f[k]:,}" for k in KINDS)
        )
    out.print(table)


@click.command("triage")
@MODEL
@click.option("--metric", default=None, help="The metric that dropped (default: the task's).")
@click.option("--at", default=None, help="A time in the window to look at (default: newest).")
@click.option("--alert", "alert_id", default=None, help="Investigate what this alert fired on.")
@click.option("--window", default=None, help="Window size (default: the model's).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def triage_cmd(
    ctx: click.Context,
    model: str,
    metric: str | None,
    at: str | None,
    alert_id: str | None,
    window: str | None,
    fmt: str,
) -> None:
    """Work a drop back to its most likely cause: data, model, infrastructure, business,
    or not real; every step with its evidence, and what to do next."""
    with workspace(ctx) as ws:
        found = ws.triage(
            model, metric=metric, at=at, alert=alert_id, window=valid_duration(window)
        )
    if fmt == "json":
        click.echo(json.dumps(found.to_dict(), default=json_value))
        return
    out.print(found.to_text(), highlight=False)


@click.command("report")
@MODEL
@click.option("--since", default=None, help="First window (default: the last 90 windows).")
@click.option("--until", default=None, help="Last window (default: the newest).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("report.html"),
    show_default=True,
)
@click.pass_context
def report_cmd(
    ctx: click.Context, model: str, since: str | None, until: str | None, output: Path
) -> None:
    """Write the stakeholder report: one HTML file for people who are not engineers."""
    with workspace(ctx) as ws:
        page = ws.report(model, since=since, until=until)
    output.write_text(page, encoding="utf-8")
    out.print(f"wrote {output} ({len(page.encode()) / 1024:,.0f} KiB)", highlight=False)


COMMANDS: tuple[click.Command, ...] = (
    run_cmd,
    metrics_cmd,
    backtest,
    quarantine,
    models,
    triage_cmd,
    report_cmd,
)
