"""The executive page's two charts, the trend and the breakdown, as plain Bokeh figures.

The figures are built once per session, already holding their data, so they come with the page's
first document; new data replaces their sources' columns in place (one small patch). They lay
themselves out in the browser: a responsive HoloViews plot instead sent its size back to the
server after its first layout and was rendered again, two more round trips before the page was
usable (issue 18's profile).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool, Legend, LegendItem
from bokeh.plotting import figure

from ... import kpis

BLUE, GREY, RED = "#4c78a8", "#9aa7b4", "#cf222e"
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
HEIGHT = 280

THIS, SO_FAR, PREVIOUS, INCIDENT = "This period", "So far (still filling)", "Previous period", "Incident"
# a masked KPI's charts are drawn empty: the chart says why, or an empty frame reads as missing data
MASKED_NOTE = "Values hidden for your role"


def axis_format(k: kpis.Kpi):
    """The y axis's tick labels in the KPI's own format (its currency where its locale puts it)."""
    from bokeh.models import CustomJSTickFormatter, NumeralTickFormatter

    if k.format.endswith("%"):
        return NumeralTickFormatter(format="0.0%")
    if not k.currency:
        return NumeralTickFormatter(format="0.[0]a")
    # the business's currency where its locale puts it: '£1.5M', '1,5 M €' (numeral.js knows only $)
    from babel import Locale

    loc = Locale.parse(k.locale)
    before = loc.currency_formats["standard"].pattern.startswith("¤")
    code = """
      const a = Math.abs(tick);
      const [d, s] = a >= 1e9 ? [1e9, 'B'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'K'] : [1, ''];
      const n = (tick / d).toLocaleString(lang, {maximumFractionDigits: 1});
      return before ? sym + n + s : n + (s ? '\u00a0' + s : '') + '\u00a0' + sym;
    """
    return CustomJSTickFormatter(
        code=code, args={"sym": k.prefix, "lang": k.locale.replace("_", "-"), "before": before}
    )


def _columns(df: pd.DataFrame, x: str, k: kpis.Kpi, masked: bool, **extra) -> dict:
    """A source's columns: x, the value, and the value as the page writes it (for the hover)."""
    values = df["value"].astype(float) if len(df) else pd.Series([], dtype=float)
    shown = ["" if masked or math.isnan(v) else k.format_value(v) for v in values]
    return {
        x: list(df[x]) if x == "label" else df[x].to_numpy(),
        "value": values.to_numpy(),
        "shown": shown,
        **extra,
    }


def _figure(tools: str = TOOLS, **kw):
    fig = figure(
        height=HEIGHT,
        sizing_mode="stretch_width",
        tools=tools,
        toolbar_location="above",
        output_backend="canvas",
        **kw,
    )
    fig.toolbar.logo = None
    return fig


class TrendChart:
    """This period (solid; the period still filling dotted), the previous period (dashed) and
    the incidents (red triangles), with a legend that names only what is drawn."""

    def __init__(self) -> None:
        empty = {"period": pd.to_datetime([]).to_numpy(), "value": [], "shown": []}
        self.sources = {name: ColumnDataSource(dict(empty)) for name in (PREVIOUS, THIS, SO_FAR)}
        self.sources[INCIDENT] = ColumnDataSource({**empty, "label": []})
        fig = _figure(x_axis_type="datetime")
        style = {
            PREVIOUS: dict(color=GREY, line_width=1.5, line_dash="dashed"),
            THIS: dict(color=BLUE, line_width=2),
            SO_FAR: dict(color=BLUE, line_width=2, line_dash="dotted"),
        }
        lines = {
            name: fig.line("period", "value", source=self.sources[name], **s) for name, s in style.items()
        }
        marks = fig.scatter(
            "period", "value", source=self.sources[INCIDENT], marker="triangle", size=11, color=RED
        )
        self.items = {
            name: LegendItem(label=name, renderers=[r]) for name, r in [*lines.items(), (INCIDENT, marks)]
        }
        fig.add_layout(Legend(items=list(self.items.values()), location="top_left"))
        fig.add_tools(
            HoverTool(
                renderers=list(lines.values()),
                tooltips=[("", "@period{%F %H:%M}"), ("", "@shown")],
                formatters={"@period": "datetime"},
                mode="vline",
            ),
            HoverTool(renderers=[marks], tooltips=[("Incident", "@label"), ("", "@shown")]),
        )
        fig.xgrid.grid_line_alpha = fig.ygrid.grid_line_alpha = 0.3
        self.figure = fig
        self._kpi: str | None = None

    def prepare(self, k: kpis.Kpi) -> None:
        """The y axis for ``k`` (its format and label). Called before the figure joins the page's
        document it costs nothing there; later it adds a model (the formatter) to the document,
        after which Bokeh walks the whole document again."""
        if k.name != self._kpi:  # a new model for the browser only when the KPI changes
            self._kpi = k.name
            self.figure.yaxis.formatter = axis_format(k)
            self.figure.yaxis.axis_label = k.label

    def show(self, k: kpis.Kpi, lines: dict[str, pd.DataFrame], marks: pd.DataFrame, masked: bool) -> None:
        """Draw ``lines`` (by legend label; an empty frame leaves its line and legend entry out)
        and the incident ``marks``."""
        self.prepare(k)
        for name in (PREVIOUS, THIS, SO_FAR):
            df = lines.get(name, pd.DataFrame({"period": [], "value": []}))
            self.sources[name].data = _columns(df, "period", k, masked)
            self.items[name].visible = not df.empty
        self.sources[INCIDENT].data = _columns(marks, "period", k, masked, label=list(marks["label"]))
        self.items[INCIDENT].visible = not marks.empty
        self.figure.title.text = MASKED_NOTE if masked else ""

    def drawn(self) -> dict[str, pd.DataFrame]:
        """What the chart shows now, by legend label: the lines a person sees named."""
        return {
            name: pd.DataFrame({"period": pd.to_datetime(src.data["period"]), "value": src.data["value"]})
            for name, src in self.sources.items()
            if self.items[name].visible
        }


