"""The "Alert rules" page (Panel): list rules, write one without code, preview it, save it.

Admins and analysts only (``User.can_edit_rules``): the front door answers 403 to anyone else
(:mod:`kpi_lib.web.gate`), and the page checks again. The preview replays the rule on the last 90
days with :func:`kpi_lib.thresholds.backtest` (the same evaluation the live listener runs) and marks
the days it would have fired on the KPI's chart, before anything is saved. ``?as_of=`` pins the
page's "now"; ``?rule=NAME`` opens that rule (the link in alert e-mails).
"""

from __future__ import annotations

import html
import logging
from typing import Any

import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, DatetimeTickFormatter
from bokeh.plotting import figure

from .. import auth, kpis, thresholds
from ..errors import KpiError
from ..thresholds.spec import DIMENSIONS, SEVERITIES
from . import bokeh_speedups, page_resources

log = logging.getLogger(__name__)
bokeh_speedups.install()  # this page shares the Panel worker with the executive page

NEW = "New rule"
NONE = "(all)"
CSS = """
.kpi-header {display: flex; align-items: center; justify-content: space-between; padding: 10px 16px;
  background: #1f2937; color: #e5e7eb; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;}
.kpi-header a {color: #cfe2ff; text-decoration: none; margin-left: 14px; font-size: 14px;}
.kpi-header .kpi-title {font-size: 20px; font-weight: 600;}
table.kpi-rules {border-collapse: collapse; width: 100%; font-size: 14px;}
table.kpi-rules th, table.kpi-rules td {border-bottom: 1px solid #374151; padding: 5px 8px; text-align: left;}
.kpi-preview {font-size: 16px;}
.kpi-error {color: #fca5a5;}
.kpi-ok {color: #86efac;}
"""


def _header(user: auth.User) -> pn.pane.HTML:
    return pn.pane.HTML(
        f"<style>{CSS}</style><div class='kpi-header'><span class='kpi-title'>Alert rules</span>"
        f"<span><a href='/'>All dashboards</a><a href='/logout'>Sign out {html.escape(user.name)}</a></span></div>",
        sizing_mode="stretch_width",
        margin=0,
    )


def _arg(name: str) -> str | None:
    args = pn.state.session_args or {}
    value = (args.get(name) or [b""])[0].decode()
    return value or None


