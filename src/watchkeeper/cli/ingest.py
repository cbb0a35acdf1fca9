"""Getting data in: `init`, `ingest`, `reference set` and `reference fit`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from watchkeeper.cli.base import FILE, FORMAT, JSON, MODEL, out, progress, workspace
from watchkeeper.config import CONFIG_FILENAME, EXAMPLE_CONFIG
from watchkeeper.ingest import IngestResult
from watchkeeper.ingest.infer import infer
from watchkeeper.schema import Kind

__all__ = ["COMMANDS", "ingest_cmd", "init", "reference"]


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Write a config for the events in this Parquet, CSV or JSON Lines file.",
)
@click.option("--model", "model", help="The model's name (with --from; default: the file's).")
@click.option("--label", "label", help="The label column in the file (with --from).")
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    help="A business outcome the events lead to (with --from; repeat for several).",
)
@click.pass_context
def init(
    ctx: click.Context,
    force: bool,
    source: Path | None,
    model: str | None,
    label: str | None,
    outcomes: tuple[str, ...],
) -> None:
    """Write a commented example watchkeeper.yaml into the current folder, or with
    --from FILE a config for that file's columns (roles guessed from names and values)."""
    target = ctx.obj["config"] or Path(CONFIG_FILENAME)
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; use --force to overwrite it")
    if source is None:
        if model or label or outcomes:
            raise click.UsageError("--model, --label and --outcome go with --from FILE")
        target.write_text(EXAMPLE_CONFIG, encoding="utf-8")
        out.print(f"wrote {target}: edit the model and its columns, then run `watchkeeper ingest`")
        return
    found = infer(source, model=model, label=label, outcomes=outcomes)
    target.write_text(found.yaml, encoding="utf-8")
    out.print(f"wrote {target} for {source.name}; found:", highlight=False)
    for f in found.found:
        out.print(f"  {f.role:<15} {f.column}: {f.reason}", highlight=False, markup=False)
    if found.missing:
        out.print("not found, or left out:", highlight=False)
        for line in found.missing:
            out.print(f"  {line}", highlight=False, markup=False)
    out.print("check the roles, then `watchkeeper reference set` and `watchkeeper ingest`")


# The exit code of an ingestion that quarantined rows (the good ones are stored): scripts
# learn that something was refused; --partial-ok makes it 0.
QUARANTINED_EXIT = 3

PARTIAL_OK = click.option(
    "--partial-ok",
    is_flag=True,
    help=f"Exit 0 when some rows are quarantined (default: exit {QUARANTINED_EXIT}).",
)


def _ingest(
    ctx: click.Context,
    kind: Kind,
    model: str,
    path: Path,
    version: str | None,
    as_json: bool,
    labels: bool = True,
    partial_ok: bool = False,
    fmt: str = "text",
) -> None:
    with workspace(ctx) as ws, progress(f"{kind} ← {path.name}") as advance:
        result = ws.ingest(kind, model, path, version=version, progress=advance, labels=labels)
    _print_result(result, as_json or fmt == "json")
    if result.quarantined_total and not partial_ok:
        ctx.exit(QUARANTINED_EXIT)


def _print_result(result: IngestResult, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        out.print(result.summary(), highlight=False)


@click.command("ingest")
@click.argument("kind", type=click.Choice(["events", "labels", "outcomes"]))
@MODEL
@FILE
@click.option("--version", help="Model version for events that carry none.")
@PARTIAL_OK
@FORMAT
@JSON
@click.pass_context
def ingest_cmd(
    ctx: click.Context,
    kind: Kind,
    model: str,
    file: Path,
    version: str | None,
    partial_ok: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Validate and store events, labels or outcomes from a Parquet, CSV or JSON Lines file
    (each may be gzip or zstd compressed).

    Bad rows go to quarantine with their reason and the good ones are stored; rows already
    stored are skipped. Exits 3 when rows were quarantined, unless --partial-ok.
    """
    _ingest(ctx, kind, model, file, version, as_json, partial_ok=partial_ok, fmt=fmt)


@click.group()
def reference() -> None:
    """The reference data a model version is judged against."""


@reference.command("set")
@MODEL
@FILE
@click.option("--version", help="Model version (default: the model's version in the config).")
@click.option(
    "--no-labels",
    is_flag=True,
    help="The reference has no label column (no performance to compare with).",
)
@PARTIAL_OK
@FORMAT
@JSON
@click.pass_context
def reference_set(
    ctx: click.Context,
    model: str,
    file: Path,
    version: str | None,
    no_labels: bool,
    partial_ok: bool,
    fmt: str,
    as_json: bool,
) -> None:
    """Store the reference (training or validation) data for a model version. Exits 3 when
    rows were quarantined, unless --partial-ok."""
    _ingest(ctx, "reference", model, file, version, as_json, not no_labels, partial_ok, fmt)


@reference.command("fit")
@MODEL
@click.option("--version", help="Model version (default: the model's version in the config).")
@click.pass_context
def reference_fit(ctx: click.Context, model: str, version: str | None) -> None:
    """Refit the reference profile (bins, vocabularies) from the stored reference.

    `reference set` fits it already; refit after changing the config's columns.
    """
    with workspace(ctx) as ws:
        profile = ws.fit_reference(model, version)
    numeric = sum(b.kind == "numeric" for b in profile.binnings)
    out.print(
        f"fitted the reference of {model} version {profile.version}: "
        f"{profile.overall.rows:,} rows, {numeric} numeric and "
        f"{len(profile.binnings) - numeric} categorical columns, {len(profile.segments)} segments"
    )


COMMANDS: tuple[click.Command, ...] = (init, ingest_cmd, reference)
