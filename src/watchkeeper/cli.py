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
    with _workspace(ctx) as ws:
        with _progress(f"run {model}") as advance:
            result = ws.run(
                model,
                window=_duration(window),
                since=since,
                until=until,
                full=full,
                progress=advance,
            )
        out.print(result.summary(), highlight=False)
        if ws.config.alerting.rules:
            _evaluate_and_deliver(ws, model)


def _evaluate_and_deliver(ws: Workspace, model: str | None) -> None:
    found = ws.evaluate_alerts(model)
    for e in found.events:
        muted = found.muted.get(e.alert_id)
        note = f" (muted: {muted})" if muted and e.kind != "resolved" else ""
        out.print(f"{e.kind:9} {e.severity:6} {e.summary}{note}", highlight=False)
    if not found.events:
        firing = ws.alerts(model, state="firing")
        out.print(f"alerts: no change; {len(firing)} firing", highlight=False)
    sent = ws.deliver_notifications()
    if sent.delivered or sent.failed:
        out.print(
            f"notifications: {sent.delivered} delivered, {sent.failed} failed (retried later)"
            + (f", {sent.gave_up} given up" if sent.gave_up else ""),
            highlight=False,
        )


@main.group()
def alerts() -> None:
    """Alerts: evaluate the rules, read, acknowledge and judge alerts, silence, tune."""


@alerts.command("evaluate")
@click.option("--model", "-m", default=None, help="One model (default: all).")
@click.pass_context
def alerts_evaluate(ctx: click.Context, model: str | None) -> None:
    """Evaluate the rules over the windows closed since the last evaluation, then send."""
    with _workspace(ctx) as ws:
        _evaluate_and_deliver(ws, model)


@alerts.command("deliver")
@click.pass_context
def alerts_deliver(ctx: click.Context) -> None:
    """Send the notifications waiting in the outbox (failed ones when their retry is due)."""
    with _workspace(ctx) as ws:
        sent = ws.deliver_notifications()
    out.print(
        f"{sent.delivered} delivered, {sent.failed} failed, {sent.gave_up} given up",
        highlight=False,
    )


@alerts.command("list")
@click.option("--model", "-m", default=None)
@click.option("--state", type=click.Choice(["firing", "resolved"]), default=None)
@click.option("--since", default=None, help="Alerts that fired at or after this time.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def alerts_list(
    ctx: click.Context, model: str | None, state: str | None, since: str | None, fmt: str
) -> None:
    """Alerts with their severity, owner, state, summary and verdict."""
    with _workspace(ctx) as ws:
        rows = ws.alerts(model, state=state, since=since)
    if fmt == "json":
        for r in rows:
            r["labels"] = json.loads(r["labels"])
            r["evidence"] = json.loads(r["evidence"] or "[]")
        click.echo(json.dumps(rows, default=_json_value))
        return
    shown = Table(
        "model", "owner", "alert", "fired", "severity", "state", "verdict", "summary", box=None
    )
    # Grouped per model and owner (who answers for it), oldest first within each.
    for r in sorted(rows, key=lambda r: (r["model"], r["owner"], r["started_at"])):
        state_text = r["state"] + (" (muted)" if r["muted"] else "")
        if r["acknowledged_at"] and not r["verdict"]:
            state_text += ", acked"
        shown.add_row(
            r["model"],
            r["owner"],
            r["alert_id"],
            f"{r['started_at']:%Y-%m-%d %H:%M}",
            r["severity"],
            state_text,
            r["verdict"] or "",
            r["summary"],
        )
    out.print(shown)


@alerts.command("ack")
@click.argument("alert_id")
@click.option("--by", default="", help="Who is looking at it.")
@click.option("--comment", default="")
@click.pass_context
def alerts_ack(ctx: click.Context, alert_id: str, by: str, comment: str) -> None:
    """Acknowledge an alert: someone is on it."""
    with _workspace(ctx) as ws:
        ws.acknowledge(alert_id, by=by, comment=comment)
    out.print(f"acknowledged {alert_id}", highlight=False)


