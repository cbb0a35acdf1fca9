"""The command line: a thin door into the library.

Exit codes: 0 success, 1 a watchkeeper error (one line on stderr), 2 a usage or
configuration mistake.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from watchkeeper.config import CONFIG_FILENAME, EXAMPLE_CONFIG
from watchkeeper.errors import WatchkeeperError
from watchkeeper.ingest import IngestResult
from watchkeeper.schema import KINDS, Kind
from watchkeeper.windows import parse_duration
from watchkeeper.workspace import Workspace, find_config

F = TypeVar("F", bound=Callable[..., Any])

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
if not out.is_terminal:  # a pipe or a file: do not fold tables at 80 columns
    out.width = 200


class _Group(click.Group):
    """Turns watchkeeper's errors into one clear line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WatchkeeperError as exc:
            err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_Group)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"Config file (default: $WATCHKEEPER_CONFIG or ./{CONFIG_FILENAME}).",
)
@click.version_option(package_name="watchkeeper")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """watchkeeper: monitor machine-learning models in production."""
    ctx.obj = {"config": config_path}


@contextmanager
def _workspace(ctx: click.Context) -> Iterator[Workspace]:
    with Workspace.open(find_config(ctx.obj["config"])) as ws:
        yield ws


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented example watchkeeper.yaml into the current folder."""
    target = ctx.obj["config"] or Path(CONFIG_FILENAME)
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    target.write_text(EXAMPLE_CONFIG, encoding="utf-8")
    out.print(f"wrote {target}: edit the model and its columns, then run `watchkeeper ingest`")


def _ingest(
    ctx: click.Context, kind: Kind, model: str, path: Path, version: str | None, as_json: bool
) -> None:
    with _workspace(ctx) as ws, _progress(f"{kind} ← {path.name}") as advance:
        result = ws.ingest(kind, model, path, version=version, progress=advance)
    _print_result(result, as_json)


def _print_result(result: IngestResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        out.print(result.summary(), highlight=False)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on a terminal (rows done of the total, where the input knows it)."""
    if not err.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(rows: int, total: int | None) -> None:
            bar.update(task, advance=rows, total=total)

        yield advance


_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_MODEL = click.option("--model", "-m", required=True, help="Model name, as in the config.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")


@main.command("ingest")
@click.argument("kind", type=click.Choice(["events", "labels", "outcomes"]))
@_MODEL
@_FILE
@click.option("--version", help="Model version for events that carry none.")
@_JSON
@click.pass_context
def ingest_cmd(
    ctx: click.Context, kind: Kind, model: str, file: Path, version: str | None, as_json: bool
) -> None:
    """Validate and store events, labels or outcomes from a Parquet, CSV or JSON Lines file.

    Bad rows go to quarantine with their reason; rows already stored are skipped.
    """
    _ingest(ctx, kind, model, file, version, as_json)


@main.group()
def reference() -> None:
    """The reference data a model version is judged against."""


@reference.command("set")
@_MODEL
@_FILE
@click.option("--version", help="Model version (default: the model's version in the config).")
@_JSON
@click.pass_context
def reference_set(
    ctx: click.Context, model: str, file: Path, version: str | None, as_json: bool
) -> None:
    """Store the reference (training or validation) data for a model version."""
    _ingest(ctx, "reference", model, file, version, as_json)


@reference.command("fit")
@_MODEL
@click.option("--version", help="Model version (default: the model's version in the config).")
@click.pass_context
def reference_fit(ctx: click.Context, model: str, version: str | None) -> None:
    """Refit the reference profile (bins, vocabularies) from the stored reference.

    `reference set` fits it already; refit after changing the config's columns.
    """
    with _workspace(ctx) as ws:
        profile = ws.fit_reference(model, version)
    numeric = sum(b.kind == "numeric" for b in profile.binnings)
    out.print(
        f"fitted the reference of {model} version {profile.version}: "
        f"{profile.overall.rows:,} rows, {numeric} numeric and "
        f"{len(profile.binnings) - numeric} categorical columns, {len(profile.segments)} segments"
    )


