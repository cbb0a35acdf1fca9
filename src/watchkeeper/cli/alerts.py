"""The `alerts` group: evaluate the rules, read, acknowledge and judge alerts, silence, tune."""

from __future__ import annotations

import dataclasses
import json

import click
from rich.table import Table

from watchkeeper.cli.base import (
    FORMAT,
    NOW,
    emit_json,
    json_value,
    out,
    print_cycle,
    valid_duration,
    workspace,
)

__all__ = ["COMMANDS", "alerts"]


@click.group()
def alerts() -> None:
    """Alerts: evaluate the rules, read, acknowledge and judge alerts, silence, tune."""


@alerts.command("evaluate")
@click.option("--model", "-m", default=None, help="One model (default: all).")
@NOW
@FORMAT
@click.pass_context
def alerts_evaluate(ctx: click.Context, model: str | None, now: str | None, fmt: str) -> None:
    """Evaluate the rules over the windows closed since the last evaluation, then send."""
    with workspace(ctx, now) as ws:
        done = ws.cycle(None if model is None else [model], run=False)
        if fmt == "json":
            emit_json(done.to_dict())
            return
        print_cycle(ws, done, model)


@alerts.command("deliver")
@FORMAT
@click.pass_context
def alerts_deliver(ctx: click.Context, fmt: str) -> None:
    """Send the notifications waiting in the outbox (failed ones when their retry is due)."""
    with workspace(ctx) as ws:
        sent = ws.deliver_notifications()
    if fmt == "json":
        emit_json({"delivered": sent.delivered, "failed": sent.failed, "gave_up": sent.gave_up})
        return
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
    with workspace(ctx) as ws:
        rows = ws.alerts(model, state=state, since=since)
    if fmt == "json":
        for r in rows:
            r["labels"] = json.loads(r["labels"])
            r["evidence"] = json.loads(r["evidence"] or "[]")
        click.echo(json.dumps(rows, default=json_value))
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
    with workspace(ctx) as ws:
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
    with workspace(ctx) as ws:
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
    with workspace(ctx) as ws:
        silence_id = ws.silence(
            wanted, duration=valid_duration(duration) or "2h", comment=comment, by=by
        )
    out.print(f"silence {silence_id} for {duration}: {wanted}", highlight=False)


@alerts.command("silences")
@click.pass_context
def alerts_silences(ctx: click.Context) -> None:
    """The silences in force."""
    with workspace(ctx) as ws:
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
    with workspace(ctx) as ws:
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
    with workspace(ctx) as ws:
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
@FORMAT
@click.pass_context
def alerts_replay(
    ctx: click.Context,
    rule: str,
    since: str,
    until: str | None,
    model: str | None,
    settings: tuple[str, ...],
    fmt: str,
) -> None:
    """Evaluate a rule (or an edited copy) over stored history: what would have fired."""
    with workspace(ctx) as ws:
        found = ws.replay_rule(rule, model=model, since=since, until=until, settings=settings)
    if fmt == "json":
        emit_json([dataclasses.asdict(r) for r in found])
        return
    for r in found:
        end = (
            f"resolved {r.resolved_window:%Y-%m-%d %H:%M}" if r.resolved_window else "still firing"
        )
        out.print(
            f"{r.fired_window:%Y-%m-%d %H:%M}  {r.severity:6} {end:26} {r.summary}",
            highlight=False,
        )
    out.print(f"{rule}: {len(found)} alert(s) would have fired", highlight=False)


COMMANDS: tuple[click.Command, ...] = (alerts,)