@alerts.command("close")
@click.argument("alert_id")
@click.option(
    "--verdict", required=True, type=click.Choice(["actionable", "noise", "expected_change"])
)
@click.option("--comment", default="")
@click.option("--by", default="")
@click.pass_context
def alerts_close(ctx: click.Context, alert_id: str, verdict: str, comment: str, by: str) -> None:
    """Close an alert with a verdict; `alerts review` learns from them."""
    with _workspace(ctx) as ws:
        ws.close_alert(alert_id, verdict, comment=comment, by=by)
    out.print(f"closed {alert_id}: {verdict}", highlight=False)


def _matchers(pairs: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not LABEL=PATTERN", param_hint="MATCHER")
        found[key] = value
    return found


@alerts.command("silence")
@click.argument("matchers", nargs=-1, required=True)
@click.option("--for", "duration", default="2h", show_default=True, help="How long.")
@click.option("--comment", default="")
@click.option("--by", default="")
@click.pass_context
def alerts_silence(
    ctx: click.Context, matchers: tuple[str, ...], duration: str, comment: str, by: str
) -> None:
    """Mute alerts whose labels match, e.g. `model=fraud owner=data` (patterns allowed)."""
    wanted = _matchers(matchers)
    with _workspace(ctx) as ws:
        silence_id = ws.silence(
            wanted, duration=_duration(duration) or "2h", comment=comment, by=by
        )
    out.print(f"silence {silence_id} for {duration}: {wanted}", highlight=False)


@alerts.command("silences")
@click.pass_context
def alerts_silences(ctx: click.Context) -> None:
    """The silences in force."""
    with _workspace(ctx) as ws:
        rows = ws.silences()
    shown = Table("silence", "matchers", "ends", "by", "comment", box=None)
    for r in rows:
        shown.add_row(
            r["silence_id"],
            r["matchers"],
            f"{r['ends_at']:%Y-%m-%d %H:%M}",
            r["created_by"],
            r["comment"],
        )
    out.print(shown)


@alerts.command("unsilence")
@click.argument("silence_id")
@click.pass_context
def alerts_unsilence(ctx: click.Context, silence_id: str) -> None:
    """End a silence now."""
    with _workspace(ctx) as ws:
        ws.expire_silence(silence_id)
    out.print(f"silence {silence_id} ended", highlight=False)


@alerts.command("review")
@click.option("--since", default=None)
@click.option("--until", default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def alerts_review(ctx: click.Context, since: str | None, until: str | None, fmt: str) -> None:
    """Per rule: fired, verdicts, share actionable, time to resolve, flapping; the rules
    that most need tuning first."""
    with _workspace(ctx) as ws:
        found = ws.review_alerts(since=since, until=until)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in found]))
        return
    shown = Table(
        "rule",
        "fired",
        "pages",
        "actionable",
        "noise",
        "expected",
        "to resolve",
        "flaps",
        "advice",
        box=None,
    )
    for r in found:
        shown.add_row(
            r.rule,
            str(r.fired),
            str(r.pages),
            "" if r.actionable_share is None else f"{r.actionable_share:.0%}",
            str(r.verdicts.get("noise", 0)),
            str(r.verdicts.get("expected_change", 0)),
            "" if r.median_time_to_resolve is None else str(r.median_time_to_resolve),
            str(r.flapping),
            r.advice,
        )
    out.print(shown)


