"""Detection measured on incidents: every class of the incident library, drawn several
ways, lived through hour by hour with the config `watchkeeper init --from` writes.

    python bench/incidents.py                    # every class, 3 draws each, 2 workers
    python bench/incidents.py --draws 1 --only serving,bad_rollout
    python bench/incidents.py --seeds 11,12,13   # other draws than the default ones

Prints one row per history (pages, tickets, hours from the start to the first page,
triage's top layer, whether the alerts name the segment, version or feature) and the
totals against the targets of issue 14. Each finished history is appended to
``--out`` (JSON Lines) as it completes, so a long run can be read while it goes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from watchkeeper.incidents import CLASSES, QUIET, REGRESSION, draw
from watchkeeper.incidents.classes import INCIDENT_DAYS, QUIET_DAYS
from watchkeeper.incidents.replay import replay


def one(kind: str, seed: int) -> dict[str, Any]:
    history = draw(kind, seed)
    done = replay(history)
    row = done.to_dict()
    row["triage"] = done.triage
    row["raised"] = [
        {"at": str(r.at), "severity": r.severity, "rule": r.rule, "labels": r.labels}
        for r in done.raised
    ]
    return row


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    head = ("history", "want", "pages", "tickets", "false p/t", "h to page", "first rule",
            "caught", "layer (want)", "names")  # fmt: skip
    lines = []
    for r in sorted(rows, key=lambda r: r["history"]):
        names = " ".join(
            f"{what}:{_fmt(r[f'names_{what}'])}"
            for what in ("segment", "version", "feature")
            if r[f"names_{what}"] is not None
        )
        layer = f"{_fmt(r['top_layer'])} ({_fmt(r['want_layer'])})"
        lines.append((
            r["history"], r["want"], _fmt(r["pages"]), _fmt(r["tickets"]),
            f"{r['false_pages']}/{r['false_tickets']}", _fmt(r["hours_to_page"]),
            _fmt(r["first_rule"]), _fmt(r["caught"]), layer, names,
        ))  # fmt: skip
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    out += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


def totals(rows: list[dict[str, Any]]) -> str:
    quiet = [r for r in rows if r["class"] in QUIET or r["class"] == "regression_calm"]
    calm = [r for r in rows if r["class"] in ("calm", "regression_calm")]
    # calm runs a month, the regression's calm history an incident history's length
    calm_days = sum(QUIET_DAYS if r["class"] in QUIET else INCIDENT_DAYS for r in calm)
    incidents = [r for r in rows if r["want"] != "quiet"]
    layered = [r for r in incidents if r["want_layer"]]
    right = sum(r["top_layer"] == r["want_layer"] for r in layered)
    pages = [r for r in incidents if r["want"] == "page"]
    tickets = [r for r in incidents if r["want"] == "ticket"]
    false_pages = sum(r["false_pages"] for r in incidents)
    lines = [
        f"quiet histories: {len(quiet)}, pages {sum(r['pages'] for r in quiet)} (target 0)",
        f"calm: {sum(r['tickets'] for r in calm)} tickets over {calm_days} calm days "
        f"(target at most 2 per 90)",
        f"page-worthy incidents paged within their deadline: "
        f"{sum(bool(r['caught']) for r in pages)}/{len(pages)}",
        f"ticket-worthy incidents raised (naming the segment where there is one): "
        f"{sum(bool(r['caught']) for r in tickets)}/{len(tickets)}",
        f"false pages before an incident's start: {false_pages}",
        f"triage's top layer right: {right}/{len(layered)} (target 9 in 10)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seeds", help="comma-separated seeds (default 1..draws)")
    parser.add_argument("--only", help="comma-separated classes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("incidents.jsonl"))
    parser.add_argument(
        "--resume", action="store_true", help="keep the histories already in --out, run the rest"
    )
    args = parser.parse_args(argv)
    kinds = args.only.split(",") if args.only else [*CLASSES, *REGRESSION]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else range(1, args.draws + 1)
    rows: list[dict[str, Any]] = []
    if args.resume and args.out.exists():
        rows = [json.loads(line) for line in args.out.read_text(encoding="utf-8").splitlines()]
    else:
        args.out.write_text("", encoding="utf-8")
    done = {r["history"] for r in rows}
    # Draw by draw (a stopped run leaves whole draws), the long histories of each first (a
    # month, or ten times the traffic), so none is left alone at the end of a draw.
    jobs = sorted(
        ((k, s) for k in kinds for s in seeds if f"{k}/{s}" not in done),
        key=lambda j: (j[1], j[0] not in QUIET, j[0] != "trivial_shift"),
    )
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {pool.submit(one, k, s): (k, s) for k, s in jobs}
        for future in as_completed(futures):
            kind, seed = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # one broken history must not lose the others
                print(f"  {kind}/{seed}: failed: {exc!r}", file=sys.stderr, flush=True)
                continue
            rows.append(row)
            with args.out.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row, default=str) + "\n")
            print(f"  {row['history']}: caught {_fmt(row['caught'])}, {row['pages']} pages, "
                  f"{row['tickets']} tickets, {row['seconds']:.0f} s", file=sys.stderr,
                  flush=True)  # fmt: skip
    print(table(rows))
    print()
    print(totals(rows))
    print(f"\n({len(rows)} histories in {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
