"""The revenue explorer: a KPI over time with a brushable bqplot chart, tiles, table and live updates."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import pandas as pd

from ... import kpis, stream
from ...auth import User
from .runtime import (
    CSS,
    GRAINS,
    MAX_TABLE_ROWS,
    PALETTE,
    Heartbeat,
    Status,
    Throttle,
    change_html,
    esc,
    period_label,
    tick_format,
    value_cell,
)

log = logging.getLogger(__name__)


# --- revenue explorer ------------------------------------------------------------------------------


class RevenueExplorer:
    """Pick a KPI, grain, dimension and date range; a bqplot chart (pan/zoom, brush) and a table of
    the brushed periods. Refreshes itself (at most once per ``refresh_interval`` s) when new data
    lands, while the page's :class:`Heartbeat` says someone is looking."""

    def __init__(
        self,
        user: User,
        kpi: str = "revenue",
        grain: str = "day",
        by: str | None = None,
        start: str | date | None = None,
        end: str | date | None = None,
        top_n: int = 6,
        live: bool = True,
        refresh_interval: float = 1.0,
        heartbeat_interval: float = 3.0,
        heartbeat_timeout: float = 30.0,
    ) -> None:
        self.user = user
        self.top_n = int(top_n)
        self.defs = {n: k for n, k in kpis.definitions().items() if user.can_see(n)}
        self.dims = kpis.dimensions()
        self.result: kpis.QueryResult | None = None
        self.total: kpis.QueryResult | None = None
        self.selection_total: kpis.QueryResult | None = None
        self.refreshes = 0
        self._quiet = False
        self._dates_set_by_user = start is not None
        self._subscription: stream.Subscription | None = None
        self.status = Status()
        self.wants_live = live
        self.heartbeat: Heartbeat | None = None
        self.throttle = Throttle(self.refresh, refresh_interval)
        if not self.defs:
            self.status.set("error", f"{user.name} may not see any KPI; ask an admin for a role.")
            self.widget = widgets.VBox([widgets.HTML(CSS), self.status.widget])
            return
        kpi = kpi if kpi in self.defs else next(iter(self.defs))
        grain = grain if grain in dict((g, g) for _, g in GRAINS) else "day"

        style = {"description_width": "initial"}
        self.kpi_w = widgets.Dropdown(
            options=[(k.label, n) for n, k in self.defs.items()],
            value=kpi,
            description="KPI",
            style=style,
            layout=widgets.Layout(width="220px"),
        )
        self.grain_w = widgets.ToggleButtons(options=GRAINS, value=grain, description="Grain", style=style)
        self.grain_w.style.button_width = "64px"
        self.by_w = widgets.Dropdown(
            options=self._by_options(kpi), description="By", style=style, layout=widgets.Layout(width="200px")
        )
        self.by_w.value = by if by in self.defs[kpi].dimensions else ""
        s, e = self._default_dates(grain)
        self.from_w = widgets.DatePicker(value=_as_date(start) or s, description="From", style=style)
        self.to_w = widgets.DatePicker(value=_as_date(end) or e, description="To", style=style)
        self.mode_w = widgets.ToggleButtons(
            options=[("Select", "select"), ("Pan / zoom", "pan")],
            value="select",
            tooltips=["Drag to select periods", "Drag to pan, wheel to zoom"],
        )
        self.mode_w.style.button_width = "96px"
        self.reset_w = widgets.Button(
            description="Reset view", icon="undo", layout=widgets.Layout(width="110px")
        )
        for w, cls in (
            (self.kpi_w, "kpi-kpi"),
            (self.grain_w, "kpi-grain"),
            (self.by_w, "kpi-by"),
            (self.from_w, "kpi-from"),
            (self.to_w, "kpi-to"),
            (self.mode_w, "kpi-mode"),
            (self.reset_w, "kpi-reset"),
        ):
            w.add_class(cls)

        self.x_sc = bq.DateScale()
        self.y_sc = bq.LinearScale()
        self.lines = bq.Lines(
            x=np.array([], dtype="datetime64[ms]"),
            y=np.array([]),
            scales={"x": self.x_sc, "y": self.y_sc},
            stroke_width=1.6,
            colors=list(PALETTE),
            display_legend=False,
            labels=[],
        )
        self.x_ax = bq.Axis(scale=self.x_sc, grid_lines="none")
        self.y_ax = bq.Axis(
            scale=self.y_sc,
            orientation="vertical",
            grid_lines="dashed",
            tick_format=tick_format(self.defs[kpi]),
        )
        self.brush = bq.interacts.BrushIntervalSelector(scale=self.x_sc, marks=[self.lines], color="#2c7be5")
        self.panzoom = bq.PanZoom(scales={"x": [self.x_sc]})
        self.fig = bq.Figure(
            marks=[self.lines],
            axes=[self.x_ax, self.y_ax],
            interaction=self.brush,
            animation_duration=0,
            legend_location="top-left",
            fig_margin={"top": 16, "bottom": 36, "left": 64, "right": 16},
            layout=widgets.Layout(width="100%", height="340px"),
        )
        self.fig.add_class("kpi-chart")
        self.tiles = widgets.HTML()
        self.tiles.add_class("kpi-totals")
        self.table = widgets.HTML()
        self.table.add_class("kpi-table-box")
        self.note = widgets.HTML()

        self.heartbeat = Heartbeat(
            interval=heartbeat_interval,
            timeout=heartbeat_timeout,
            on_lost=self._pause,
            on_back=self._resume,
        )
        controls = widgets.VBox(
            [
                widgets.HBox(
                    [self.kpi_w, self.by_w, self.from_w, self.to_w],
                    layout=widgets.Layout(flex_flow="row wrap", gap="8px"),
                ),
                widgets.HBox(
                    [self.grain_w, self.mode_w, self.reset_w],
                    layout=widgets.Layout(flex_flow="row wrap", gap="12px"),
                ),
            ]
        )
        self.widget = widgets.VBox(
            [
                widgets.HTML(CSS),
                controls,
                self.status.widget,
                self.tiles,
                self.fig,
                self.note,
                self.table,
                self.heartbeat.widget,
            ]
        )
        self.widget.add_class("kpi-explorer")

        self.kpi_w.observe(self._on_kpi, names="value")
        self.grain_w.observe(self._on_grain, names="value")
        self.by_w.observe(self._on_control, names="value")
        self.from_w.observe(self._on_dates, names="value")
        self.to_w.observe(self._on_dates, names="value")
        self.mode_w.observe(self._on_mode, names="value")
        self.reset_w.on_click(self._on_reset)
        self.brush.observe(self._on_brush, names=["selected", "brushing"])

        self.refresh()
        if live:
            self.start_live()

    # -- display ------------------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def _ipython_display_(self) -> None:
        """The numbers as plain HTML first, then the widgets. The ``kpi`` Voila template shows this
        snapshot as the page streams in, so the range total is on screen at first paint instead of
        after Voila's scripts, the kernel connection and the widget scripts (~2 s); CSS hides it
        once the widgets have drawn (and always inside the rendered cells: one copy only)."""
        from IPython.display import HTML, display

        display(HTML(self.first_paint_html()))
        display(self.widget)

    def first_paint_html(self) -> str:
        """The range total as the widgets will show it, without them (the controls' and chart's room
        kept, so nothing jumps when they arrive)."""
        if self.result is None:
            return ""
        cells = self._total_cell().replace("kpi-range-total", "kpi-first-total")
        return (
            f"{CSS}<style>body:has(.kpi-explorer .kpi-totals) .kpi-first-paint, #rendered_cells .kpi-first-paint,"
            " body:has(> .kpi-first-paint) #loading {display:none !important}"
            " .kpi-first-paint {padding:8px; font-family:var(--jp-ui-font-family, system-ui, sans-serif)}</style>"
            '<div class="kpi-first-paint" aria-busy="true">'
            '<div class="kpi-first-status" style="font-size:12.5px; color:#5f6b7a"><span class="kpi-spin"></span>Loading the chart…</div>'
            f'<div class="kpi-tiles">{cells}</div><div style="height:340px"></div></div>'
        )

    # -- what is asked -------------------------------------------------------------------------------

    def _by_options(self, kpi: str) -> list[tuple[str, str | None]]:
        dims = self.defs[kpi].dimensions
        return [("(none)", "")] + [(self.dims.get(d, {}).get("label", d), d) for d in dims]

    @staticmethod
    def _default_dates(grain: str) -> tuple[date, date]:
        when = kpis.as_of()  # the data's own "now": an export opens on its last days, not on today
        s, e = kpis.default_range(grain, as_of=when)
        last = e - timedelta(microseconds=1)
        return s.date(), min(last.date(), when.at.date())

    def query_args(self) -> dict[str, Any]:
        """The arguments of :func:`kpi_lib.kpis.query` that the chart and table show."""
        grain = self.grain_w.value
        frm, to = self.from_w.value, self.to_w.value
        today = kpis.as_of().at.date()
        end = (
            None
            if to is None or to >= today
            else datetime.combine(to + timedelta(days=1), datetime.min.time())
        )
        start = None if frm is None else kpis.floor_period(datetime.combine(frm, datetime.min.time()), grain)
        start, end = kpis.default_range(grain, start, end)
        by = self.by_w.value
        args: dict[str, Any] = {
            "kpi": self.kpi_w.value,
            "grain": grain,
            "start": start,
            "end": end,
            "by": [by] if by else [],
        }
        if by and not self.user.is_masked(self.kpi_w.value):  # a masked KPI's ranking is its values
            args["top"] = self.top_n
        return args

    @property
    def kpi(self) -> kpis.Kpi:
        return self.defs[self.kpi_w.value]

    # -- loading ---------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Query again (with the controls as they are) and redraw everything."""
        with self.status.busy("Loading…"):
            args = self.query_args()
            k = self.kpi
            result = kpis.query(**args)
            total = kpis.query(k.name, "total", args["start"], args["end"], compare="previous_period")
            self.result, self.total = result, total
            self.refreshes += 1
            self._draw_chart()
            self._draw_tiles()
            self._draw_table()
            self.status.set(
                "ready",
                f"Updated {datetime.now():%H:%M:%S} · {kpis.as_of().describe()} · "
                f"data version {kpis.sync_versions()} · "
                f"{', '.join(result.catalog_entries)} ({result.cache_level}) · {result.elapsed_ms:.0f} ms",
            )

    def _wide(self) -> pd.DataFrame:
        """Periods x series (one column 'value', or one per dimension value)."""
        r = self.result
        if r is None or r.df.empty:
            return pd.DataFrame()
        if not r.by:
            return r.df.set_index("period")[["value"]]
        dim = r.by[0]
        wide = r.df.pivot(index="period", columns=dim, values="value")  # one row per period and value
        if self.user.is_masked(r.kpi.name):  # by name: an order by value would tell the masked values
            return wide[sorted(wide.columns, key=str)[: self.top_n]]
        order = r.df.groupby(dim)["value"].sum().sort_values(ascending=False).index
        return wide[[c for c in order if c in wide.columns]]

    def _draw_chart(self) -> None:
        k, wide = self.kpi, self._wide()
        self.y_ax.tick_format = tick_format(k)
        self.y_ax.label = k.prefix if k.currency and k.currency != "USD" else ""
        if wide.empty or self.user.is_masked(k.name):
            with self.lines.hold_sync():
                self.lines.x = np.array([], dtype="datetime64[ms]")
                self.lines.y = np.array([])
            # empty axes read as a flat line at $0 (with ticks like "$900m"): the note says why instead
            self.fig.layout.display = "none"
            self.note.value = (
                f'<div class="kpi-note">{esc(k.label)} is masked for your role.</div>'
                if self.user.is_masked(k.name)
                else '<div class="kpi-note">No data in this range.</div>'
            )
            return
        self.fig.layout.display = None
        x = wide.index.to_numpy(dtype="datetime64[ms]")
        y = wide.to_numpy(dtype=float).T
        labels = [str(c) for c in wide.columns] if self.result.by else [k.label]
        with self.lines.hold_sync():
            self.lines.x = x
            self.lines.y = y if len(labels) > 1 else y[0]
            self.lines.labels = labels
            self.lines.display_legend = bool(self.result.by)
            self.lines.colors = (
                list(PALETTE[: max(1, len(labels))]) if len(labels) <= len(PALETTE) else list(PALETTE)
            )
        self.note.value = ""

    def _total_cell(self) -> str:
        k, r, t = self.kpi, self.result, self.total
        u = self.user
        return (
            f'<div class="kpi-tile kpi-range-total" data-kpi="{esc(k.name)}">'
            f'<div class="kpi-label">{esc(k.label)} · {r.start:%Y-%m-%d} → {(r.end - timedelta(seconds=1)):%Y-%m-%d}</div>'
            f'<div class="kpi-value"{_data_value(u, k, t.value)}>{esc(u.show(k.name, k.format_value(t.value)))}</div>'
            f"{change_html(k, None if u.is_masked(k.name) else t.change, 'vs previous period')}</div>"
        )

    def _draw_tiles(self) -> None:
        k, r = self.kpi, self.result
        u = self.user
        cells = [self._total_cell()]
        sel = self.selected_range()
        if sel is not None:
            s, e = sel
            st = kpis.query(k.name, "total", s, e)
            self.selection_total = st
            cells.append(
                f'<div class="kpi-tile kpi-selection-total" data-start="{s.isoformat()}" data-end="{e.isoformat()}">'
                f'<div class="kpi-label">Selected · {s:%Y-%m-%d %H:%M} → {e:%Y-%m-%d %H:%M}</div>'
                f'<div class="kpi-value"{_data_value(u, k, st.value)}>{esc(u.show(k.name, k.format_value(st.value)))}</div>'
                f'<div class="kpi-sub">{self._selected_count()} {esc(r.grain)}(s)</div></div>'
            )
        else:
            self.selection_total = None
        self.tiles.value = f'<div class="kpi-tiles">{"".join(cells)}</div>'

    def selected_range(self) -> tuple[datetime, datetime] | None:
        """[start, end) of the brushed periods, or None when nothing is brushed."""
        periods = self._selected_periods()
        if periods is None or len(periods) == 0:
            return None
        r = self.result
        first = periods.min().to_pydatetime()
        last = kpis.next_period(periods.max().to_pydatetime(), r.grain)
        return max(first, r.start), min(last, r.end)

    def _selected_periods(self) -> pd.DatetimeIndex | None:
        sel = self.brush.selected
        if self.result is None or sel is None or len(sel) != 2:
            return None
        lo, hi = sorted(pd.to_datetime(np.asarray(sel)))
        lo, hi = (t.tz_localize(None) if t.tzinfo else t for t in (lo, hi))
        periods = (
            pd.DatetimeIndex(self.result.df["period"].drop_duplicates())
            if not self.result.df.empty
            else pd.DatetimeIndex([])
        )
        return periods[(periods >= lo) & (periods <= hi)]

    def _selected_count(self) -> int:
        p = self._selected_periods()
        return 0 if p is None else len(p)

    def _draw_table(self) -> None:
        k, r, u = self.kpi, self.result, self.user
        wide = self._wide()
        sel = self._selected_periods()
        if sel is not None:
            wide = wide[wide.index.isin(sel)]
        wide = wide.sort_index(ascending=False)
        shown = wide.head(MAX_TABLE_ROWS)
        head_cols = [k.label] if not r.by else [str(c) for c in wide.columns]
        dim_label = self.dims.get(r.by[0], {}).get("label", r.by[0]) if r.by else ""
        rows = []
        for period, values in shown.iterrows():
            cells = "".join(value_cell(u, k, v) for v in values.to_numpy())
            rows.append(
                f'<tr data-period="{period.isoformat()}"><td>{esc(period_label(period, r.grain))}</td>{cells}</tr>'
            )
        head = "".join(f"<th>{esc(c)}</th>" for c in head_cols)
        what = "selected " if sel is not None else ""
        note = (
            f"{len(wide)} {what}{esc(r.grain)}(s), newest first"
            + (
                f"; the newest {MAX_TABLE_ROWS} shown (brush the chart to narrow)"
                if len(wide) > MAX_TABLE_ROWS
                else ""
            )
            + (
                (
                    f" · the first {self.top_n} {esc(dim_label.lower())} values by name"
                    if u.is_masked(k.name)
                    else f" · top {self.top_n} {esc(dim_label.lower())} values by {esc(k.label.lower())}"
                )
                if r.by
                else ""
            )
        )
        attrs = (
            f'data-kpi="{esc(k.name)}" data-grain="{esc(r.grain)}" data-by="{esc(",".join(r.by))}" '
            f'data-start="{r.start.isoformat()}" data-end="{r.end.isoformat()}" data-version="{r.version}" '
            f'data-refreshes="{self.refreshes}" data-selected="{"yes" if sel is not None else "no"}"'
        )
        self.table.value = (
            f'<div class="kpi-note">{note}</div>'
            f'<div class="kpi-table-wrap"><table class="kpi-table" {attrs}><thead><tr><th>{esc(r.grain.title())}</th>'
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    # -- events -----------------------------------------------------------------------------------------

    def _on_kpi(self, _change: Any) -> None:
        if self._quiet:
            return
        with self._quietly():
            current = self.by_w.value
            self.by_w.options = self._by_options(self.kpi_w.value)
            self.by_w.value = current if current in self.kpi.dimensions else ""
        self.refresh()

    def _on_grain(self, _change: Any) -> None:
        if self._quiet:
            return
        if not self._dates_set_by_user:
            s, e = self._default_dates(self.grain_w.value)
            with self._quietly():
                self.from_w.value, self.to_w.value = s, e
        self._clear_brush()
        self.refresh()

    def _on_dates(self, _change: Any) -> None:
        if self._quiet:
            return
        self._dates_set_by_user = True
        self._clear_brush()
        self.refresh()

    def _on_control(self, _change: Any) -> None:
        if not self._quiet:
            self.refresh()

    def _on_mode(self, change: Any) -> None:
        self.fig.interaction = self.brush if change["new"] == "select" else self.panzoom

    def _on_reset(self, _button: Any) -> None:
        with self.x_sc.hold_sync():
            self.x_sc.min = None
            self.x_sc.max = None
        self._clear_brush()
        self._after_selection()

    def _clear_brush(self) -> None:
        with self._quietly():
            self.brush.selected = None

    def _on_brush(self, _change: Any) -> None:
        if self._quiet or self.brush.brushing:
            return
        self._after_selection()

    def _after_selection(self) -> None:
        if self.result is None:
            return
        with self.status.busy("Loading selection…"):
            self._draw_tiles()
            self._draw_table()
            self.status.set(
                "ready",
                f"{self._selected_count() or 'All'} period(s) selected"
                if self.brush.selected is not None
                else "Showing every period",
            )

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        old, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = old

    # -- live updates --------------------------------------------------------------------------------------

    @property
    def live(self) -> bool:
        return self._subscription is not None

    def start_live(self) -> None:
        """Re-query when a new data version lands (throttled), until :meth:`stop_live`."""
        if self._subscription is None:
            self._subscription = stream.subscribe(self.throttle.trigger)

    def stop_live(self) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        self.throttle.cancel()

    def _pause(self) -> None:
        if not self.live:
            return
        self.stop_live()
        self.status.set(
            "paused", "Live updates paused: this page seems hidden or closed. They resume when it is back."
        )

    def _resume(self) -> None:
        if not self.wants_live:
            return
        self.start_live()
        self.throttle.trigger()  # whatever changed while paused

    def close(self) -> None:
        self.stop_live()
        if self.heartbeat is not None:
            self.heartbeat.close()


def _data_value(user: User, k: kpis.Kpi, v: float | None) -> str:
    if user.is_masked(k.name) or v is None:
        return ""
    return f' data-value="{float(v)!r}"'


def _as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    return pd.Timestamp(value).date()
