"""The server and around it: `serve`, the `export` and `keys` groups, and `demo`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from watchkeeper.cli.base import err, open_workspace, out
from watchkeeper.config import NAME_PATTERN, load_config
from watchkeeper.store.holder import holding
from watchkeeper.windows import parse_time
from watchkeeper.workspace import find_config

__all__ = ["COMMANDS", "demo", "export", "keys", "serve"]


@click.command()
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
    # Deferred: uvicorn and the FastAPI app are heavy and only `serve` needs them.
    import uvicorn

    from watchkeeper.server import create_app

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
    with open_workspace(config):
        pass  # the store is free (else: one line naming who holds it, before any startup)
    app = create_app(config, clock=(lambda: frozen) if frozen else None, schedule=not no_schedule)
    url = f"http://{'127.0.0.1' if bind in ('0.0.0.0', '::') else bind}:{listen}"
    err.print(f"watchkeeper serving on {url} (API docs at /docs)", highlight=False)
    with holding(config.engine_url(), url):
        uvicorn.run(
            app,
            host=bind,
            port=listen,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=int(config.server.idle_timeout.total_seconds()),
        )


@click.group()
def export() -> None:
    """Exports for Grafana and Prometheus."""


@export.command("grafana")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.pass_context
def export_grafana(ctx: click.Context, output: Path | None) -> None:
    """A Grafana dashboard (JSON) over the series `watchkeeper serve` exports at /metrics."""
    # Deferred: a module under watchkeeper.server loads the FastAPI app with it.
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
    # Deferred: a module under watchkeeper.server loads the FastAPI app with it.
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


@click.group()
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
    # Deferred: a module under watchkeeper.server loads the FastAPI app with it.
    from watchkeeper.server.auth import new_key

    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in ("ingest", "read", "admin")]
    if unknown or not wanted:
        raise click.BadParameter(
            f"scopes are ingest, read, admin; not {unknown}", param_hint="--scopes"
        )
    if not re.fullmatch(NAME_PATTERN, name):
        raise click.BadParameter(
            f"{name!r}: a key's name is lowercase letters, digits and _, starting with a letter",
            param_hint="--name",
        )
    key, digest = new_key()
    out.print(f"key (shown once; give it to the client): {key}", highlight=False, markup=False)
    out.print("add to watchkeeper.yaml under server.api_keys:", highlight=False)
    out.print(
        f"    - {{name: {name}, scopes: [{', '.join(wanted)}], sha256: {digest}}}",
        highlight=False,
        markup=False,  # [ingest] is YAML here, not terminal markup
    )


@click.command()
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
    # Deferred: the demo's data generator loads pandas, which no other command needs.
    from watchkeeper.demo import run_demo

    run_demo(directory, seed=seed, console=out)


COMMANDS: tuple[click.Command, ...] = (serve, export, keys, demo)
