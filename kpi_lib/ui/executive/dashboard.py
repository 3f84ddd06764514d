"""One browser session's executive dashboard: filters, tiles, trend, breakdown with drill-down."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import logging
import threading
import time
from datetime import date, timedelta

import pandas as pd
import panel as pn
import param
from panel.io.document import unlocked

from ... import auth, incidents, kpis
from ..tiles import TileData, tiles_html
from . import exports
from .charts import POOL, PREVIOUS, SO_FAR, THIS, BreakdownChart, TrendChart
from .live import BUDGET, HUB, NEWEST

log = logging.getLogger(__name__)

DIMENSIONS = ("region", "channel", "category")
DRILL_ORDER = ("region", "category", "product")
ALL = "All"
TILE_KPIS = ("revenue", "orders", "aov", "units", "customers", "new_customers", "gross_margin", "return_rate")


def _as_reader(method):
    """Run a dashboard method in its user's row scope: every query it makes reads only their rows
    (the page's callbacks and the live hub's thread do not inherit the session's context)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with auth.acting_as(self.user):
            return method(self, *args, **kwargs)

    return wrapper


class _Day(param.Date):
    """A day in the URL as people write it (``start=2011-11-01``). param.Date only reads
    '2011-11-01T00:00:00.000000', and Panel drops the whole query (dates, region, ...) when one
    value does not read."""

    @classmethod
    def serialize(cls, value):
        return None if value is None else pd.Timestamp(value).strftime("%Y-%m-%d")

    @classmethod
    def deserialize(cls, value):
        if value in (None, "", "null"):
            return None
        return pd.Timestamp(str(value).strip('"')).date()


@contextlib.contextmanager
def _one_walk(doc):
    """Bokeh walks a document's whole model graph after every change that adds or drops a model
    (new breadcrumb buttons, a new axis format): ~15-30 ms each on this page, several per redraw
    (issue 18's profile: a tenth of a Panel worker's time while five pages opened). Frozen, it
    walks it once, at the end."""
    if doc is None:
        yield
        return
    with doc.models.freeze():
        yield


def _apply_each(dash: ExecutiveDashboard, values: dict) -> None:
    """A URL with one unreadable value still opens with every other value it carries."""
    for name, value in values.items():
        try:
            dash.param.update(**{name: value})
        except Exception as exc:  # a bad link: say which part, keep the rest
            log.info("URL parameter %s=%r ignored: %s", name, value, exc)


class ExecutiveDashboard(param.Parameterized):
    """One browser session's dashboard. Parameters are mirrored in the URL (shareable links)."""

    kpi = param.Selector(default="revenue", objects=list(TILE_KPIS), doc="KPI for the trend and breakdown")
    start = _Day(doc="First day (inclusive)")
    end = _Day(doc="Last day (inclusive)")
    region = param.String(default=ALL)
    channel = param.String(default=ALL)
    category = param.String(default=ALL)
    drill = param.String(default="", doc="Drill path, e.g. 'region:Europe|category:Books'")

    def __init__(self, dark: bool = False, as_of=None, **params) -> None:
        self.user = auth.current_user()
        self._as_of_asked = as_of  # None: the data's own "now" (kpis.as_of), followed as data lands
        with auth.acting_as(self.user):  # the as-of of the rows this user may see
            self.as_of = kpis.as_of(as_of)
        today = self.as_of.at.date()
        params.setdefault("end", today)
        params.setdefault("start", today - timedelta(days=29))
        super().__init__(**params)
        self.dark = dark
        defs = kpis.definitions()
        self.tile_kpis = [defs[k] for k in TILE_KPIS if k in defs and self.user.can_see(k)]
        self.param.kpi.objects = [k.name for k in self.tile_kpis]
        readable = [k.name for k in self.tile_kpis if not self.user.is_masked(k.name)]
        if "kpi" not in params and readable and self.kpi not in readable:
            # a viewer with revenue masked first sees a KPI they can read, not two empty charts
            self.kpi = readable[0]
        self._lock = threading.Lock()
        self._last_refresh = 0.0
        self._building = True  # filters set while the page is built must not trigger refreshes
        self._last_charts = 0.0
        self._charts_due = False
        self._crumbs_path: list | None = None
        doc = pn.state.curdoc
        self._doc = doc if doc is not None and doc.session_context is not None else None  # its session's
        self.version = 0
        self._tiles_version = 0  # the data version the tiles on screen were computed at
        self._build()

    # --- layout ---------------------------------------------------------------------------------

    @_as_reader
    def _build(self) -> None:
        defs = {k.name: k for k in self.tile_kpis}
        self.tiles = pn.pane.HTML("", sizing_mode="stretch_width", name="tiles")
        self.kpi_select = pn.widgets.Select.from_param(
            self.param.kpi, label="KPI", options={k.label: k.name for k in defs.values()}, width=220
        )
        self.dates = pn.widgets.DateRangePicker(label="Dates", value=(self.start, self.end), width=220)
        self.dates.param.watch(self._on_dates, "value")
        self.selects = {}
        for dim in DIMENSIONS:
            try:
                values = kpis.dimension_values(dim)
            except Exception:  # an empty warehouse has no values yet
                values = []
            w = pn.widgets.Select(
                label=dim.capitalize(), options=[ALL, *values], value=getattr(self, dim), width=220
            )
            w.link(self, value=dim)
            self.selects[dim] = w
        self.status = pn.pane.HTML(
            "", sizing_mode="stretch_width", styles={"font-size": "12px", "color": "#6e7781"}
        )

        if self._doc is not None:  # a server session: figures built ahead (see ChartPool)
            self.trend_chart, self.bars_chart = POOL.take()
            POOL.refill_later()
        else:
            self.trend_chart, self.bars_chart = TrendChart(), BreakdownChart()
        self.bars_chart.on_pick(self._on_pick)
        self.trend = pn.pane.Bokeh(self.trend_chart.figure, sizing_mode="stretch_width", name="trend")
        self.bars = pn.pane.Bokeh(self.bars_chart.figure, sizing_mode="stretch_width", name="breakdown")
        self.breadcrumb = pn.Row(sizing_mode="stretch_width", name="breadcrumb")
        self._busy = [self.tiles]  # what shows a spinner while a filter change is computed (see main)
        self.table = pn.pane.DataFrame(
            pd.DataFrame(), index=False, sizing_mode="stretch_width", name="table", max_rows=50
        )

        self.csv = pn.widgets.FileDownload(
            callback=functools.partial(exports.csv, self),
            filename="kpi_breakdown.csv",
            label="Table as CSV",
            color="primary",
            width=220,
        )
        self.xlsx = pn.widgets.FileDownload(
            callback=functools.partial(exports.xlsx, self),
            filename="kpi_dashboard.xlsx",
            label="Everything as XLSX",
            width=220,
        )
        self.png = pn.widgets.FileDownload(
            callback=functools.partial(exports.png, self),
            filename="kpi_charts.png",
            label="Charts as PNG",
            width=220,
        )
        self.param.watch(self._on_change, ["kpi", "start", "end", "region", "channel", "category", "drill"])

    async def _on_change(self, *_events) -> None:
        """A filter changed: show the loading spinners first, then recompute (an async callback
        lets Panel send the spinners to the browser before the queries run)."""
        if self._building:
            return
        busy = self._busy
        for view in busy:
            view.loading = True
        await asyncio.sleep(0.01)
        if self._doc is None:  # no server (a notebook, a test)
            self._refresh_then_idle(busy)
        else:  # the charts are plain Bokeh models: changed only under the document's lock
            self._doc.add_next_tick_callback(functools.partial(self._refresh_then_idle, busy))

    def _refresh_then_idle(self, busy: list) -> None:
        try:
            with unlocked(), _one_walk(self._doc):  # see _redraw_charts
                self.refresh()
        finally:
            for view in busy:
                view.loading = False

    def _on_dates(self, event) -> None:
        if event.new:
            self.param.update(start=event.new[0], end=event.new[1])

    def sidebar(self) -> list:
        # rules as plain <hr>: Panel's Divider kept its stylesheet's CDN address on this page
        # (tests/ui/test_executive.py::test_a_fresh_session_opens_on_the_whole_page_with_no_console_error);
        # the rule and its heading are one pane: each pane is a view (and a shadow root) the browser builds
        return [
            self.kpi_select,
            self.dates,
            *self.selects.values(),
            pn.pane.HTML(
                "<hr><b>Export what is on screen</b>", sizing_mode="stretch_width", margin=(0, 5, 5, 5)
            ),
            self.csv,
            self.xlsx,
            self.png,
            pn.pane.HTML("<hr>", sizing_mode="stretch_width", margin=(0, 5)),
            self.status,
        ]

    def main(self) -> list:
        """Tiles, then the trend, then the breakdown with its table: all in the first document,
        drawn (see :meth:`draw_charts`) right after the HTML has gone out, before or with the
        session document."""
        trend = pn.Card(self.trend, title="Trend", sizing_mode="stretch_width", collapsible=False)
        breakdown = pn.Card(
            self.breadcrumb,
            self.bars,
            self.table,
            title="Breakdown (click a bar to drill down)",
            sizing_mode="stretch_width",
            collapsible=False,
        )
        # the cards show the spinners, not the charts: a Bokeh pane's CSS classes are its figure's,
        # a Bokeh model, which may change only under the document's lock
        self._busy = [self.tiles, trend, breakdown]
        return [self.tiles, trend, breakdown]

    def prepare_charts(self) -> None:
        """The charts' axes for the KPI the page opens on, before the charts join the document."""
        k = kpis.get(self.kpi)
        self.trend_chart.prepare(k)
        self.bars_chart.prepare(k)

    @_as_reader
    def draw_charts(self) -> None:
        """Fill the charts and the table for the page's first document; from then on a filter
        change recomputes the page."""
        t0 = time.perf_counter()
        with self._lock, unlocked(), _one_walk(self._doc):  # see _redraw_charts
            self._render_trend()
            self._render_breakdown()
            self._last_charts = time.monotonic()
            self._building = False
            self._show_status(t0)

    @_as_reader
    def catch_up(self) -> None:
        """Once the page is on screen: refresh it if the data moved past the version its tiles
        were computed at (they may be another session's newest, see :class:`NewestTiles`)."""
        if kpis.sync_versions() > self._tiles_version:
            self.refresh()

    # --- data ---------------------------------------------------------------------------------

    def _where(self, with_drill: bool = True) -> dict[str, str]:
        where = {d: getattr(self, d) for d in DIMENSIONS if getattr(self, d) and getattr(self, d) != ALL}
        if with_drill:
            where.update(self.drill_path())
        return where

    def drill_path(self) -> dict[str, str]:
        out = {}
        for part in filter(None, self.drill.split("|")):
            dim, _, value = part.partition(":")
            if dim in DRILL_ORDER and value:
                out[dim] = value
        return out

    def drill_level(self) -> str | None:
        fixed = self._where()
        for dim in DRILL_ORDER:
            if dim not in fixed:
                return dim
        return None

    def _range(self) -> tuple[date, date]:
        start, end = self.start, self.end
        if start > end:
            start, end = end, start
        return start, end + timedelta(days=1)

    def _allowed(self, k: kpis.Kpi, where: dict) -> dict:
        return {d: v for d, v in where.items() if d in k.dimensions}

    @_as_reader
    def refresh(self, live: bool = False, tiles: tuple[int, list[TileData]] | None = None) -> None:
        """Recompute everything on the page (from the cache where the data has not changed).

        ``live``: a refresh for new data, with its ``tiles`` already computed off the event loop
        (see :class:`LiveHub`). The tiles always follow; the charts at most every
        ``BUDGET.chart_interval()`` (CHART_REFRESH_S, longer with many live sessions), because
        redrawing them costs more than all the numbers, and in a tick of their own, so the new
        numbers reach the browser without waiting for the charts."""
        t0 = time.perf_counter()
        self.as_of = kpis.as_of(self._as_of_asked)  # memoised per version: new data may make it live
        doc = self._doc if live else None
        every = BUDGET.chart_interval()
        with self._lock:
            if tiles is not None:
                self._show_tiles(*tiles)
            else:
                self._render_tiles()
            self._last_refresh = time.monotonic()
            if not live or (doc is None and self._last_refresh - self._last_charts >= every):
                self._render_trend()
                self._render_breakdown()
                self._last_charts = time.monotonic()
            elif self._last_refresh - self._last_charts >= every:
                self._last_charts = self._last_refresh  # claimed: later refreshes wait their turn
                doc.add_next_tick_callback(self._redraw_charts)
            elif not self._charts_due:
                self._charts_due = True  # the last change of a burst still reaches the charts
                timer = threading.Timer(every, self._catch_up_charts)
                timer.daemon = True  # a pending redraw never holds the process open at exit
                timer.start()
        self._show_status(t0)

    def _catch_up_charts(self) -> None:
        self._charts_due = False
        doc = self._doc
        if doc is None or doc.session_context is None:  # the session ended meanwhile (Bokeh destroyed
            return  # its document: adding a callback to it raised in this timer's thread)
        if time.monotonic() - self._last_charts >= BUDGET.chart_interval():
            doc.add_next_tick_callback(self._redraw_charts)

    @_as_reader
    def _redraw_charts(self) -> None:
        t0 = time.perf_counter()
        # all of a redraw's changes (four line sources, the bars, their axis, the table) go to the
        # browser as one message: Bokeh alone sends one per changed property, which doubled the
        # messages a live session gets (bench_dashboards --baseline, light sessions)
        with self._lock, unlocked(), _one_walk(self._doc):
            self._render_trend()
            self._render_breakdown()
            self._last_charts = time.monotonic()
        BUDGET.add(time.perf_counter() - t0)

    def _show_status(self, t0: float) -> None:
        # filter and drill values come from the URL and from the data: text, never markup
        where = ", ".join(f"{d}={v}" for d, v in self._where().items()) or "all data"
        # the warehouse's version, not the newest of the ranges read (0 after a file load)
        self.version = max(self.version, kpis.sync_versions())
        self.status.object = html.escape(
            f"Data version {self.version} · {self.as_of.describe()} · {where} · updated "
            f"{kpis.local_now():%H:%M:%S} in {1000 * (time.perf_counter() - t0):.0f} ms"
            f" · signed in as {self.user.name}"
        )

    def _tiles_key(self) -> tuple:
        start, end = self._range()
        where = self._where(with_drill=False)
        masked = tuple(k.name for k in self.tile_kpis if self.user.is_masked(k.name))
        return (
            tuple(k.name for k in self.tile_kpis),
            masked,
            start,
            end,
            tuple(sorted(where.items())),
            self.user.scope.key(),  # sessions of different rows never share numbers
            self._as_of_asked,  # whether the last day is still filling depends on it
        )

    @_as_reader
    def _render_tiles(self, first_paint: bool = False) -> None:
        """Compute and show the tiles; ``first_paint`` may show this process's newest tiles for the
        same view instead (see :class:`NewestTiles`)."""
        key = self._tiles_key()
        newest = NEWEST.get(key) if first_paint else None
        self._show_tiles(*(newest or self._compute_tiles(key)))

    def _show_tiles(self, version: int, tiles: list[TileData]) -> None:
        self.version = max(self.version, version)
        self._tiles_version = version
        self.tiles.object = tiles_html(tiles, dark=self.dark)

    @_as_reader
    def _compute_tiles(self, key: tuple) -> tuple[int, list[TileData]]:
        """Every tile's number for the view ``key`` (any thread); remembered in NEWEST."""
        start, end = key[2], key[3]
        where = dict(key[4])
        version = kpis.sync_versions()  # the tiles show at least this data version
        counts = incidents.open_counts()
        as_of = kpis.as_of(key[6])
        today = as_of.at.date()
        # the last day is still filling only on live data; an export's last day is complete
        filling = as_of.live and start <= today < end <= today + timedelta(days=1)
        # a previous period that begins before the first order compares with a part of itself
        earliest = kpis.earliest_data()
        partial = earliest is not None and start - (end - start) < earliest.date()
        label = f"(data from {earliest:%-d %b %Y})" if partial else "vs previous period"
        tiles = []
        for k in self.tile_kpis:
            w = self._allowed(k, where)
            compare = None if partial else "previous_period"  # no query for a comparison not shown
            total = kpis.query(k.name, "total", start=start, end=end, where=w, compare=compare)
            series = kpis.query(k.name, "day", start=start, end=end, where=w).df["value"].tolist()
            version = max(version, total.version)
            tiles.append(
                TileData(
                    k,
                    total.value,
                    total.previous,
                    series,
                    counts.get(k.name, 0),
                    masked=k.name in key[1],
                    last_filling=filling,
                    period_label=label,
                )
            )
        NEWEST.put(key, version, tiles)
        return version, tiles

    def _trend_grain(self) -> str:
        start, end = self._range()
        return "hour" if (end - start).days <= 3 else "day"

    def _render_trend(self) -> None:
        k = kpis.get(self.kpi)
        start, end = self._range()
        where = self._allowed(k, self._where())
        grain = self._trend_grain()
        try:
            r = kpis.query(k.name, grain, start=start, end=end, where=where, compare="previous_period")
            df = r.df[["period", "value", "previous"]]
        except Exception as exc:  # e.g. product drill at hour grain
            log.info("trend unavailable: %s", exc)
            df = pd.DataFrame({"period": [], "value": [], "previous": []})
        if self.user.is_masked(k.name):
            df = df.assign(value=float("nan"), previous=float("nan"))
        self.trend_df = df
        inc = incidents.recent(k.name, since=pd.Timestamp(start))
        marks = pd.DataFrame({"period": [], "value": [], "label": []})
        if not inc.empty and not df.empty:
            inc = inc[
                (inc["dimension"].isna())
                | inc.apply(lambda r: where.get(r["dimension"]) == r["dim_value"], axis=1)
            ]
            at = (
                pd.to_datetime(inc["started_at"], utc=True)
                .dt.tz_convert(kpis.settings().timezone)
                .dt.tz_localize(None)
            )
            at = at.dt.floor("h" if grain == "hour" else "D")
            vals = df.set_index("period")["value"]
            marks = pd.DataFrame(
                {"period": at, "value": at.map(vals), "label": inc["explanation"].values}
            ).dropna()
        self.trend_chart.show(k, self._trend_lines(df), marks, masked=self.user.is_masked(k.name))

    def _render_breakdown(self) -> None:
        k = kpis.get(self.kpi)
        start, end = self._range()
        level = self.drill_level()
        where = self._allowed(k, self._where())
        path = list(self.drill_path().items())
        if path != self._crumbs_path or not self.breadcrumb.objects:  # live redraws keep the buttons
            self._crumbs_path = path
            crumbs = [pn.widgets.Button(label="All", color="light", width=90)]
            crumbs[0].on_click(lambda _e: self.param.update(drill=""))
            for i, (_dim, value) in enumerate(path):
                b = pn.widgets.Button(label=f"› {value}", color="light", width=max(90, 9 * len(value) + 30))
                keep = "|".join(f"{d}:{v}" for d, v in path[: i + 1])
                b.on_click(lambda _e, keep=keep: self.param.update(drill=keep))
                crumbs.append(b)
            self.breadcrumb.objects = crumbs
        if level is None or level not in k.dimensions:
            df = pd.DataFrame({"label": [], "value": []})
            self.breakdown_df = pd.DataFrame({level or "dimension": [], k.label: []})
        else:
            masked = self.user.is_masked(k.name)
            # a masked KPI's bars go by name: the largest 25, or an order by value, tell its values
            r = kpis.query(
                k.name, "total", start=start, end=end, by=[level], where=where, top=None if masked else 25
            )
            if masked:
                r.df = r.df.sort_values(level, key=lambda c: c.astype(str), ignore_index=True).head(25)
            df = r.df.rename(columns={level: "label"})[["label", "value"]]
            self.breakdown_df = r.df.rename(columns={level: level.capitalize(), "value": k.label})
        if self.user.is_masked(k.name):
            df = df.assign(value=float("nan"))
            self.breakdown_df[k.label] = auth.MASK
        self.bars_level = level
        self.bars_df = df
        self.bars_chart.show(k, df, masked=self.user.is_masked(k.name))
        shown = self.breakdown_df.copy()
        if k.label in shown and not self.user.is_masked(k.name):
            shown[k.label] = shown[k.label].map(k.format_value)
        self.table.object = shown

    # --- charts -------------------------------------------------------------------------------

    def _trend_lines(self, data: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """The trend's lines by legend label. The period still filling (today, this hour) is its
        own dotted line: a full previous day beside a few hours of today otherwise reads as a crash.
        Only live data has one: an export's last day is as full as it gets."""
        as_of = self.as_of
        open_from = pd.Timestamp(kpis.floor_period(as_of.at, self._trend_grain()))
        filling = (
            data["period"] >= open_from if len(data) and as_of.live else pd.Series(False, index=data.index)
        )
        closed = data[~filling][["period", "value"]]
        so_far = (
            pd.concat([closed.tail(1), data[filling][["period", "value"]]])
            if filling.any()
            else closed.iloc[:0]
        )
        previous = data[["period", "previous"]].rename(columns={"previous": "value"})
        return {PREVIOUS: previous, THIS: closed, SO_FAR: so_far}

    def _on_pick(self, label: str) -> None:
        """A bar was clicked: drill into its member (the last level, product, has none)."""
        if self.bars_level is None or self.bars_level == DRILL_ORDER[-1]:
            return
        if str(label) not in set(self.bars_df["label"].astype(str)):
            return
        path = [p for p in self.drill.split("|") if p]
        self.drill = "|".join([*path, f"{self.bars_level}:{label}"])

    # --- live updates ---------------------------------------------------------------------------

    def start_live(self) -> None:
        """Follow new data (see :class:`LiveHub`) until the session ends."""
        self._doc = pn.state.curdoc
        HUB.join(self)
        BUDGET.join(1)

        def stop(_ctx) -> None:
            HUB.leave(self)
            BUDGET.join(-1)

        if self._doc is not None:
            pn.state.on_session_destroyed(stop)

    def push_live(self, key: tuple, tiles: tuple[int, list[TileData]]) -> None:
        """New tiles for the view ``key`` from the hub (its thread), shown in this session's next
        tick; recomputed there if the user changed the view meanwhile."""

        def show() -> None:
            with unlocked(), _one_walk(self._doc):  # see _redraw_charts
                self.refresh(live=True, tiles=tiles if key == self._tiles_key() else None)

        if self._doc is None:
            show()
        else:
            self._doc.add_next_tick_callback(show)
