"""What every Voila dashboard page needs to behave as a long-lived web page: its pulse
(:class:`Heartbeat`), paced refreshes (:class:`Throttle`), a status line, URL parameters, warm-up,
the shared look (CSS, palette) and number formatting."""

from __future__ import annotations

import asyncio
import html
import logging
import math
import os
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ... import kpis, stream, warehouse
from ...auth import User
from ...errors import KpiError

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
.kpi-incident-event {font-size:12.5px; color:#7a4b00; background:#fff6e0; border-radius:4px; padding:2px 6px; margin:3px 0; display:inline-block;}
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


class Throttle(stream.Paced):
    """Call ``fn`` at most once per ``interval`` seconds, however often :meth:`trigger` is called.

    The first trigger runs at once; triggers inside the interval coalesce into one run at its end.
    ``trigger`` is safe from any thread; ``fn`` runs on the loop that created the Throttle (the
    kernel's), so widget updates never race.
    """

    def __init__(self, fn: Callable[[], None], interval: float = 1.0) -> None:
        super().__init__(fn, name="voila-refresh", min_interval_s=float(interval), loop=_running_loop())
        self.interval = float(interval)

    trigger = stream.Paced.poke


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


def value_cell(user: User, k: kpis.Kpi, v: Any) -> str:
    v = None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
    text = user.show(k.name, k.format_value(v))
    if user.is_masked(k.name) or v is None:
        return f"<td>{esc(text)}</td>"
    return f'<td data-value="{v!r}">{esc(text)}</td>'


def change_html(k: kpis.Kpi, change: float | None, label: str) -> str:
    if change is None or not math.isfinite(change):
        return f'<div class="kpi-sub">– {esc(label)}</div>'
    good = (change >= 0) == k.up_is_good
    cls = "kpi-good" if good else "kpi-bad"
    arrow = "▲" if change >= 0 else "▼"
    return f'<div class="kpi-sub"><span class="{cls}">{arrow} {abs(change):.1%}</span> {esc(label)}</div>'
