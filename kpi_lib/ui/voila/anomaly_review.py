"""The anomaly review: incidents with their explanation and chart; acknowledge or resolve them."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ... import alerts, kpis, warehouse
from ... import incidents as incident_store
from ...auth import User
from ...config import settings
from ...errors import AuthError, KpiError
from ...reports import alert_email
from .runtime import CSS, SEVERITIES, SEVERITY_COLORS, Heartbeat, Status, esc

log = logging.getLogger(__name__)


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


def incident_png(incident: Mapping[str, Any], dpi: int = 80) -> bytes:
    """The incident's chart (series, expected band, incident shaded) as PNG bytes."""
    fig, _ = alert_email.incident_chart(incident)
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
        self.events: dict[int, list[int]] = {}  # incident id -> its event's ids, the lead first
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

    def _events(self, rows: pd.DataFrame) -> dict[int, list[int]]:
        """Each incident's event as ids, its lead first (:func:`kpi_lib.incidents.events`): a week's
        outage is one event in every KPI and slice, and each card says so (a masked KPI's joins none)."""
        out: dict[int, list[int]] = {}
        for group in incident_store.events(rows.to_dict("records"), masked=self.user.is_masked):
            ids = [int(i["id"]) for i in group]
            out.update({i: ids for i in ids})
        return out

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
            self.events = self._events(self.rows)
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
            f'<div class="kpi-incident-head">#{iid} · {esc(incident_store.series_label(inc))} '
            f'<span class="kpi-badge" style="background:{color}">{esc("masked" if masked else inc["severity"])}</span> '
            f'<span class="kpi-incident-change">{"" if masked else alert_email.change_text(inc)}</span></div>'
            f'<div class="kpi-incident-explanation">{esc(explanation)}</div>'
            f'<div class="kpi-incident-facts">Started <b>{_when(inc["started_at"])}</b> · '
            f"{'ended <b>' + _when(inc.get('ended_at')) + '</b>' if inc.get('ended_at') else '<b>ongoing</b>'} · "
            f"at its peak {esc(fmt(inc.get('value')))}, expected {esc(band)} · rule {esc(inc.get('rule') or '–')}"
            f"{' · drivers ' + esc(inc['drivers']) if inc.get('drivers') and not masked else ''}</div>"
            f"{self._event_line(iid)}"
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

    def _event_line(self, iid: int) -> str:
        ids = self.events.get(iid, [iid])
        if len(ids) < 2:
            return ""
        if ids[0] == iid:
            others = ", ".join(f"#{i}" for i in ids[1:9]) + (", …" if len(ids) > 9 else "")
            n = len(ids) - 1
            text = f"One event with {n} more incident{'s' if n != 1 else ''} at the same time: {others}"
        else:
            text = f"Part of the event led by #{ids[0]} ({len(ids)} incidents at the same time)"
        return f'<div class="kpi-incident-event" data-lead="{ids[0]}">{esc(text)}</div>'

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