class BreakdownChart:
    """One bar per member of the drill level, largest first; a click on a bar calls ``on_pick``
    with its label (the drill-down)."""

    def __init__(self, on_pick: Callable[[str], None] | None = None) -> None:
        self.source = ColumnDataSource({"label": [], "value": [], "shown": []})
        fig = _figure(x_range=FactorRange(), tools=f"{TOOLS},tap")
        fig.vbar(
            x="label",
            top="value",
            width=0.8,
            source=self.source,
            color=BLUE,
            nonselection_fill_alpha=1.0,
            nonselection_line_alpha=1.0,
        )
        fig.add_tools(HoverTool(tooltips=[("", "@label"), ("", "@shown")]))
        fig.xgrid.grid_line_color = None
        fig.ygrid.grid_line_alpha = 0.3
        self.figure = fig
        self._kpi: str | None = None
        self._on_pick = on_pick
        self.source.selected.on_change("indices", self._picked)

    def prepare(self, k: kpis.Kpi) -> None:
        """The y axis for ``k`` (see :meth:`TrendChart.prepare`)."""
        if k.name != self._kpi:
            self._kpi = k.name
            self.figure.yaxis.formatter = axis_format(k)
            self.figure.yaxis.axis_label = k.label

    def show(self, k: kpis.Kpi, bars: pd.DataFrame, masked: bool) -> None:
        self.prepare(k)
        bars = bars.assign(label=bars["label"].astype(str))
        self.figure.x_range.factors = list(bars["label"])
        self.figure.xaxis.major_label_orientation = math.radians(30) if len(bars) > 6 else "horizontal"
        self.source.data = _columns(bars, "label", k, masked)
        self.figure.title.text = MASKED_NOTE if masked else ""

    def on_pick(self, callback: Callable[[str], None]) -> None:
        self._on_pick = callback

    def _picked(self, _attr, _old, new: list[int]) -> None:
        if not new:
            return
        label = self.source.data["label"][new[0]]
        self.source.selected.indices = []  # the bar is not "selected": the page moves on to its members
        if self._on_pick is not None:
            self._on_pick(label)


class ChartPool:
    """Both charts, built ahead for the next sessions of this process.

    Building the two figures (~120 Bokeh models) is ~0.1 s of the ~0.3 s of CPU a Panel worker
    spends on a new session, in the one event loop every session shares (issue 18's profile). The
    figures hold nothing of a session until they are shown (their data, their KPI), so a few pairs
    are built once the worker has had no new session for IDLE_S, and a new session takes one: the page's
    HTML, and the other pages queued behind it, come that much sooner. When the pool is empty a
    session builds its own, as before.
    """

    SIZE = 5  # a burst of pages opened at once (the five)
    # refill only after this long without a new session: not between the pages of a burst (at 1 s,
    # the refills ran between the five pages of one, on the same loop)
    IDLE_S = 3.0

    def __init__(self, size: int = SIZE) -> None:
        self.size = size
        self._pairs: list[tuple[TrendChart, BreakdownChart]] = []
        self._lock = threading.Lock()
        self._last_take = 0.0
        self._scheduled = False

    def take(self) -> tuple[TrendChart, BreakdownChart]:
        with self._lock:
            self._last_take = time.monotonic()
            pair = self._pairs.pop() if self._pairs else None
        return pair or (TrendChart(), BreakdownChart())

    def refill_later(self) -> None:
        """Refill one pair at a time on this thread's event loop, once no session has started
        for IDLE_S (a server session's loop; nothing to do without one)."""
        with self._lock:
            if self._scheduled or len(self._pairs) >= self.size:
                return
            self._scheduled = True
        try:
            from tornado.ioloop import IOLoop

            IOLoop.current().call_later(self.IDLE_S, self._refill_one)
        except RuntimeError:  # no event loop here (a script, a test)
            with self._lock:
                self._scheduled = False

    def _refill_one(self) -> None:
        from tornado.ioloop import IOLoop

        with self._lock:
            wait = self._last_take + self.IDLE_S - time.monotonic()
        if wait <= 0:
            pair = (TrendChart(), BreakdownChart())
            with self._lock:
                self._pairs.append(pair)
                full = len(self._pairs) >= self.size
            wait = 0.0
        else:
            full = False
        with self._lock:
            if full:
                self._scheduled = False
                return
        IOLoop.current().call_later(max(wait, 0.05), self._refill_one)

    def __len__(self) -> int:
        return len(self._pairs)


POOL = ChartPool()