@main.command("run")
@_MODEL
@click.option("--window", default=None, help="Window size (default: the model's, e.g. 1h, 1d).")
@click.option(
    "--since", default=None, help="Compute every closed window from this time (ISO 8601)."
)
@click.option("--until", default=None, help="... up to this time (default: now).")
@click.option(
    "--full", is_flag=True, help="Recompute every closed window, not only the dirty ones."
)
@click.pass_context
def run_cmd(
    ctx: click.Context,
    model: str,
    window: str | None,
    since: str | None,
    until: str | None,
    full: bool,
) -> None:
    """Profile the due and dirty windows, compute quality and drift, write the metrics."""
    with _workspace(ctx) as ws, _progress(f"run {model}") as advance:
        result = ws.run(
            model, window=_duration(window), since=since, until=until, full=full, progress=advance
        )
    out.print(result.summary(), highlight=False)


def _duration(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--window") from None
    return text


@main.command("metrics")
@_MODEL
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
    with _workspace(ctx) as ws:
        table = ws.metrics(
            model,
            metric=metric,
            column=column,
            segment=segment,
            since=since,
            until=until,
            window=_duration(window),
        )
        shown_metrics = set(table.column("metric").to_pylist())
        caveats = (
            [b.caveat for b in ws.backtest(model, window=_duration(window)).values()]
            or ["none has been checked against labels yet"]
            if any(m.startswith("estimated_") for m in shown_metrics)
            else []
        )
    if fmt == "csv":
        import pyarrow.csv as pacsv

        sink = io.BytesIO()
        pacsv.write_csv(table, sink)
        click.echo(sink.getvalue().decode(), nl=False)
        return
    if fmt == "json":
        rows = table.to_pylist()
        click.echo(json.dumps(rows, default=_json_value))
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


@main.command()
@_MODEL
@click.option("--last", default=30, show_default=True, help="Backtested windows to summarize.")
@click.option("--window", default=None, help="Only windows of this size.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.pass_context
def backtest(ctx: click.Context, model: str, last: int, window: str | None, fmt: str) -> None:
    """How far to trust performance estimated without labels: per estimated metric, how
    often its band covered the realized value once labels arrived."""
    with _workspace(ctx) as ws:
        found = ws.backtest(model, last=last, window=_duration(window))
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


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


@main.command()
@_MODEL
@click.option("--kind", type=click.Choice(list(KINDS)), default=None)
@click.option("--reason", default=None, help="Only this reason code.")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def quarantine(
    ctx: click.Context, model: str, kind: Kind | None, reason: str | None, limit: int
) -> None:
    """Show quarantined rows, newest first, with their reason and raw values."""
    with _workspace(ctx) as ws:
        rows = ws.quarantine(model, kind=kind, reason=reason, limit=limit).to_pylist()
    if not rows:
        out.print("no quarantined rows")
        return
    table = Table("kind", "reason", "row", "detail", "raw", box=None)
    for r in rows:
        table.add_row(r["kind"], r["reason"], str(r["row_number"]), r["detail"], r["raw"][:80])
    out.print(table)


@main.command()
@click.pass_context
def models(ctx: click.Context) -> None:
    """List the configured models and what is stored for each."""
    with _workspace(ctx) as ws:
        table = Table("model", "task", "owner", *KINDS, box=None)
        for m in ws.config.models:
            counts = [f"{ws.count(m.name, k):,}" for k in KINDS]
            table.add_row(m.name, m.task, m.owner, *counts)
    out.print(table)


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-output"),
    show_default=True,
)
@click.option("--seed", default=7, show_default=True)
def demo(directory: Path, seed: int) -> None:
    """Generate a sample model's data and run watchkeeper on it end to end."""
    from watchkeeper.demo import run_demo

    run_demo(directory, seed=seed, console=out)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
