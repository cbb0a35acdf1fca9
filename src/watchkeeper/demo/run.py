"""`watchkeeper demo`: sixty days of a production fraud model with planted incidents, run
end to end on the embedded store: ingest, runs, alerts, triage, the stakeholder report.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from watchkeeper.config import CONFIG_FILENAME, EXAMPLE_CONFIG
from watchkeeper.demo.scenario import (
    DAYS,
    EVENTS_PER_DAY,
    START,
    demo_config,
    eta_day,
    fraud_day,
)
from watchkeeper.errors import TriageError
from watchkeeper.workspace import Workspace

__all__ = ["run_demo"]


class _Clock:
    def __init__(self) -> None:
        self.now = START + timedelta(days=DAYS, hours=1)

    def __call__(self) -> Any:
        return self.now


def run_demo(directory: Path, seed: int = 7, console: Console | None = None) -> Workspace:
    """Simulate, monitor and explain; returns the open workspace (the caller closes it)."""
    say = console or Console()
    started = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("watchkeeper.duckdb*"):
        stale.unlink()
    config_path = directory / CONFIG_FILENAME
    config_path.write_text(demo_config(EXAMPLE_CONFIG), encoding="utf-8")
    clock = _Clock()
    rng = np.random.default_rng([seed, 2026])
    say.print(
        f"[bold]watchkeeper demo[/] in {directory}/: {DAYS} days of a fraud model in production"
    )
    say.print(
        "Planted: a checkout change for new users (day 20), a latency incident (days 33-34), "
        "a region where the model quietly fails (day 40), a model version rollout (day 48); "
        "days 0-19 are calm.\n"
    )

    ws = Workspace.open(config_path, clock=clock)
    ref_days = [fraud_day(rng, -40 + d, 2_000, prefix="r") for d in range(10)]
    reference = pd.concat([d.events for d in ref_days], ignore_index=True)
    reference["label"] = pd.concat([d.labels["label"] for d in ref_days], ignore_index=True)
    ws.set_reference("fraud", reference.drop(columns=["event_id", "timestamp"]))
    eta_ref = [eta_day(rng, -20 + d, 1_000) for d in range(5)]
    ws.set_reference(
        "delivery_eta",
        pd.concat([e.assign(minutes=lab["minutes"]) for e, lab in eta_ref]).drop(
            columns=["event_id", "timestamp"]
        ),
    )

    days = [fraud_day(rng, d, EVENTS_PER_DAY) for d in range(DAYS)]
    events = pd.concat([d.events for d in days], ignore_index=True)
    labels = pd.concat([d.labels for d in days], ignore_index=True)
    outcomes = pd.concat([d.outcomes for d in days], ignore_index=True)
    now = clock()
    arrived = labels[labels["label_timestamp"] <= pd.Timestamp(now)]
    found = ws.ingest_events("fraud", events)
    say.print(f"[cyan]events[/]   {found.summary()}", highlight=False)
    found = ws.ingest_labels("fraud", arrived)
    say.print(
        f"[cyan]labels[/]   {found.summary()} ({len(labels) - len(arrived):,} not arrived yet)",
        highlight=False,
    )
    found = ws.ingest_outcomes("fraud", outcomes[outcomes["timestamp"] <= pd.Timestamp(now)])
    say.print(f"[cyan]outcomes[/] {found.summary()}", highlight=False)
    # A late batch from a flaky pipeline: some rows broken, one event sent again.
    late = events.tail(3).copy()
    late.loc[late.index[0], "amount"] = -12.0
    late.loc[late.index[1], "country"] = "XX"
    found = ws.ingest_events("fraud", late)
    say.print(f"[cyan]late batch[/] {found.summary()}", highlight=False)
    eta = [eta_day(rng, d, 1_000) for d in range(DAYS)]
    ws.ingest_events("delivery_eta", pd.concat([e for e, _ in eta], ignore_index=True))
    ws.ingest_labels("delivery_eta", pd.concat([lab for _, lab in eta], ignore_index=True))

    say.print("\n[bold]monitoring[/]: every daily window against the training reference")
    logging.getLogger("watchkeeper.alerts").setLevel(logging.ERROR)  # the log receiver
    done = ws.cycle(["fraud", "delivery_eta"], full=True)
    for result in done.runs.values():
        say.print("  " + result.summary().split("\n")[0], highlight=False)
    _print_alerts(say, ws, done.evaluated.events if done.evaluated else [])

    report = directory / "report.html"
    report.write_text(ws.report("fraud"), encoding="utf-8")
    say.print(f"\n[bold]stakeholder report[/]: {report} ({report.stat().st_size / 1024:,.0f} KiB)")
    command = f"{_executable()} --config {config_path}"
    say.print(
        f"\nOpen the dashboard on the same data:\n  [bold]{command} serve --now "
        f"{now:%Y-%m-%dT%H:%M}Z --no-schedule[/]\n  then http://127.0.0.1:8765/"
    )
    say.print(f"\n(done in {time.perf_counter() - started:.0f} s)")
    return ws


def _print_alerts(say: Console, ws: Workspace, events: list[Any]) -> None:
    episodes = ws.alerts()
    by_rule: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for a in episodes:
        by_rule[(a["severity"], a["model"], a["rule"])].append(a)
    order = {"page": 0, "ticket": 1, "info": 2}
    say.print(f"\n[bold]alerts[/]: {len(episodes)} over {DAYS} days")
    for (severity, model, rule), found in sorted(
        by_rule.items(), key=lambda kv: (order[kv[0][0]], kv[0])
    ):
        first = min(a["window_start"] for a in found)
        still = sum(a["state"] == "firing" for a in found)
        colour = "red" if severity == "page" else "yellow"
        say.print(
            f"  [{colour}]{severity:6}[/] {model}/{rule}: {len(found)} alert(s) from "
            f"{first:%m-%d} (day {(first - START).days}), {still} open",
            highlight=False,
        )
        example = max(found, key=lambda a: a["window_start"])
        say.print(f"         {example['summary']}", highlight=False)
        if severity == "page":
            try:
                triage = ws.triage(model, alert=example["alert_id"])
            except TriageError:  # nothing to investigate for this rule's metric
                continue
            say.print(
                f"         triage: {triage.top.title} ({triage.top.level}); {triage.top.action}",
                highlight=False,
            )
    calm = [
        a for a in episodes if a["severity"] == "page" and (a["window_start"] - START).days < 20
    ]
    say.print(f"\n  pages during the calm stretch (days 0-19): {len(calm)}")


def _executable() -> str:
    """How the user can call watchkeeper: the script beside this Python, else by name."""
    script = Path(sys.executable).parent / "watchkeeper"
    if not script.exists():
        return "watchkeeper"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)
