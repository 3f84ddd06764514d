"""The executive page as a session sees it: header, first paint (the tiles in the HTML itself) and
the layout Panel serves (``dashboards/executive.py`` calls :func:`app`)."""

from __future__ import annotations

import gc
import html
import logging
from pathlib import Path

import panel as pn

from ... import auth
from ...errors import AuthError
from .. import bokeh_speedups, page_resources
from ..ask_box import AskBox
from .dashboard import ExecutiveDashboard, _apply_each

log = logging.getLogger(__name__)

page_resources.install()  # the page's HTML lists only the scripts it runs (no bokeh-gl, no ESM shims)
bokeh_speedups.install()  # a session's models and document for a quarter less CPU


def _freeze_startup_heap() -> None:
    """In a Panel worker (this module is imported by its first session), move what its imports built
    (~250 k objects: Panel, Bokeh, pandas, SQLAlchemy, kpi_lib) out of the cyclic garbage collector's
    way, for good: its full collections, one of which Panel runs on the event loop 5 s after a session
    ends, then walk only what sessions built. Measured: GC during 25 page builds 690 -> 270 ms, a full
    collection 180-216 -> 83-98 ms (issue 18)."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return  # a notebook or a test: its heap is left as it is
    gc.collect()
    gc.freeze()


_freeze_startup_heap()

PAGE_CSS = """
.kpi-header {background: #1f2d3d; color: #fff; padding: 10px 18px; display: flex; align-items: center;
  justify-content: space-between; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;}
.kpi-header a {color: #cfe2ff; text-decoration: none; margin-left: 14px; font-size: 14px;}
.kpi-header .kpi-title {font-size: 20px; font-weight: 600;}
"""


def _header_html(user: auth.User, dark: bool) -> str:
    toggle = "?theme=light" if dark else "?theme=dark"
    return (
        f"<style>{PAGE_CSS}</style><div class='kpi-header'><span class='kpi-title'>Executive dashboard</span>"
        f"<span><a href='/'>All dashboards</a><a href='{toggle}' id='kpi-theme'>{'Light' if dark else 'Dark'} theme</a>"
        f"<a href='/logout'>Sign out {html.escape(user.name)}</a></span></div>"
    )


def _header(user: auth.User, dark: bool) -> pn.pane.HTML:
    return pn.pane.HTML(_header_html(user, dark), sizing_mode="stretch_width", margin=0)


# The page's HTML itself carries the header and the tiles, laid out where the live page puts them,
# so the numbers are readable as soon as the HTML arrives, before the session came over the
# websocket. The same numbers as the live tiles (same render); a small script removes this copy once
# those are on screen. Everything above ``<!--kpi-shell-->`` (Bokeh's and Panel's scripts, which
# templates/load_scripts.js runs without blocking the page, and templates/early_session.js) is the
# same for every session: the front door sends it before the session is built, so the scripts run
# while the worker builds (web/page_shell.py).
_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
FIRST_PAINT_TEMPLATE = (
    (_TEMPLATES / "executive_first_paint.html")
    .read_text()
    .replace("/* early_session.js */", (_TEMPLATES / "early_session.js").read_text())
    .replace("/* load_scripts.js */", (_TEMPLATES / "load_scripts.js").read_text())
)


def _first_paint(dash: ExecutiveDashboard) -> None:
    """Serve this session's page with its shell first and its tiles in the HTML (see above)."""
    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        return
    doc.template = FIRST_PAINT_TEMPLATE
    doc.template_variables["kpi_first_paint"] = (
        (
            _header_html(dash.user, dash.dark)
            + "<div class='kpi-fp-body'><div class='kpi-fp-side'></div>"
            + f"<div class='kpi-fp-main'>{dash.tiles.object}</div></div>"
        )
        if dash.tile_kpis
        else ""  # no tiles: the live page would never replace the copy
    )


def app() -> pn.viewable.Viewable:
    """Build one session's page: layout, URL sync, first render, live updates.

    A plain Panel layout rather than a template: templates pull fonts from Google's CDN (nothing may
    load from a CDN here) and their extra CSS and JavaScript slow the first paint.
    """
    args = pn.state.session_args or {}
    dark = (args.get("theme") or [b""])[0].decode() == "dark"
    pn.config.theme = "dark" if dark else "default"
    pn.extension()  # this page uses no optional extension: none of their JavaScript is sent
    page_resources.stylesheets_from_this_server()
    doc = pn.state.curdoc
    try:
        dash = ExecutiveDashboard(dark=dark)
    except AuthError as exc:  # no verified user (Panel's warm-up run, or a request around the front door)
        return pn.pane.Markdown(f"**{exc}**", sizing_mode="stretch_width")
    if pn.state.location is not None:
        pn.state.location.sync(
            dash,
            {p: p for p in ("kpi", "start", "end", "region", "channel", "category", "drill")},
            on_error=lambda values: _apply_each(dash, values),
        )
        dash.dates.value = (dash.start, dash.end)
        for dim, w in dash.selects.items():
            value = getattr(dash, dim)
            if value not in w.options:  # e.g. not in the lists yet: the link still opens that view
                w.options = [*w.options, value]
            w.value = value
    with dash._lock:
        dash._render_tiles(first_paint=True)  # the numbers are in the first paint
    dash.prepare_charts()
    _first_paint(dash)
    sidebar = pn.Column(*dash.sidebar(), width=250, margin=(10, 10), name="filters")
    parts = dash.main()
    dash.ask_box = AskBox(dash.user)
    main = pn.Column(
        parts[0],
        dash.ask_box.view(),
        *parts[1:],
        sizing_mode="stretch_width",
        margin=(10, 10),
        styles={"flex": "1 1 560px", "min-width": "300px"},
        css_classes=["kpi-main"],
    )  # beside the filters; on a phone above them, so the numbers come first
    page = pn.Column(
        _header(dash.user, dark),
        # a Row wrapped by CSS rather than a FlexBox: a FlexBox is a ReactiveHTML component, whose
        # template each session compiled (~25 ms) and the browser rendered node by node (~60 ms)
        pn.Row(
            sidebar,
            main,
            sizing_mode="stretch_width",
            styles={"flex-wrap": "wrap", "align-items": "flex-start"},
            stylesheets=["@media (max-width: 820px) { .kpi-main { order: -1; } }"],
        ),
        sizing_mode="stretch_width",
        margin=0,
    )
    page.dashboard = dash  # tests and the benchmark reach the session's state through this
    theme = page._design.theme.bokeh_theme if page._design is not None else None
    if theme is not None and doc is not None and doc.session_context is not None:
        # the charts are plain Bokeh figures: Panel themes them as it renders them, but the document
        # applies its own (default) theme to every model that joins it, which undid that (white
        # charts on the dark page); the dark theme is the document's own
        doc.theme = theme

    def on_load() -> None:
        dash.start_live()  # listening before the check below: no change falls in between
        dash.catch_up()

    if doc is not None and doc.session_context is not None:
        # the charts and the table are drawn just after the HTML (with its tiles) has gone out, while
        # the browser loads the scripts: they are in the session document it then asks for, or
        # follow it at once, with no round trip of the browser's
        doc.add_next_tick_callback(dash.draw_charts)
        pn.state.onload(on_load)
    else:  # built outside a server (a notebook, a test): nothing to wait for
        dash.draw_charts()
        on_load()
    return page
