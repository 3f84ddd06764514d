"""plot_incidents(): the series, its expected band and its incidents on one matplotlib chart.

Builds a bare ``matplotlib.figure.Figure`` (no pyplot state), so it works in notebooks, in papermill
jobs and headless for email reports (``fig.savefig(...)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from kpi_lib.anomaly.incidents import Incident

_COLORS = {"high": "#c0392b", "medium": "#e67e22", "low": "#f1c40f"}


def plot_incidents(
    series: pd.Series | pd.DataFrame,
    incidents: Sequence[Incident] | None = None,
    ax=None,
    title: str | None = None,
):
    """Draw `series` (a Series, or the frame :func:`detect` returns, which adds the expected value and
    band, and its warm-up: the first rows, where no alarm could fire, shaded grey) with each incident
    shaded from start to end (or to the last row while ongoing) and its peak marked. Returns the
    Figure."""
    from matplotlib.figure import Figure

    if ax is None:
        fig = Figure(figsize=(10, 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    frame = series if isinstance(series, pd.DataFrame) else None
    if frame is not None and incidents is None and "incident" in frame.columns:
        from kpi_lib.anomaly.detect import incidents as find

        incidents = find(frame)
    values = frame["value"] if frame is not None else series
    x = values.index
    warm = frame.attrs.get("judged_from", 0) if frame is not None else 0
    if warm is None or warm > 0:  # None: too short for any row to be judged
        end = x[-1] if warm is None or warm >= len(x) else x[warm]
        ax.axvspan(x[0], end, color="#95a5a6", alpha=0.15, linewidth=0, label="warm-up (not judged)")
    if frame is not None and {"lower", "upper"} <= set(frame.columns):
        ax.fill_between(
            x,
            frame["lower"].to_numpy(float),
            frame["upper"].to_numpy(float),
            color="#3498db",
            alpha=0.15,
            linewidth=0,
            label="expected range",
        )
        ax.plot(
            x, frame["expected"].to_numpy(float), color="#3498db", linewidth=0.8, alpha=0.7, label="expected"
        )
    ax.plot(x, values.to_numpy(float), color="#2c3e50", linewidth=1.0, label=values.name or "value")
    for inc in incidents or ():
        color = _COLORS.get(inc.severity, "#e74c3c")
        ax.axvspan(inc.start, inc.end if inc.end is not None else x[-1], color=color, alpha=0.25, linewidth=0)
        ax.plot([inc.peak], [inc.value], marker="o", color=color, markersize=5)
    if incidents:
        ax.plot(
            [],
            [],
            marker="s",
            linestyle="",
            color=_COLORS["high"],
            alpha=0.4,
            label=f"incidents ({len(incidents)})",
        )
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small", frameon=False)
    ax.grid(alpha=0.3)
    return fig