class RulesPage:
    """One session's page: the rule list, the form, the preview."""

    def __init__(self, user: auth.User, as_of: Any = None) -> None:
        self.user = user
        with auth.acting_as(user):
            self.as_of = kpis.as_of(as_of)
        defs = kpis.definitions()
        self.kpis = {
            k.label: k.name for k in defs.values() if user.can_see(k.name) and not user.is_masked(k.name)
        }
        self.rule_id: int | None = None
        w = pn.widgets
        self.pick = w.Select(label="Rule", options=[NEW], value=NEW, width=300)
        self.name = w.TextInput(label="Name", placeholder="e.g. Big day in Europe", width=300)
        self.kpi = w.Select(label="KPI", options=self.kpis, width=300)
        self.dim = w.Select(label="Filter by", options=[NONE, *DIMENSIONS], width=145)
        self.value = w.TextInput(label="Filter value", placeholder="e.g. Europe", width=145)
        self.grain = w.Select(
            label="Grain", options={"Hour": "hour", "Day": "day", "Week": "week"}, value="day", width=145
        )
        self.condition = w.Select(
            label="Condition",
            options={v: k for k, v in thresholds.CONDITIONS.items()},
            value="above",
            width=300,
        )
        self.threshold = w.TextInput(
            label="Threshold (a value, or % for a change)", placeholder="e.g. 10000", width=300
        )
        self.compare = w.Select(
            label="Compare with", options={v: k for k, v in thresholds.COMPARES.items()}, width=300
        )
        self.min_volume = w.TextInput(label="Minimum orders per period", value="0", width=145)
        self.severity = w.Select(label="Severity", options=list(SEVERITIES), value="medium", width=145)
        self.sensitivity = w.Select(
            label="Anomaly sensitivity", options=list(thresholds.SENSITIVITIES), value="medium", width=145
        )
        self.quiet_from = w.TextInput(label="Quiet hours from", placeholder="22:00", width=145)
        self.quiet_until = w.TextInput(label="Quiet hours until", placeholder="07:00", width=145)
        self.maintenance = w.TextAreaInput(
            label="Maintenance windows (one per line: start to end)",
            placeholder="2026-03-01 00:00 to 2026-03-01 06:00",
            width=300,
            height=70,
        )
        self.snooze = w.TextInput(label="Snoozed until", placeholder="2026-03-01 07:00", width=300)
        self.enabled = w.Checkbox(label="Enabled", value=True)
        self.preview_btn = w.Button(label="Preview", color="primary", width=95)
        self.save_btn = w.Button(label="Save", color="success", width=95)
        self.delete_btn = w.Button(label="Delete", color="danger", width=95)
        self.message = pn.pane.HTML("", sizing_mode="stretch_width")
        self.preview_text = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["kpi-preview"])
        self.chart = pn.pane.Bokeh(None, sizing_mode="stretch_width", height=320)
        self.table = pn.pane.HTML("", sizing_mode="stretch_width")
        self.history = pn.pane.HTML("", sizing_mode="stretch_width")
        self.fired = pn.pane.HTML("", sizing_mode="stretch_width")
        self.incident = w.TextInput(label="Incident #", placeholder="e.g. 12", width=90)
        self.incident_until = w.TextInput(label="Snooze it until", placeholder="2026-03-01 07:00", width=160)
        self.incident_btn = w.Button(label="Snooze incident", width=130, align="end")
        self.incident_btn.on_click(lambda _: self.snooze_incident())
        self.preview_btn.on_click(lambda _: self.preview())
        self.save_btn.on_click(lambda _: self.save())
        self.delete_btn.on_click(lambda _: self.delete())
        self.pick.param.watch(lambda e: self.load(e.new), "value")
        self.refresh_list()

    # --- the form <-> a rule ---------------------------------------------------------------------

    @staticmethod
    def _text(widget) -> str:
        return str(getattr(widget, "value_input", None) or widget.value or "").strip()

    def spec(self) -> dict[str, Any]:
        where = {}
        if self.dim.value != NONE and self._text(self.value):
            where[self.dim.value] = self._text(self.value)
        quiet = [self._text(self.quiet_from), self._text(self.quiet_until)]
        windows = []
        for line in self._text(self.maintenance).splitlines():
            if line.strip():
                parts = [p.strip() for p in line.replace(" – ", " to ").split(" to ")]
                windows.append(parts if len(parts) == 2 else [line.strip(), None])
        return {
            "name": self._text(self.name),
            "kpi": self.kpi.value,
            "grain": self.grain.value,
            "condition": self.condition.value,
            "threshold": self._text(self.threshold) or None,
            "compare": self.compare.value,
            "where": where,
            "min_volume": self._text(self.min_volume) or 0,
            "sensitivity": self.sensitivity.value,
            "severity": self.severity.value,
            "quiet_hours": quiet if any(quiet) else None,
            "maintenance": windows,
            "snoozed_until": self._text(self.snooze) or None,
            "enabled": self.enabled.value,
        }

    def load(self, name: str) -> None:
        """Fill the form with a saved rule (or empty it for a new one)."""
        rows = thresholds.listing()
        row = rows[rows["name"] == name]
        self.message.object = ""
        if name == NEW or row.empty:
            self.rule_id = None
            self.name.value = ""
            self.history.object = self.fired.object = ""
            return
        self.rule_id = int(row["id"].iloc[0])
        self.show_history()
        self.show_fired()
        s = row["spec"].iloc[0]
        self.name.value = s["name"]
        self.kpi.value = s["kpi"] if s["kpi"] in self.kpis.values() else self.kpi.value
        dim, value = next(iter((s.get("where") or {}).items()), (NONE, ""))
        self.dim.value, self.value.value = dim, value
        self.grain.value, self.condition.value, self.compare.value = s["grain"], s["condition"], s["compare"]
        self.threshold.value = "" if s.get("threshold") is None else f"{s['threshold']:g}"
        self.min_volume.value = f"{s.get('min_volume') or 0:g}"
        self.severity.value, self.sensitivity.value = s["severity"], s["sensitivity"]
        quiet = s.get("quiet_hours") or ["", ""]
        self.quiet_from.value, self.quiet_until.value = quiet
        self.maintenance.value = "\n".join(f"{a} to {b}" for a, b in s.get("maintenance") or [])
        self.snooze.value = s.get("snoozed_until") or ""
        self.enabled.value = bool(s.get("enabled", True))
        self.preview()

    # --- actions ---------------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        self.message.object = f"<p class='kpi-error'>{html.escape(str(exc))}</p>"

    def preview(self) -> None:
        try:
            rule = thresholds.parse(self.spec(), kpis.definitions())
            if not rule.is_threshold:
                self.preview_text.object = (
                    f"<p>Anomaly detection on {html.escape(rule.kpi)} at <b>{rule.sensitivity}</b> sensitivity: "
                    "low alarms about four times rarer than the standard rules, high about four times as often.</p>"
                )
                self.chart.object = None
                return
            with auth.acting_as(self.user):
                result = thresholds.backtest(rule, as_of=self.as_of.at)
        except (KpiError, ValueError) as exc:
            self._fail(exc)
            return
        self.message.object = ""
        dates = ", ".join(kpis.period_label(f.start, rule.grain) for f in result.firings)
        self.preview_text.object = (
            f"<p data-kpi-preview-count='{result.count}'><b>{html.escape(result.sentence())}</b></p>"
            f"<p>{html.escape(rule.describe(kpis.get(rule.kpi).label))}.</p>"
            + (f"<p>Fired on: {html.escape(dates)}</p>" if dates else "")
        )
        self.chart.object = _chart(result, kpis.get(rule.kpi).label)

    def save(self) -> None:
        try:
            row = thresholds.save(self.spec(), self.user, self.rule_id)
        except KpiError as exc:
            self._fail(exc)
            return
        self.rule_id = int(row["id"])
        self.refresh_list(select=row["name"])  # (re)loads the form from what was stored
        self.preview()  # what the saved version would have done
        self.show_history()
        self.message.object = (
            f"<p class='kpi-ok'>Saved {html.escape(row['name'])} (version {row['version']}). "
            "The live alerts use it from their next pass.</p>"
        )

    def delete(self) -> None:
        if self.rule_id is None:
            return
        try:
            thresholds.delete(self.rule_id, self.user)
        except KpiError as exc:
            self._fail(exc)
            return
        self.rule_id = None
        self.refresh_list(select=NEW)
        self.message.object = "<p class='kpi-ok'>Deleted.</p>"

    def show_history(self) -> None:
        """The selected rule's versions: who saved what, when (the audit log has the same)."""
        if self.rule_id is None:
            return
        items = "".join(
            f"<li>v{v.version} {html.escape(v.change)} by {html.escape(v.saved_by)} "
            f"{pd.Timestamp(v.saved_at):%Y-%m-%d %H:%M}: {html.escape(_short(v.spec))}</li>"
            for v in thresholds.versions(self.rule_id).itertuples()
        )
        self.history.object = f"<h3>History</h3><ul class='kpi-history'>{items}</ul>"

    def show_fired(self) -> None:
        """The selected rule's latest incidents (the ones this user's rows cover)."""
        name = self.pick.value
        if self.rule_id is None or name == NEW:
            self.fired.object = ""
            return
        with auth.acting_as(self.user):
            rows = thresholds.incidents_of(name)
        items = "".join(
            f"<li data-kpi-incident='{int(r.id)}'>#{int(r.id)} from {pd.Timestamp(r.started_at):%Y-%m-%d %H:%M}: "
            f"{r.value:,.6g}, {html.escape(r.status)}"
            + (
                f", snoozed until {pd.Timestamp(r.snoozed_until):%Y-%m-%d %H:%M}"
                if pd.notna(r.snoozed_until)
                else ""
            )
            + "</li>"
            for r in rows.itertuples()
        )
        self.fired.object = f"<h3>Latest incidents</h3><ul>{items or '<li>none yet</li>'}</ul>"

    def snooze_incident(self) -> None:
        try:
            thresholds.snooze_incident(
                int(self._text(self.incident)), self._text(self.incident_until) or None, self.user
            )
        except (KpiError, ValueError) as exc:
            self._fail(
                exc if isinstance(exc, KpiError) else ValueError("Incident #: give the incident's number.")
            )
            return
        self.show_fired()
        self.message.object = (
            f"<p class='kpi-ok'>Incident #{html.escape(self._text(self.incident))} snoozed.</p>"
        )

    def refresh_list(self, select: str | None = None) -> None:
        rows = thresholds.listing()
        body = []
        labels = {v: k for k, v in self.kpis.items()}
        for r in rows.itertuples():
            try:
                rule = thresholds.parse(r.spec)
                text = rule.describe(labels.get(rule.kpi, rule.kpi))
                state = (
                    "snoozed until " + rule.snoozed_until.strftime("%Y-%m-%d %H:%M")
                    if rule.snoozed_until
                    else ""
                )
                state = state or ("on" if rule.enabled else "off")
            except KpiError as exc:
                text, state = str(exc), "broken"
            body.append(
                f"<tr data-kpi-rule='{html.escape(r.name, quote=True)}'><td>{html.escape(r.name)}</td>"
                f"<td>{html.escape(text)}</td><td>{html.escape(state)}</td><td>v{r.version}</td>"
                f"<td>{html.escape(r.updated_by)} {pd.Timestamp(r.updated_at):%Y-%m-%d %H:%M}</td></tr>"
            )
        self.table.object = (
            "<table class='kpi-rules'><thead><tr><th>Rule</th><th>Fires when</th><th>State</th>"
            "<th>Version</th><th>Last change</th></tr></thead><tbody>"
            + ("".join(body) or "<tr><td colspan='5'>No rules yet: write one below.</td></tr>")
            + "</tbody></table>"
        )
        self.pick.options = [NEW, *rows["name"].tolist()]
        if select is not None:
            self.pick.value = select

    def view(self) -> pn.viewable.Viewable:
        form = pn.Column(
            self.pick,
            self.name,
            self.kpi,
            pn.Row(self.dim, self.value),
            pn.Row(self.grain, self.severity),
            self.condition,
            self.threshold,
            self.compare,
            pn.Row(self.min_volume, self.sensitivity),
            pn.Row(self.quiet_from, self.quiet_until),
            self.maintenance,
            self.snooze,
            self.enabled,
            pn.Row(self.preview_btn, self.save_btn, self.delete_btn),
            width=330,
        )
        right = pn.Column(
            pn.pane.HTML(f"<p>Preview {html.escape(self.as_of.describe())}.</p>"),
            self.message,
            self.preview_text,
            self.chart,
            pn.pane.HTML("<h3>Rules</h3>"),
            self.table,
            self.history,
            self.fired,
            pn.Row(self.incident, self.incident_until, self.incident_btn),
            sizing_mode="stretch_width",
        )
        return pn.Row(form, right, sizing_mode="stretch_width", margin=(10, 10))


