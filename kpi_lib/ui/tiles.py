"""KPI tiles as plain HTML: value, change against the previous period, sparkline, anomaly badge.

Plain HTML and an inline SVG sparkline render instantly in any page (Panel, the landing page, an
email) without shipping a charting library: the executive dashboard shows its numbers before its
charts have loaded.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..kpis import Kpi

CSS = """
.kpi-tiles {display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; width: 100%;}
.kpi-tile {border-radius: 10px; padding: 12px 14px; background: var(--kpi-tile-bg, #ffffff);
  border: 1px solid var(--kpi-tile-border, #e3e6ea); box-shadow: 0 1px 2px rgba(0,0,0,.04);
  font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; position: relative; min-height: 112px;}
.kpi-tile .kpi-label {font-size: 13px; color: var(--kpi-muted, #5f6b7a); margin-bottom: 4px;}
.kpi-tile .kpi-value {font-size: 26px; font-weight: 650; color: var(--kpi-fg, #15202b); line-height: 1.15;}
.kpi-tile .kpi-change {font-size: 12.5px; margin-top: 2px;}
.kpi-tile .kpi-good {color: #1a7f37;} .kpi-tile .kpi-bad {color: #cf222e;} .kpi-tile .kpi-flat {color: #6e7781;}
.kpi-tile .kpi-spark {margin-top: 6px; display: block;}
.kpi-tile .kpi-badge {position: absolute; top: 10px; right: 10px; font-size: 11px; font-weight: 600;
  background: #fff1e5; color: #bc4c00; border: 1px solid #ffb77c; border-radius: 10px; padding: 1px 7px;}
.kpi-tile.kpi-alert {border-color: #ffb77c;}
.kpi-dark .kpi-tile {--kpi-tile-bg: #1f2630; --kpi-tile-border: #323c48; --kpi-fg: #e6edf3; --kpi-muted: #9aa7b4;}
"""


@dataclass
class TileData:
    kpi: Kpi
    value: float | None
    previous: float | None
    series: Sequence[float]  # for the sparkline, oldest first
    open_anomalies: int = 0
    masked: bool = False
    period_label: str = "vs previous period"
    last_filling: bool = False  # the series ends on a period still filling (today)


def sparkline(
    values: Sequence[float],
    width: int = 160,
    height: int = 34,
    color: str = "#4c78a8",
    last_filling: bool = False,
) -> str:
    """An inline SVG polyline (no JavaScript). ``last_filling``: the last point is a period still
    filling (today so far); it is drawn dotted and left out of the scale, or a few hours of today
    beside full days would read as a crash and flatten the rest of the line."""
    pts = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    filling = last_filling and len(pts) >= 3 and pts[-1] == values[-1]
    if len(pts) < 2:
        return f'<svg class="kpi-spark" width="{width}" height="{height}"></svg>'
    scaled = pts[:-1] if filling else pts
    lo, hi = min(scaled), max(scaled)
    span = (hi - lo) or 1.0
    step = width / (len(pts) - 1)

    def y(v: float) -> float:
        return min(height - 1.0, max(1.0, height - 3 - (v - lo) / span * (height - 6)))

    coords = [f"{i * step:.1f},{y(v):.1f}" for i, v in enumerate(pts)]
    solid = coords[:-1] if filling else coords
    dotted = (
        f'<polyline class="kpi-spark-filling" fill="none" stroke="{color}" stroke-width="1.6" '
        f'stroke-dasharray="2 3" opacity="0.7" points="{" ".join(coords[-2:])}"/>'
        if filling
        else ""
    )
    return (
        f'<svg class="kpi-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" aria-hidden="true"><polyline fill="none" stroke="{color}" '
        f'stroke-width="1.6" points="{" ".join(solid)}"/>{dotted}</svg>'
    )


def change_html(kpi: Kpi, value: float | None, previous: float | None, label: str) -> str:
    if (
        value is None
        or previous is None
        or previous == 0
        or any(isinstance(x, float) and math.isnan(x) for x in (value, previous))
    ):
        return f'<div class="kpi-change kpi-flat">no comparison {html.escape(label)}</div>'
    change = (value - previous) / abs(previous)
    if abs(change) < 0.0005:
        return f'<div class="kpi-change kpi-flat">▬ 0.0% {html.escape(label)}</div>'
    up = change > 0
    good = up == kpi.up_is_good
    arrow = "▲" if up else "▼"
    return (
        f'<div class="kpi-change {"kpi-good" if good else "kpi-bad"}" data-change="{change:.6f}">'
        f"{arrow} {abs(change):.1%} {html.escape(label)}</div>"
    )


def tile_html(t: TileData) -> str:
    k = t.kpi
    value = "•••" if t.masked else k.format_compact(t.value)
    badge = (
        f'<span class="kpi-badge" title="open incidents on {html.escape(k.label)}">⚠ {t.open_anomalies} open</span>'
        if t.open_anomalies and not t.masked  # an incident on a masked KPI says how it moved
        else ""
    )
    change = "" if t.masked else change_html(k, t.value, t.previous, t.period_label)
    spark = "" if t.masked else sparkline(t.series, last_filling=t.last_filling)
    full = "" if t.masked else k.format_value(t.value)
    return (
        f'<div class="kpi-tile{" kpi-alert" if t.open_anomalies else ""}" data-kpi="{k.name}" '
        f'title="{html.escape(k.description)}">{badge}'
        f'<div class="kpi-label">{html.escape(k.label)}</div>'
        f'<div class="kpi-value" data-kpi-value="{k.name}" title="{html.escape(full)}" elementtiming="kpi-tiles">'
        f"{html.escape(value)}</div>"
        f"{change}{spark}</div>"
    )


def tiles_html(tiles: Sequence[TileData], dark: bool = False) -> str:
    body = "".join(tile_html(t) for t in tiles)
    return f'<style>{CSS}</style><div class="kpi-tiles{" kpi-dark" if dark else ""}">{body}</div>'
