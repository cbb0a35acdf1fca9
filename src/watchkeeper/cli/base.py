"""The group every command hangs on, and what the commands share.

Exit codes: 0 success, 1 a watchkeeper error (one line on stderr), 2 a usage or
configuration mistake.

This module knows no command: `watchkeeper.cli.commands` attaches them, so the imports run
one way (commands -> main).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from watchkeeper.config import CONFIG_FILENAME, load_config
from watchkeeper.errors import StoreError, WatchkeeperError
from watchkeeper.monitor import Cycle
from watchkeeper.store.holder import explain_lock, is_locked
from watchkeeper.windows import parse_duration, parse_time
from watchkeeper.workspace import Workspace, find_config

__all__ = [
    "FILE",
    "FORMAT",
    "JSON",
    "MODEL",
    "NOW",
    "emit_json",
    "err",
    "json_value",
    "main",
    "out",
    "print_cycle",
    "progress",
    "valid_duration",
    "workspace",
]

INTERNAL_EXIT = 70  # EX_SOFTWARE: watchkeeper itself failed

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
            err.print("[bold red]error:[/] ", end="", highlight=False, markup=True)
            err.print(str(exc), highlight=False, markup=False, soft_wrap=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: still one line, the traceback on request
            if os.environ.get("WATCHKEEPER_DEBUG"):
                raise
            err.print("[bold red]internal error:[/] ", end="", highlight=False, markup=True)
            err.print(
                f"{type(exc).__name__}: {exc} (set WATCHKEEPER_DEBUG=1 for the traceback; "
                "please report it)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            ctx.exit(INTERNAL_EXIT)


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
def workspace(ctx: click.Context, now: str | None = None) -> Iterator[Workspace]:
    """The workspace of the config given with --config (or found the usual way); with
    ``now`` its clock stands still at that time (replaying history, tests)."""
    config = find_config(ctx.obj["config"])
    clock = None
    if now is not None:
        try:
            frozen = parse_time(now)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--now") from None
        clock = lambda: frozen  # noqa: E731 - a clock that stands still
    with open_workspace(config, clock) as ws:
        yield ws


@contextmanager
def open_workspace(config: Any, clock: Callable[[], datetime] | None = None) -> Iterator[Workspace]:
    """The workspace, or one line saying who holds the store (a running `serve`)."""
    loaded = load_config(config) if isinstance(config, str | Path) else config
    try:
        ws = Workspace.open(loaded, clock=clock) if clock else Workspace.open(loaded)
    except StoreError as exc:
        if is_locked(exc):
            raise explain_lock(loaded.engine_url(), exc) from None
        raise
    with ws:
        yield ws


NOW = click.option(
    "--now", default=None, help="Take this time (ISO 8601) as now: which windows are closed."
)


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int | None], None] | None]:
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


FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
MODEL = click.option("--model", "-m", required=True, help="Model name, as in the config.")
JSON = click.option(
    "--json", "as_json", is_flag=True, hidden=True, help="The same as --format json."
)
# Every command that prints results takes --format json: one convention for scripts.
FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, default=json_value))


def valid_duration(text: str | None) -> str | None:
    """``text`` unchanged if it is a duration (1h, 1d), else a usage error on --window."""
    if text is None:
        return None
    try:
        parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--window") from None
    return text


def json_value(value: Any) -> Any:
    """``json.dumps``'s default for what stored rows hold besides JSON's own types."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_cycle(ws: Workspace, done: Cycle, model: str | None) -> None:
    """What a cycle's evaluation changed and what it sent (`run` and `alerts evaluate`)."""
    found = done.evaluated
    if found is not None:
        for e in found.events:
            muted = found.muted.get(e.alert_id)
            note = f" (muted: {muted})" if muted and e.kind != "resolved" else ""
            out.print(f"{e.kind:9} {e.severity:6} {e.summary}{note}", highlight=False)
        if not found.events:
            firing = ws.alerts(model, state="firing")
            out.print(f"alerts: no change; {len(firing)} firing", highlight=False)
        for rule, why in sorted(found.unjudged.items()):
            out.print(f"warning: rule {rule} cannot judge: {why}", highlight=False)
    sent = done.delivery
    if sent is not None and (sent.delivered or sent.failed):
        out.print(
            f"notifications: {sent.delivered} delivered, {sent.failed} failed (retried later)"
            + (f", {sent.gave_up} given up" if sent.gave_up else ""),
            highlight=False,
        )