def _short(spec: dict) -> str:
    """A saved version in one line: what makes it fire and its state."""
    try:
        rule = thresholds.parse(spec)
    except KpiError as exc:
        return str(exc)
    extra = [f"snoozed until {rule.snoozed_until:%Y-%m-%d %H:%M}"] if rule.snoozed_until else []
    extra += [] if rule.enabled else ["off"]
    return rule.describe() + (f" ({', '.join(extra)})" if extra else "")


def _chart(result: thresholds.Preview, label: str):
    """The KPI over the preview window with the periods the rule would have fired on marked."""
    s = result.series
    fig = figure(
        height=300, sizing_mode="stretch_width", x_axis_type="datetime", title=label, toolbar_location=None
    )
    fig.line(s.index, s.to_numpy(), line_width=1.6, legend_label=label)
    if result.firings:
        when = [f.start for f in result.firings]
        fired = ColumnDataSource({"x": when, "y": [float(s.get(t, float("nan"))) for t in when]})
        fig.scatter("x", "y", source=fired, size=11, color="#ef4444", legend_label="would have fired")
    rule = result.rule
    if rule.condition in ("above", "below") and rule.threshold is not None:
        fig.line(
            [s.index.min(), s.index.max()],
            [rule.threshold] * 2,
            line_dash="dashed",
            color="#f59e0b",
            legend_label="threshold",
        )
    fig.xaxis.formatter = DatetimeTickFormatter(days="%d %b", months="%b %Y")
    fig.legend.location = "top_left"
    # the page's dark theme (Bokeh's own themes are not applied to a figure made in a callback)
    fig.background_fill_color = fig.border_fill_color = "#111827"
    fig.legend.background_fill_color = "#1f2937"
    fig.legend.label_text_color = fig.title.text_color = "#e5e7eb"
    for axis in (fig.xaxis, fig.yaxis):
        axis.axis_label_text_color = axis.major_label_text_color = "#d1d5db"
        axis.axis_line_color = axis.major_tick_line_color = axis.minor_tick_line_color = "#6b7280"
    fig.grid.grid_line_color = "#374151"
    return fig


def app() -> pn.viewable.Viewable:
    """Build one session's page (dark, no CDN: a plain Panel layout, no template)."""
    try:
        user = auth.current_user()
    except KpiError as exc:  # no verified user (Panel's warm-up run, or a request around the front door)
        return pn.pane.Markdown(f"**{exc}**")
    # only inside a user's session: set at warm-up, the theme would be every page's default
    pn.config.theme = "dark"
    pn.extension()
    page_resources.stylesheets_from_this_server()
    if not user.can_edit_rules:
        return pn.pane.HTML("<h2>Not allowed</h2><p>Only admins and analysts may edit alert rules.</p>")
    try:
        page = RulesPage(user, _arg("as_of"))
    except KpiError as exc:
        return pn.Column(_header(user), pn.pane.HTML(f"<p class='kpi-error'>{html.escape(str(exc))}</p>"))
    auth.audit(user.login, "view", "alert rules")
    if _arg("rule"):
        page.refresh_list(select=_arg("rule"))
    return pn.Column(_header(user), page.view(), sizing_mode="stretch_width", margin=0)