@alerts.command("replay")
@click.argument("rule")
@click.option("--since", required=True, help="Show what would have fired from this time.")
@click.option("--until", default=None, help="... up to this time (default: now).")
@click.option("--model", "-m", default=None)
@click.option(
    "--set",
    "settings",
    multiple=True,
    help="Edit the rule first: PATH=VALUE, e.g. for=3 or conditions.0.above=0.3.",
)
@click.pass_context
def alerts_replay(
    ctx: click.Context,
    rule: str,
    since: str,
    until: str | None,
    model: str | None,
    settings: tuple[str, ...],
) -> None:
    """Evaluate a rule (or an edited copy) over stored history: what would have fired."""
    with _workspace(ctx) as ws:
        found = ws.replay_rule(rule, model=model, since=since, until=until, settings=settings)
    for r in found:
        end = (
            f"resolved {r.resolved_window:%Y-%m-%d %H:%M}" if r.resolved_window else "still firing"
        )
        out.print(
            f"{r.fired_window:%Y-%m-%d %H:%M}  {r.severity:6} {end:26} {r.summary}",
            highlight=False,
        )
    out.print(f"{rule}: {len(found)} alert(s) would have fired", highlight=False)


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
@click.option("--host", default=None, help="Address to bind (default: server.host).")
@click.option("--port", default=None, type=int, help="Port (default: server.port).")
@click.option(
    "--now",
    default=None,
    help="Freeze the evaluation clock at this time (replaying history, demos, tests).",
)
@click.option("--no-schedule", is_flag=True, help="Do not run models on a schedule.")
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, now: str | None, no_schedule: bool
) -> None:
    """Serve the HTTP API, the Prometheus exporter and the scheduler."""
    import uvicorn

    from watchkeeper.config import load_config
    from watchkeeper.server import create_app
    from watchkeeper.windows import parse_time

    config = load_config(find_config(ctx.obj["config"]))
    bind = host or config.server.host
    listen = port or config.server.port
    loopback = bind in ("127.0.0.1", "::1", "localhost")
    if not config.server.api_keys:
        if not loopback:
            raise click.UsageError(
                f"no API keys are configured, so watchkeeper serves on loopback only; add "
                f"server.api_keys (see `watchkeeper keys new`) to bind to {bind}"
            )
        err.print(
            f"no API keys configured: serving on loopback only ({bind}:{listen}); anyone on "
            "this machine can read and write",
            highlight=False,
        )
    frozen = parse_time(now) if now else None
    app = create_app(config, clock=(lambda: frozen) if frozen else None, schedule=not no_schedule)
    err.print(f"watchkeeper serving on http://{bind}:{listen} (API docs at /docs)", highlight=False)
    uvicorn.run(app, host=bind, port=listen, log_level="warning", access_log=False)


@main.command("triage")
@_MODEL
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
    with _workspace(ctx) as ws:
        found = ws.triage(model, metric=metric, at=at, alert=alert_id, window=_duration(window))
    if fmt == "json":
        click.echo(json.dumps(found.to_dict(), default=_json_value))
        return
    out.print(found.to_text(), highlight=False)


@main.command("report")
@_MODEL
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
    with _workspace(ctx) as ws:
        page = ws.report(model, since=since, until=until)
    output.write_text(page, encoding="utf-8")
    out.print(f"wrote {output} ({len(page.encode()) / 1024:,.0f} KiB)", highlight=False)


@main.group()
def export() -> None:
    """Exports for Grafana and Prometheus."""


@export.command("grafana")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
def export_grafana(ctx: click.Context, output: Path | None) -> None:
    """A Grafana dashboard (JSON) over the series `watchkeeper serve` exports at /metrics."""
    from watchkeeper.config import load_config
    from watchkeeper.server.exports import grafana_dashboard

    text = json.dumps(grafana_dashboard(load_config(find_config(ctx.obj["config"]))), indent=2)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n")
        out.print(f"wrote {output}", highlight=False)


@export.command("prometheus-rules")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
def export_rules(ctx: click.Context, output: Path | None) -> None:
    """The alert rules as Prometheus alerting rules, where PromQL can say the same."""
    from watchkeeper.config import load_config
    from watchkeeper.server.exports import prometheus_rules, rules_yaml

    config = load_config(find_config(ctx.obj["config"]))
    text = rules_yaml(config)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text)
    _, skipped = prometheus_rules(config)
    note = f"; kept in watchkeeper only: {', '.join(skipped)}" if skipped else ""
    out.print(f"wrote {output}{note}", highlight=False)


@main.group()
def keys() -> None:
    """API keys for `watchkeeper serve`."""


@keys.command("new")
@click.option("--name", required=True, help="What the key is for, e.g. serving_app.")
@click.option(
    "--scopes",
    default="read",
    show_default=True,
    help="Comma-separated: ingest, read, admin.",
)
def keys_new(name: str, scopes: str) -> None:
    """Make a key: prints it once, and the line for watchkeeper.yaml (its hash only)."""
    from watchkeeper.server.auth import new_key

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in ("ingest", "read", "admin")]
    if unknown or not wanted:
        raise click.BadParameter(
            f"scopes are ingest, read, admin; not {unknown}", param_hint="--scopes"
        )
    key, digest = new_key()
    out.print(f"key (shown once; give it to the client): {key}", highlight=False)
    out.print("add to watchkeeper.yaml under server.api_keys:", highlight=False)
    out.print(
        f"  - {{name: {name}, scopes: [{', '.join(wanted)}], sha256: {digest}}}", highlight=False
    )


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
