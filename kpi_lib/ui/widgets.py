"""Shared ipywidgets/bqplot components for the Voila dashboards (``dashboards/*.ipynb``).

The notebooks stay thin: parameters, the signed-in user, one constructor. What a dashboard needs to
behave well as a long-lived web page lives here:

* :class:`Heartbeat`: the page's pulse. A hidden ``ipywidgets.Play`` ticks in the browser every few
  seconds. When no tick arrives for ``timeout`` seconds (tab closed or crashed, network gone, laptop
  asleep), the dashboard stops its refresh loops so the kernel falls idle and Voila's culler
  (``--MappingKernelManager.cull_idle_timeout``) can reclaim it. The next tick resumes and refreshes.
* :class:`Throttle`: coalesces change notifications (from any thread) into at most one refresh per
  interval, run on the kernel's event loop.
* :class:`RevenueExplorer` and :class:`AnomalyReview`: the two Voila dashboards.
* :func:`url_parameters`: ``?kpi=orders&grain=week`` in the page's URL overrides notebook parameters.
* :func:`voila_template`: writes the ``kpi`` Voila template (Voila's lab template without its CDN
  links) and returns the directory to put on ``JUPYTER_PATH``.

    >>> from kpi_lib.auth import current_user
    >>> from kpi_lib.ui import widgets as ui
    >>> ui.RevenueExplorer(current_user(), kpi="revenue", grain="day")   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import html
import io
import json
import logging
import math
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np
import pandas as pd

from .. import alerts, kpis, stream, warehouse
from ..auth import User
from ..config import settings
from ..errors import AuthError, KpiError

log = logging.getLogger(__name__)

GRAINS = (("Hour", "hour"), ("Day", "day"), ("Week", "week"), ("Month", "month"))
PALETTE = (
    "#2c7be5",
    "#e67e22",
    "#27ae60",
    "#8e44ad",
    "#c0392b",
    "#16a085",
    "#7f8c8d",
    "#d35400",
    "#2c3e50",
    "#b7950b",
)
SEVERITY_COLORS = {"high": "#c0392b", "medium": "#e67e22", "low": "#b7950b"}
SEVERITIES = ("low", "medium", "high")
MAX_TABLE_ROWS = 500

CSS = """<style>
.kpi-spin {display:inline-block; width:12px; height:12px; margin-right:6px; vertical-align:-1px;
  border:2px solid #c8d1dc; border-top-color:#2c7be5; border-radius:50%; animation:kpi-spin .8s linear infinite;}
@keyframes kpi-spin {to {transform: rotate(360deg);}}
.kpi-status {font-size:12.5px; color:#5f6b7a;}
.kpi-status.kpi-error {color:#cf222e;}
.kpi-tiles {display:flex; gap:12px; flex-wrap:wrap; margin:4px 0;}
.kpi-tile {border:1px solid #e3e6ea; border-radius:8px; padding:8px 12px; min-width:200px; background:#fff;}
.kpi-tile .kpi-label {font-size:12.5px; color:#5f6b7a;}
.kpi-tile .kpi-value {font-size:22px; font-weight:650; color:#15202b;}
.kpi-tile .kpi-sub {font-size:12px; color:#5f6b7a;}
.kpi-good {color:#1a7f37 !important;} .kpi-bad {color:#cf222e !important;}
.kpi-table-wrap {max-height:380px; overflow:auto; border:1px solid #eaeef2; border-radius:6px;}
.kpi-table {border-collapse:collapse; font-size:13px; width:100%;}
.kpi-table th {position:sticky; top:0; background:#f6f8fa; text-align:right; padding:4px 10px;}
.kpi-table td {text-align:right; padding:3px 10px; border-top:1px solid #eaeef2; font-variant-numeric:tabular-nums;}
.kpi-table th:first-child, .kpi-table td:first-child {text-align:left;}
.kpi-note {font-size:12px; color:#5f6b7a; margin:4px 0;}
.kpi-badge {color:#fff; border-radius:3px; padding:1px 6px; font-size:11.5px; text-transform:uppercase;}
.kpi-incident-head {font-size:15px; font-weight:600; margin:2px 0;}
.kpi-incident-facts {font-size:12.5px; color:#3d4752;}
.kpi-incident-facts b {color:#15202b;}
.kpi-card {border:1px solid #e3e6ea; border-radius:8px; padding:10px 14px; margin:8px 0; background:#fff;}
</style>"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


# --- the page's pulse --------------------------------------------------------------------------


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The kernel's event loop (ipykernel runs cells on it); None in plain Python."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class Heartbeat:
    """Is anyone still looking? A hidden ``Play`` widget that the browser advances every ``interval``
    seconds (the timer runs in the page, so ticks stop when the page goes away).

    ``on_lost()`` runs once when no tick arrived for ``timeout`` seconds; ``on_back()`` when ticks
    resume after that; ``on_tick()`` callbacks run on every tick. A Play view only starts its timer
    on a playing False -> True change it sees, so until the first tick arrives the kernel nudges it
    (for at most ``kick_for`` seconds: a page that never renders counts as lost).
    """

    def __init__(
        self,
        interval: float = 3.0,
        timeout: float = 30.0,
        on_lost: Callable[[], None] | None = None,
        on_back: Callable[[], None] | None = None,
        kick_for: float = 120.0,
    ) -> None:
        self.interval, self.timeout, self.kick_for = float(interval), float(timeout), float(kick_for)
        self.widget = widgets.Play(
            value=0,
            min=0,
            max=2**31 - 1,
            step=1,
            interval=max(200, int(self.interval * 1000)),
            repeat=True,
            show_repeat=False,
            playing=False,
            layout=widgets.Layout(display="none"),
        )
        self.widget.add_class("kpi-heartbeat")
        self.widget.observe(self._on_value, names="value")
        self._on_lost = [on_lost] if on_lost else []
        self._on_back = [on_back] if on_back else []
        self._on_tick: list[Callable[[], None]] = []
        self.ticks = 0
        self.last_tick: float | None = None
        self.lost = False
        self._loop = _running_loop()
        self._task: asyncio.Task | None = None
        self._started = time.monotonic()
        if self._loop is not None:
            self._task = self._loop.create_task(self._watch())

    def on_tick(self, callback: Callable[[], None]) -> None:
        self._on_tick.append(callback)

    @property
    def alive(self) -> bool:
        return not self.lost

    def _on_value(self, _change: Any) -> None:
        self.ticks += 1
        self.last_tick = time.monotonic()
        if self.lost:
            self.lost = False
            log.info("heartbeat back after a pause: resuming")
            if self._loop is not None and (self._task is None or self._task.done()):
                self._task = self._loop.create_task(self._watch())
            _call_all(self._on_back)
        _call_all(self._on_tick)

    async def _watch(self) -> None:
        try:
            while self.last_tick is None:  # nudge the view until its timer runs
                if time.monotonic() - self._started > self.kick_for:
                    self._lose("the page never started its heartbeat")
                    return
                self.widget.playing = False
                self.widget.playing = True
                await asyncio.sleep(1.0)
            while True:
                await asyncio.sleep(min(self.interval, 5.0))
                if time.monotonic() - (self.last_tick or 0) > self.timeout:
                    self._lose(f"no heartbeat for {self.timeout:.0f} s")
                    return
        except asyncio.CancelledError:
            pass

    def _lose(self, why: str) -> None:
        if not self.lost:
            self.lost = True
            log.info("%s: pausing live updates", why)
            _call_all(self._on_lost)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.lost = True


def _call_all(callbacks: list[Callable[[], None]]) -> None:
    for cb in callbacks:
        try:
            cb()
        except Exception:  # one failing callback must not stop the others
            log.exception("dashboard callback failed")


class Throttle:
    """Call ``fn`` at most once per ``interval`` seconds, however often :meth:`trigger` is called.

    The first trigger runs at once (leading edge); triggers inside the interval coalesce into one
    run at its end (trailing edge). ``trigger`` is safe from any thread; ``fn`` runs on the loop
    that created the Throttle (the kernel's), so widget updates never race.
    """

    def __init__(self, fn: Callable[[], None], interval: float = 1.0) -> None:
        self.fn, self.interval = fn, float(interval)
        self._loop = _running_loop()
        self._last = -math.inf
        self._pending = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.runs = 0

    def trigger(self, *_args: Any) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._schedule)
        else:
            self._schedule()

    def _schedule(self) -> None:
        with self._lock:
            if self._pending:
                return
            self._pending = True
        wait = max(0.0, self._last + self.interval - time.monotonic())
        if self._loop is not None:
            self._loop.call_later(wait, self._fire)
        else:
            self._timer = threading.Timer(wait, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._pending:
                return  # cancelled
            self._pending = False
        self._last = time.monotonic()
        self.runs += 1
        try:
            self.fn()
        except Exception:
            log.exception("throttled refresh failed")

    def cancel(self) -> None:
        with self._lock:
            self._pending = False
        if self._timer is not None:
            self._timer.cancel()


class Status:
    """One line under the controls: a spinner while work runs, then what happened (or the error)."""

    def __init__(self) -> None:
        self.widget = widgets.HTML(layout=widgets.Layout(min_height="22px"))
        self.widget.add_class("kpi-status-line")
        self.set("ready", "")

    def set(self, state: str, text: str) -> None:
        spin = '<span class="kpi-spin"></span>' if state == "loading" else ""
        cls = "kpi-status kpi-error" if state == "error" else "kpi-status"
        self.widget.value = f'<div class="{cls}" data-state="{state}">{spin}{esc(text)}</div>'

    @contextmanager
    def busy(self, what: str = "Loading…") -> Iterator[None]:
        """Show the spinner while the block runs; a KpiError becomes the message (not a traceback)."""
        self.set("loading", what)
        try:
            yield
        except KpiError as exc:
            self.set("error", str(exc))
        except Exception as exc:
            log.exception("dashboard update failed")
            self.set("error", f"Something went wrong: {exc}")


# --- parameters and the Voila template ------------------------------------------------------------


def _coerce(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    if isinstance(default, (list, tuple)):
        return [v for v in value.split(",") if v]
    return value or None


def url_parameters(defaults: Mapping[str, Any], query: str | None = None) -> dict[str, Any]:
    """The notebook's parameters, with ``?name=value`` from the page's URL applied.

    Voila puts the query string in ``QUERY_STRING`` (for a pre-heated kernel, once the request has
    arrived: call this after :func:`kpi_lib.auth.current_user`). Unknown names and values that do
    not parse as the default's type are ignored. Outside Voila nothing changes.
    """
    q = os.environ.get("QUERY_STRING", "") if query is None else query
    out = dict(defaults)
    for name, values in urllib.parse.parse_qs(q, keep_blank_values=True).items():
        if name not in defaults:
            continue
        try:
            out[name] = _coerce(values[-1], defaults[name])
        except ValueError:
            log.warning(
                "ignoring URL parameter %s=%r (expected %s)", name, values[-1], type(defaults[name]).__name__
            )
    return out


TEMPLATE_NAME = "kpi"
_TEMPLATE_FILES = {
    "conf.json": json.dumps({"base_template": "lab"}, indent=2) + "\n",
    # Voila's lab template minus the Font Awesome CDN links (the widgets bundle Font Awesome) and
    # minus the mermaid loader (a CDN script; dashboards have no diagrams).
    "index.html.j2": """{%- extends 'voila/templates/lab/index.html.j2' -%}
{%- block notebook_css -%}
{%- for line in super().split('\\n') if 'cdn.jsdelivr.net' not in line and 'cdnjs.' not in line %}
{{ line }}
{%- endfor -%}
{%- endblock notebook_css -%}
{%- block html_head_js_mermaidjs -%}
{%- endblock html_head_js_mermaidjs -%}
""",
    # base/page.html (tree and error pages) without its Font Awesome 4 CDN link
    "page.html": """<!DOCTYPE HTML>
<html>
  <head>
    <meta charset="utf-8">
    <title>{% block title %} Voilà {% endblock %}</title>
    <meta http-equiv="X-UA-Compatible" content="IE=edge" />
    <meta name="viewport" content="width=device-width, initial-scale=1.0">
    {% block stylesheets %}
    {% if include_css %}
      {{ include_css("static/index.css") }}
      {% if theme == 'dark' %}{{ include_css("static/theme-dark.css") }}
      {% elif theme == 'light' %}{{ include_css("static/theme-light.css") }}
      {% else %}{{ include_lab_theme(theme) }}{% endif %}
    {% endif %}
    {% endblock %}
    {% block meta %}{% endblock %}
  </head>
  <body data-base-url="{{ base_url }}voila/" data-voila="voila">
    <noscript><div id='noscript'>{% trans %} Voilà requires JavaScript. Please enable it to proceed. {% endtrans %}</div></noscript>
    <div>{% block body %}{% endblock %}</div>
    {% block scripts %}{% endblock %}
  </body>
</html>
""",
}


def voila_template(root: str | Path | None = None) -> Path:
    """Write the ``kpi`` Voila template under ``root`` (default ``$KPI_HOME/jupyter``); return root.

    Serve with ``JUPYTER_PATH=<root> voila ... --VoilaConfiguration.template=kpi``: pages then make
    no request outside the Voila server (Voila's own templates ask a CDN for Font Awesome).
    """
    root = Path(root) if root is not None else settings().home / "jupyter"
    folder = root / "voila" / "templates" / TEMPLATE_NAME
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in _TEMPLATE_FILES.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
    return root


def warm_up(charts: bool = False, listen: bool = True) -> None:
    """Pay the one-off costs before a viewer arrives (a pre-heated kernel runs this early): the
    catalog, a pooled warehouse connection, the change listener, matplotlib. Loads no data."""
    kpis.definitions()
    with warehouse.engine().connect() as conn:
        conn.exec_driver_sql("select 1")
    if listen:
        stream.subscribe(lambda _change: None).close()  # starts the process's LISTEN connection
    if charts:
        from matplotlib.backends import backend_agg  # noqa: F401
        from matplotlib.figure import Figure

        Figure()


# --- formatting helpers --------------------------------------------------------------------------


def period_label(ts: pd.Timestamp, grain: str) -> str:
    if grain == "hour":
        return f"{ts:%Y-%m-%d %H:00}"
    if grain == "week":
        return f"{ts:%Y-%m-%d} (week {ts.isocalendar()[1]})"
    if grain == "month":
        return f"{ts:%Y-%m}"
    return f"{ts:%Y-%m-%d}"


def tick_format(k: kpis.Kpi) -> str:
    """A d3 format for the chart's value axis."""
    if k.format.endswith("%"):
        return ".0%"
    return "$,.3~s" if k.currency == "USD" else ",.3~s"  # d3's "$" is the dollar: others go in the label


def _value_cell(user: User, k: kpis.Kpi, v: Any) -> str:
    v = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    text = user.show(k.name, k.format_value(v))
    if user.is_masked(k.name) or v is None:
        return f"<td>{esc(text)}</td>"
    return f'<td data-value="{v!r}">{esc(text)}</td>'


def _change_html(k: kpis.Kpi, change: float | None, label: str) -> str:
    if change is None or not math.isfinite(change):
        return f'<div class="kpi-sub">– {esc(label)}</div>'
    good = (change >= 0) == k.up_is_good
    cls = "kpi-good" if good else "kpi-bad"
    arrow = "▲" if change >= 0 else "▼"
    return f'<div class="kpi-sub"><span class="{cls}">{arrow} {abs(change):.1%}</span> {esc(label)}</div>'


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
            self.note.value = (
                f'<div class="kpi-note">{esc(k.label)} is masked for your role.</div>'
                if self.user.is_masked(k.name)
                else '<div class="kpi-note">No data in this range.</div>'
            )
            return
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

    def _draw_tiles(self) -> None:
        k, r, t = self.kpi, self.result, self.total
        u = self.user
        cells = [
            f'<div class="kpi-tile kpi-range-total" data-kpi="{esc(k.name)}">'
            f'<div class="kpi-label">{esc(k.label)} · {r.start:%Y-%m-%d} → {(r.end - timedelta(seconds=1)):%Y-%m-%d}</div>'
            f'<div class="kpi-value"{_data_value(u, k, t.value)}>{esc(u.show(k.name, k.format_value(t.value)))}</div>'
            f"{_change_html(k, None if u.is_masked(k.name) else t.change, 'vs previous period')}</div>"
        ]
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
            cells = "".join(_value_cell(u, k, v) for v in values.to_numpy())
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


# --- anomaly review ---------------------------------------------------------------------------------

STATUSES = (
    ("Open", "open"),
    ("Open & acknowledged", "unresolved"),
    ("Acknowledged", "acknowledged"),
    ("Resolved", "resolved"),
    ("All", "all"),
)
_STATUS_FILTER = {
    "open": ["open"],
    "unresolved": ["open", "acknowledged"],
    "acknowledged": ["acknowledged"],
    "resolved": ["resolved"],
    "all": None,
}


def _when(ts: Any) -> str:
    if ts is None or ts is pd.NaT or (isinstance(ts, float) and math.isnan(ts)):
        return "–"
    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert(settings().timezone).tz_localize(None)
    return f"{t:%Y-%m-%d %H:%M}"


def _pct(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{'+' if v >= 0 else '−'}{abs(v):,.0f}%"


def incident_png(incident: Mapping[str, Any], dpi: int = 80) -> bytes:
    """The incident's chart (series, expected band, incident shaded) as PNG bytes."""
    fig, _ = alerts.incident_chart(incident)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


class AnomalyReview:
    """Incidents from ``ops.anomalies``, newest first, each with its chart, explanation and the
    Acknowledge / Resolve actions (stored with who and when by :mod:`kpi_lib.alerts`). New incidents
    and changes by others appear by themselves while the page is open (checked on every heartbeat)."""

    def __init__(
        self,
        user: User,
        kpi: str | None = None,
        severity: str | None = None,
        status: str = "unresolved",
        page_size: int = 5,
        heartbeat_interval: float = 3.0,
        heartbeat_timeout: float = 30.0,
    ) -> None:
        self.user = user
        self.page_size = max(1, int(page_size))
        self.defs = {n: k for n, k in kpis.definitions().items() if user.can_see(n)}
        self.page = 0
        self.rows = pd.DataFrame()
        self.refreshes = 0
        self._signature: Any = None
        self._charts: dict[tuple, bytes] = {}
        self._quiet = False
        style = {"description_width": "initial"}
        self.kpi_w = widgets.Dropdown(
            # "" not None for "all": a Dropdown whose value is None shows an empty box
            options=[("All KPIs", "")] + [(k.label, n) for n, k in self.defs.items()],
            value=kpi if kpi in self.defs else "",
            description="KPI",
            style=style,
        )
        self.severity_w = widgets.Dropdown(
            options=[
                ("Any severity", ""),
                ("Medium or high", "medium"),
                ("High", "high"),
                ("Low only", "low"),
            ],
            value=severity if severity in SEVERITIES else "",
            description="Severity",
            style=style,
        )
        self.status_w = widgets.Dropdown(
            options=STATUSES,
            value=status if status in _STATUS_FILTER else "unresolved",
            description="Status",
            style=style,
        )
        self.prev_w = widgets.Button(
            description="Newer", icon="chevron-left", layout=widgets.Layout(width="100px")
        )
        self.next_w = widgets.Button(
            description="Older", icon="chevron-right", layout=widgets.Layout(width="100px")
        )
        self.count_w = widgets.HTML()
        self.count_w.add_class("kpi-incident-count")
        for w, cls in (
            (self.kpi_w, "kpi-filter-kpi"),
            (self.severity_w, "kpi-filter-severity"),
            (self.status_w, "kpi-filter-status"),
            (self.prev_w, "kpi-newer"),
            (self.next_w, "kpi-older"),
        ):
            w.add_class(cls)
        self.status = Status()
        self.list_box = widgets.VBox()
        self.list_box.add_class("kpi-incidents")
        self.heartbeat = Heartbeat(interval=heartbeat_interval, timeout=heartbeat_timeout)
        self.heartbeat.on_tick(self.poll)
        self.widget = widgets.VBox(
            [
                widgets.HTML(CSS),
                widgets.HBox(
                    [self.kpi_w, self.severity_w, self.status_w],
                    layout=widgets.Layout(flex_flow="row wrap", gap="8px"),
                ),
                widgets.HBox(
                    [self.prev_w, self.next_w, self.count_w],
                    layout=widgets.Layout(gap="8px", align_items="center"),
                ),
                self.status.widget,
                self.list_box,
                self.heartbeat.widget,
            ]
        )
        self.widget.add_class("kpi-anomaly-review")
        for w in (self.kpi_w, self.severity_w, self.status_w):
            w.observe(self._on_filter, names="value")
        self.prev_w.on_click(lambda _b: self._turn(-1))
        self.next_w.on_click(lambda _b: self._turn(+1))
        self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- data ----------------------------------------------------------------------------------------

    def load(self) -> pd.DataFrame:
        """The incidents the filters ask for, newest first (only KPIs this user may see)."""
        kpi = self.kpi_w.value
        names = [kpi] if kpi else list(self.defs)
        if not names:
            return pd.DataFrame()
        df = alerts.incidents(status=_STATUS_FILTER[self.status_w.value], kpis=names, limit=1000)
        sev = self.severity_w.value
        if sev == "low":
            df = df[df["severity"] == "low"]
        elif sev:
            df = df[
                df["severity"].map(lambda s: SEVERITIES.index(s) if s in SEVERITIES else 0)
                >= SEVERITIES.index(sev)
            ]
        return df.reset_index(drop=True)

    def signature(self) -> tuple:
        """Changes whenever an incident is added or updated (by anyone)."""
        with warehouse.engine().connect() as conn:
            row = conn.exec_driver_sql(
                "select count(*), coalesce(max(id), 0), max(updated_at) from ops.anomalies"
            ).fetchone()
        return tuple(row)

    def refresh(self) -> None:
        with self.status.busy("Loading incidents…"):
            self._signature = self.signature()
            self.rows = self.load()
            pages = max(1, math.ceil(len(self.rows) / self.page_size))
            self.page = min(self.page, pages - 1)
            self.refreshes += 1
            self._render()
            self.status.set("ready", f"Updated {datetime.now():%H:%M:%S} · {kpis.as_of().describe()}")

    def poll(self) -> None:
        """Refresh when ops.anomalies changed since the last look (runs on every heartbeat)."""
        try:
            sig = self.signature()
        except Exception:  # the warehouse restarting must not kill the page
            log.exception("could not check for new incidents")
            return
        if sig != self._signature:
            self.refresh()

    # -- rendering -------------------------------------------------------------------------------------

    def _render(self) -> None:
        n = len(self.rows)
        first = self.page * self.page_size
        shown = self.rows.iloc[first : first + self.page_size]
        self.prev_w.disabled = self.page == 0
        self.next_w.disabled = first + self.page_size >= n
        self.count_w.value = (
            f'<span class="kpi-note" data-count="{n}">'
            + (
                f"{first + 1}–{first + len(shown)} of {n} incident(s), newest first"
                if n
                else "No incidents match these filters."
            )
            + "</span>"
        )
        self.list_box.children = [self._card(row.to_dict()) for _, row in shown.iterrows()]

    def _card(self, inc: dict[str, Any]) -> widgets.Widget:
        inc = {
            k: (None if (v is pd.NaT or (isinstance(v, float) and math.isnan(v))) else v)
            for k, v in inc.items()
        }
        iid = int(inc["id"])
        k = self.defs.get(inc["kpi"])
        masked = self.user.is_masked(inc["kpi"])
        fmt = (
            (lambda v: self.user.show(inc["kpi"], k.format_compact(v)))
            if k
            else (lambda v: "–" if v is None else f"{v:,.4g}")
        )
        color = SEVERITY_COLORS.get(inc["severity"], "#555")
        state = inc["status"]
        who = ""
        if state == "acknowledged":
            who = f" by {esc(inc.get('acknowledged_by'))} at {_when(inc.get('acknowledged_at'))}"
        elif state == "resolved":
            who = f" by {esc(inc.get('resolved_by'))} at {_when(inc.get('resolved_at'))}"
        explanation = "Values are masked for your role." if masked else inc.get("explanation") or ""
        band = (
            "–"
            if inc.get("expected") is None
            else f"{fmt(inc['expected'])} ({fmt(inc.get('lower_bound'))}–{fmt(inc.get('upper_bound'))})"
        )
        head = widgets.HTML(
            f'<div class="kpi-incident" data-id="{iid}" data-status="{esc(state)}" data-kpi="{esc(inc["kpi"])}">'
            f'<div class="kpi-incident-head">#{iid} · {esc(alerts.series_label(inc))} '
            f'<span class="kpi-badge" style="background:{color}">{esc("masked" if masked else inc["severity"])}</span> '
            f'<span class="kpi-incident-change">{"" if masked else _pct(inc.get("deviation_pct"))}</span></div>'
            f'<div class="kpi-incident-explanation">{esc(explanation)}</div>'
            f'<div class="kpi-incident-facts">Started <b>{_when(inc["started_at"])}</b> · '
            f"{'ended <b>' + _when(inc.get('ended_at')) + '</b>' if inc.get('ended_at') else '<b>ongoing</b>'} · "
            f"value {esc(fmt(inc.get('value')))} · expected {esc(band)} · rule {esc(inc.get('rule') or '–')}"
            f"{' · drivers ' + esc(inc['drivers']) if inc.get('drivers') and not masked else ''}</div>"
            f'<div class="kpi-incident-facts">Status <b class="kpi-incident-status">{esc(state)}</b>{who}'
            f"{' · “' + esc(inc['comment']) + '”' if inc.get('comment') else ''}</div></div>"
        )
        parts: list[widgets.Widget] = [head]
        if not masked:
            png = self._chart(inc)
            if png:
                img = widgets.Image(
                    value=png, format="png", layout=widgets.Layout(max_width="760px", width="100%")
                )
                img.add_class("kpi-incident-chart")
                parts.append(img)
        comment = widgets.Textarea(
            placeholder="Comment (what you found, what you did)",
            layout=widgets.Layout(width="100%", max_width="760px", height="54px"),
        )
        comment.add_class("kpi-comment")
        ack = widgets.Button(
            description="Acknowledge",
            icon="check",
            button_style="warning",
            disabled=state != "open" or not self.user.can_act,
            tooltip="" if self.user.can_act else "Your role may look, not act: ask an analyst",
        )
        res = widgets.Button(
            description="Resolve",
            icon="check-circle",
            button_style="success",
            disabled=state == "resolved" or not self.user.can_act,
        )
        ack.add_class("kpi-ack")
        res.add_class("kpi-resolve")
        feedback = widgets.HTML()
        feedback.add_class("kpi-feedback")
        ack.on_click(lambda _b: self._act("acknowledge", iid, comment, feedback))
        res.on_click(lambda _b: self._act("resolve", iid, comment, feedback))
        parts += [
            comment,
            widgets.HBox([ack, res, feedback], layout=widgets.Layout(gap="8px", align_items="center")),
        ]
        card = widgets.VBox(parts)
        card.add_class("kpi-card")
        card.add_class(f"kpi-incident-{iid}")
        return card

    def _chart(self, inc: dict[str, Any]) -> bytes | None:
        key = (inc["id"], str(inc.get("updated_at")))
        if key not in self._charts:
            try:
                self._charts[key] = incident_png(inc)
            except (KpiError, ValueError, KeyError, TypeError) as exc:
                log.warning("no chart for incident #%s: %s", inc["id"], exc)
                return None
        return self._charts[key]

    def _act(self, action: str, iid: int, comment: widgets.Textarea, feedback: widgets.HTML) -> None:
        text = (comment.value or "").strip() or None
        feedback.value = f'<span class="kpi-status" data-state="loading"><span class="kpi-spin"></span>{action.title()}…</span>'
        try:
            if not self.user.can_act:  # the button is disabled, but a page's state is the client's
                raise AuthError(f"{self.user.name} may not {action} incidents: analysts and above may.")
            fn = alerts.acknowledge if action == "acknowledge" else alerts.resolve
            fn(iid, self.user.login, text)
        except KpiError as exc:
            feedback.value = f'<span class="kpi-status kpi-error" data-state="error">{esc(exc)}</span>'
            return
        self.refresh()
        done = "acknowledged" if action == "acknowledge" else "resolved"
        self.status.set("ready", f"#{iid} {done} by {self.user.login} at {datetime.now():%H:%M:%S}")

    # -- events -----------------------------------------------------------------------------------------

    def _on_filter(self, _change: Any) -> None:
        self.page = 0
        self.refresh()

    def _turn(self, step: int) -> None:
        self.page = max(0, self.page + step)
        with self.status.busy("Loading…"):
            self._render()
            self.status.set("ready", f"Page {self.page + 1}")

    def close(self) -> None:
        self.heartbeat.close()
