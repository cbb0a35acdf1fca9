"""The report's charts: inline SVG (no script), bars of training against live data and a
line over time with the change marked. Every label that came from data is escaped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from watchkeeper.profiles.binning import Binning
from watchkeeper.report.html import esc


def display_bins(
    binning: Binning, ref: Any, live: Any
) -> tuple[list[str], list[float], list[float]]:
    if binning.kind == "numeric":
        r, lv = binning.coarse_counts(ref), binning.coarse_counts(live)
        edges = binning.coarse_edges()
        labels = [
            "below",
            *[f"{edges[i]:.2g} to {edges[i + 1]:.2g}" for i in range(len(edges) - 1)],
            "above",
        ]
    else:
        r, lv = np.asarray(ref), np.asarray(live)
        labels = list(binning.labels())
    r = np.asarray(r, dtype=float)
    lv = np.asarray(lv, dtype=float)
    keep = (r + lv) > 0
    r_share = r / max(r.sum(), 1)
    l_share = lv / max(lv.sum(), 1)
    out = [(lab, a, b) for lab, a, b, k in zip(labels, r_share, l_share, keep, strict=False) if k]
    out = out[:20]
    return [o[0] for o in out], [float(o[1]) for o in out], [float(o[2]) for o in out]


W, H, PAD = 640, 260, 40


def bar_chart(labels: list[str], ref: list[float], live: list[float], title: str) -> str:
    n = max(len(labels), 1)
    top = max([*ref, *live, 1e-9])
    band = (W - 2 * PAD) / n
    bars = []
    for i, (a, b) in enumerate(zip(ref, live, strict=True)):
        x = PAD + i * band
        for j, (v, cls) in enumerate(((a, "ref"), (b, "live"))):
            h = (H - 2 * PAD) * v / top
            bars.append(
                f'<rect class="{cls}" x="{x + j * band / 2 + 1:.1f}" y="{H - PAD - h:.1f}" '
                f'width="{max(band / 2 - 2, 1):.1f}" height="{h:.1f}"><title>{esc(labels[i])}: '
                f"{'training' if cls == 'ref' else 'live'} {v:.1%}</title></rect>"
            )
    every = max(-(-n // 6), 1)  # at most about six labels, so they never overlap
    ticks = "".join(
        f'<text x="{PAD + (i + 0.5) * band:.1f}" y="{H - PAD + 14}" class="tick" '
        f'text-anchor="middle">{esc(lab[:14])}</text>'
        for i, lab in enumerate(labels)
        if i % every == 0
    )
    legend = (
        f'<rect class="ref" x="{W - 190}" y="8" width="12" height="12"/>'
        f'<text x="{W - 174}" y="18" class="tick">training data</text>'
        f'<rect class="live" x="{W - 90}" y="8" width="12" height="12"/>'
        f'<text x="{W - 74}" y="18" class="tick">latest</text>'
    )
    axis = f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" class="axis"/>'
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">'
        f"{axis}{''.join(bars)}{ticks}{legend}</svg>"
    )


def line_chart(
    series: list[tuple[str, list[tuple[datetime, float]]]], title: str, marker: datetime | None
) -> str:
    points = [p for _, s in series for p in s]
    if not points:
        return ""
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points)
    lo = min(v for _, v in points)
    hi = max(v for _, v in points)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    span = (t1 - t0).total_seconds() or 1.0

    def x(t: datetime) -> float:
        return PAD + (W - 2 * PAD) * (t - t0).total_seconds() / span

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * (v - lo) / (hi - lo)

    lines = []
    legend = []
    for i, (name, s) in enumerate(series):
        if not s:
            continue
        coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in s)
        lines.append(
            f'<polyline class="line s{i}" points="{coords}"><title>{esc(name)}</title></polyline>'
        )
        legend.append(
            f'<line x1="{PAD + 150 * i}" y1="14" x2="{PAD + 150 * i + 18}" y2="14" '
            f'class="line s{i}"/>'
            f'<text x="{PAD + 150 * i + 22}" y="18" class="tick">{esc(name)}</text>'
        )
    mark = ""
    if marker is not None and t0 <= marker <= t1:
        mark = (
            f'<line x1="{x(marker):.1f}" y1="{PAD - 10}" x2="{x(marker):.1f}" y2="{H - PAD}" '
            'class="marker"/>'
            f'<text x="{x(marker) + 4:.1f}" y="{PAD - 2}" class="tick">change</text>'
        )
    axes = (
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" class="axis"/>'
        f'<text x="{PAD}" y="{H - PAD + 16}" class="tick">{t0:%Y-%m-%d}</text>'
        f'<text x="{W - PAD}" y="{H - PAD + 16}" class="tick" '
        f'text-anchor="end">{t1:%Y-%m-%d}</text>'
        f'<text x="4" y="{y(hi) + 4:.1f}" class="tick">{hi:.3g}</text>'
        f'<text x="4" y="{y(lo) + 4:.1f}" class="tick">{lo:.3g}</text>'
    )
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">'
        f"{axes}{''.join(lines)}{mark}{''.join(legend)}</svg>"
    )


__all__ = ["bar_chart", "display_bins", "line_chart"]
