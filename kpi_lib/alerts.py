"""Alerts: new incidents in ``ops.anomalies`` become routed, de-duplicated emails in the outbox; and
the incident lifecycle (acknowledge, resolve) that dashboards and the CLI call.

    >>> from kpi_lib import alerts
    >>> result = alerts.notify_new_incidents(provenance=jobs.provenance(run_id))   # doctest: +SKIP
    >>> result.emails        # [{'outbox_id': 7, 'recipients': [...], 'subject': '[KPI alert] 2 new ...'}]
    >>> alerts.acknowledge(12, "ana", "looking into it"); alerts.resolve(12, "ana", "fixed the feed")

Which incidents alert: status ``open``, severity at least the route's ``min_severity``, never emailed
to that recipient before. Re-arm: once a series' incident was emailed to someone, a *newer* incident on
the same series stays quiet for them until the emailed one is resolved, or until the route's
``cooldown`` has passed since that email. The outbox row and the ``ops.alert_notifications`` rows are
written in one transaction, under an advisory lock, so concurrent runs cannot double-send.

Routing (``schedules/alerts.yml``, or a dict in the same shape)::

    defaults:                        # for incidents whose KPI no route names
      recipients: [ops@kpi.local]
      min_severity: medium           # low | medium | high
      cooldown: 24h                  # re-arm a series this long after its alert even if unresolved
                                     # (s, m, h, d, w suffixes; "never": only resolving re-arms)
    routes:                          # every matching route applies (recipients are merged)
      - kpi: revenue                 # a KPI name from catalog.yml, or "*" for every KPI
        recipients: [finance@kpi.local, "CFO <cfo@kpi.local>"]
        min_severity: low            # default: defaults.min_severity
        cooldown: 6h                 # default: defaults.cooldown
      - kpi: orders
        where: {region: Europe}      # only this series (dimension: value, a list, or "*")
        recipients: [emea@kpi.local]

A route with ``kpi: "*"`` matches every KPI, so ``defaults`` then never applies. A recipient named by
several matching routes gets the incident once, under the most permissive severity and the
shortest cooldown among them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
from psycopg.rows import dict_row
from pydantic import BeforeValidator

from . import auth, mail, thresholds, warehouse, yamlfile
from . import incidents as incident_store
from .config import settings
from .errors import AlertError, AuthError, KpiError
from .mail.report import SEVERITY_COLORS, Html, Report, badge, esc, signed_pct
from .scope import RowScope
from .yamlfile import Strict

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high")
MAX_CHARTS = 8  # per email; the rest are in the table and the CSV
INCIDENT_COLUMNS = (
    "id",
    "kpi",
    "grain",
    "dimension",
    "dim_value",
    "series_key",
    "severity",
    "status",
    "started_at",
    "peak_at",
    "ended_at",
    "value",
    "expected",
    "lower_bound",
    "upper_bound",
    "deviation_pct",
    "score",
    "rule",
    "explanation",
    "drivers",
    "detected_at",
)
_CONTEXT = {  # how much history a chart shows before the incident, and after it
    "minute": (timedelta(hours=2), timedelta(minutes=20)),
    "hour": (timedelta(days=3), timedelta(days=1)),
    "day": (timedelta(days=60), timedelta(days=14)),
    "week": (timedelta(weeks=26), timedelta(weeks=4)),
    "month": (timedelta(days=730), timedelta(days=92)),
}


def default_routes() -> Path:
    """The routing file: ``alerts.yml`` in the schedules folder (KPI_SCHEDULES_DIR)."""
    return settings().schedules_dir / "alerts.yml"


# --- routing ------------------------------------------------------------------------------------


def parse_duration(value: Any, what: str = "cooldown") -> timedelta:
    """``"24h"``, ``"30m"``, ``"2d"``, ``"90s"``, ``"never"``, or a number of seconds -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if str(value).strip().lower() == "never":
        return timedelta(days=36500)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value))
    if not m:
        raise AlertError(f"{what}={value!r} is not a duration; write e.g. 90s, 30m, 24h, 2d or 1w.")
    unit = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[
        m.group(2)
    ]
    return timedelta(**{unit: float(m.group(1))})


def _severity(value: Any) -> str:
    s = str(value).lower()
    if s not in SEVERITIES:
        raise ValueError(f"min_severity {value!r} must be one of {', '.join(SEVERITIES)}")
    return s


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except AlertError as exc:
        raise ValueError(str(exc)) from None


Severity = Annotated[str, BeforeValidator(_severity)]
Duration = Annotated[timedelta, BeforeValidator(_duration)]
Values = Annotated[
    tuple[str, ...], BeforeValidator(lambda v: tuple(str(x) for x in (v if isinstance(v, list) else [v])))
]


class _DefaultsSpec(Strict):
    recipients: list[str] | str = []
    min_severity: Severity = "medium"
    cooldown: Duration = timedelta(hours=24)


class _RouteSpec(Strict):
    kpi: str
    recipients: list[str] | str
    min_severity: Severity | None = None  # None: the defaults' bar
    cooldown: Duration | None = None
    where: dict[str, Values] = {}


class _RoutingFile(Strict):
    defaults: _DefaultsSpec = _DefaultsSpec()
    routes: list[_RouteSpec] = []


@dataclass(frozen=True)
class Route:
    """Who hears about which incidents."""

    kpi: str
    recipients: tuple[str, ...]
    min_severity: str = "medium"
    cooldown: timedelta = timedelta(hours=24)
    where: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # dimension -> values ("*" = any)

    def matches(self, incident: Mapping[str, Any]) -> bool:
        if self.kpi not in ("*", incident["kpi"]):
            return False
        if not self.where:
            return True
        values = self.where.get(incident.get("dimension") or "")
        return values is not None and ("*" in values or str(incident.get("dim_value")) in values)

    def accepts(self, severity: str) -> bool:
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES) - 1
        return rank >= SEVERITIES.index(self.min_severity)


@dataclass(frozen=True)
class Routing:
    """The parsed routing file: ``defaults`` plus ``routes``."""

    defaults: Route
    routes: tuple[Route, ...]
    source: str = "<dict>"

    def recipients_for(self, incident: Mapping[str, Any]) -> dict[str, timedelta]:
        """Recipient -> cooldown for one incident (empty when its severity is below every route's bar)."""
        matched = [r for r in self.routes if r.matches(incident)] or [self.defaults]
        out: dict[str, timedelta] = {}
        for r in matched:
            if not r.accepts(str(incident.get("severity"))):
                continue
            for rcpt in r.recipients:
                out[rcpt] = min(out.get(rcpt, r.cooldown), r.cooldown)
        return out


def load_routing(source: str | Path | Mapping[str, Any] | Routing | None = None) -> Routing:
    """Read the routing config (default ``schedules/alerts.yml``); see the module docstring."""
    if isinstance(source, Routing):
        return source
    if isinstance(source, Mapping):
        name = "<dict>"
        doc = yamlfile.check(dict(source), _RoutingFile, AlertError, name)
    else:
        path = Path(source) if source else default_routes()
        if not path.is_file():
            raise AlertError(
                f"No alert routing file at {path}; create it (format: kpi_lib/alerts.py docstring)."
            )
        name = str(path)
        doc = yamlfile.read(path, _RoutingFile, AlertError)
    d = doc.defaults
    defaults = Route(
        "*",
        tuple(mail.normalise_recipients(d.recipients)) if d.recipients else (),
        d.min_severity,
        d.cooldown,
    )
    routes = []
    for i, r in enumerate(doc.routes):
        try:
            recipients = tuple(mail.normalise_recipients(r.recipients))
        except AlertError as exc:
            raise AlertError(f"{name} routes.{i}: {exc}") from exc
        routes.append(
            Route(
                kpi=r.kpi,
                recipients=recipients,
                min_severity=r.min_severity or d.min_severity,
                cooldown=r.cooldown if r.cooldown is not None else d.cooldown,
                where=dict(r.where),
            )
        )
    return Routing(defaults, tuple(routes), name)


# --- incidents ----------------------------------------------------------------------------------


def _tz() -> ZoneInfo:
    return ZoneInfo(settings().timezone)


_local = incident_store.local_time


def _when(ts: Any) -> str:
    t = _local(ts)
    return "–" if t is None else f"{t:%Y-%m-%d %H:%M} {settings().timezone}"


series_label = incident_store.series_label


def _fmt(incident: Mapping[str, Any]):
    from . import kpis

    try:
        return kpis.get(incident["kpi"]).format_compact
    except KpiError:
        return lambda v: "–" if v is None else f"{v:,.4g}"


def get_incident(anomaly_id: int, conn: psycopg.Connection | None = None) -> dict[str, Any]:
    """One row of ops.anomalies as a dict; AlertError when there is none."""
    own = conn is None
    c = conn or warehouse.connect_raw()
    try:
        with c.cursor(row_factory=dict_row) as cur:
            row = cur.execute("select * from ops.anomalies where id = %s", [anomaly_id]).fetchone()
    finally:
        if own:
            c.close()
    if row is None:
        raise AlertError(f"No incident #{anomaly_id} in ops.anomalies; list them with `kpi alerts list`.")
    return row


def incidents(
    status: Sequence[str] | None = ("open", "acknowledged"),
    kpis: Sequence[str] | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Incidents as a DataFrame, newest first, as the current reader sees them (see
    :func:`kpi_lib.incidents.listing`, the incident store's reader)."""
    return incident_store.listing(status, kpis, limit)


def _transition(anomaly_id: int, user: str, comment: str | None, action: str) -> dict[str, Any]:
    if not user or not str(user).strip():
        raise AlertError(
            f"Who is doing this? {action} needs a user name (it goes in the incident's audit trail)."
        )
    if auth.exists(user) and not auth.user(user).can_act:  # a dashboard user: their role decides
        auth.audit(user, "refused", f"incident {anomaly_id}", wanted=action)
        raise AuthError(
            f"{user} may not {action} incidents: their role may look, not act (analysts and above may)."
        )
    with warehouse.connect_raw() as conn:
        with conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute("select * from ops.anomalies where id = %s for update", [anomaly_id]).fetchone()
            if row is None:
                raise AlertError(
                    f"No incident #{anomaly_id} in ops.anomalies; list them with `kpi alerts list`."
                )
            status = row["status"]
            if action == "acknowledge":
                if status == "resolved":
                    raise AlertError(
                        f"Incident #{anomaly_id} is already resolved (by {row['resolved_by']} at "
                        f"{_when(row['resolved_at'])}); there is nothing left to acknowledge."
                    )
                if status == "acknowledged":
                    log.info("incident #%d already acknowledged by %s", anomaly_id, row["acknowledged_by"])
                    return row
                row = cur.execute(
                    "update ops.anomalies set status = 'acknowledged', acknowledged_by = %s, acknowledged_at = now(),"
                    " comment = coalesce(%s, comment), updated_at = now() where id = %s returning *",
                    [user, comment, anomaly_id],
                ).fetchone()
            else:
                if status == "resolved":
                    log.info("incident #%d already resolved by %s", anomaly_id, row["resolved_by"])
                    return row
                row = cur.execute(
                    "update ops.anomalies set status = 'resolved', resolved_by = %s, resolved_at = now(),"
                    " comment = coalesce(%s, comment), updated_at = now() where id = %s returning *",
                    [user, comment, anomaly_id],
                ).fetchone()
            cur.execute(
                "insert into ops.anomaly_events (anomaly_id, actor, action, comment) values (%s, %s, %s, %s)",
                [anomaly_id, user, action, comment],
            )
        conn.commit()
    log.info("incident #%d %sd by %s", anomaly_id, action, user)
    auth.audit(user, action, f"incident {anomaly_id}", comment=comment)
    return row


def acknowledge(anomaly_id: int, user: str, comment: str | None = None) -> dict[str, Any]:
    """Mark an open incident as being handled (who, when, why). Acknowledging twice changes nothing."""
    return _transition(anomaly_id, user, comment, "acknowledge")


def resolve(anomaly_id: int, user: str, comment: str | None = None) -> dict[str, Any]:
    """Close an incident. Its series re-arms: the next incident on it alerts again."""
    return _transition(anomaly_id, user, comment, "resolve")


def add_comment(anomaly_id: int, user: str, comment: str) -> None:
    """A note on an incident's audit trail, without changing its status."""
    get_incident(anomaly_id)
    with warehouse.connect_raw() as conn:
        conn.execute(
            "insert into ops.anomaly_events (anomaly_id, actor, action, comment) values (%s, %s, 'comment', %s)",
            [anomaly_id, user, comment],
        )
        conn.commit()


def events(anomaly_id: int) -> pd.DataFrame:
    """The audit trail of one incident (acknowledge, resolve, comment), oldest first."""
    with warehouse.connect_raw() as conn:
        cur = conn.execute(
            "select at, actor, action, comment from ops.anomaly_events where anomaly_id = %s order by at, id",
            [anomaly_id],
        )
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])


# --- charts -------------------------------------------------------------------------------------


def incident_chart(incident: Mapping[str, Any]):
    """(matplotlib Figure, kpis.QueryResult) of the incident's series with the incident marked.

    The series comes from :func:`kpi_lib.kpis.query`, so the chart shows what dashboards show, and the
    query's SQL and catalog entries go into the email's provenance.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from . import kpis

    grain = incident["grain"] if incident["grain"] in _CONTEXT else "day"
    before, after = _CONTEXT[grain]
    start = _local(incident["started_at"])
    stamps = [t for t in (_local(incident.get("peak_at")), _local(incident.get("ended_at"))) if t is not None]
    last = max([start, *stamps])
    q_start = kpis.floor_period((start - before).to_pydatetime(), grain)
    # up to the as-of, not the wall clock: an incident in last year's export has its context
    q_end = min(
        kpis.next_period((last + after).to_pydatetime(), grain), kpis.next_period(kpis.as_of().at, grain)
    )
    q_end = max(q_end, kpis.next_period(last.to_pydatetime(), grain))
    where = {incident["dimension"]: incident["dim_value"]} if incident.get("dimension") else None
    result = kpis.query(incident["kpi"], grain, start=q_start, end=q_end, where=where)
    fmt = result.kpi.format_compact
    df = result.df
    color = SEVERITY_COLORS.get(incident.get("severity"), "#c0392b")
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(df["period"], df["value"], color="#2c3e50", linewidth=1.1, label=result.kpi.label)
    span_end = _local(incident.get("ended_at")) or (df["period"].iloc[-1] if len(df) else last)
    span_end = max(span_end, start + pd.Timedelta({"minute": "1min", "hour": "1h"}.get(grain, "1D")))
    ax.axvspan(start, span_end, color=color, alpha=0.18, linewidth=0, label=f"incident #{incident['id']}")
    lo, hi, exp = incident.get("lower_bound"), incident.get("upper_bound"), incident.get("expected")
    if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        ax.fill_between(
            [start, span_end],
            [lo, lo],
            [hi, hi],
            color="#3498db",
            alpha=0.18,
            linewidth=0,
            label="expected range",
        )
    if exp is not None and math.isfinite(exp):
        ax.hlines(exp, start, span_end, colors="#3498db", linestyles="--", linewidth=1.0, label="expected")
    peak = _local(incident.get("peak_at")) or start
    if incident.get("value") is not None:
        ax.plot([peak], [incident["value"]], marker="o", color=color, markersize=6)
    ax.set_title(series_label(incident), fontsize=10, loc="left")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v)))
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="x-small", frameon=False, ncols=4)
    return fig, result


# --- emails -------------------------------------------------------------------------------------


def _headline(incident: Mapping[str, Any]) -> str:
    return f"{series_label(incident)} {signed_pct(incident.get('deviation_pct'))}"


def alert_subject(items: Sequence[Mapping[str, Any]], limit: int = 110) -> str:
    """'[KPI alert] 2 new incidents: Orders in Europe −94%, Revenue +40%' (cut with … when long)."""
    n = len(items)
    subject = f"[KPI alert] {n} new incident{'s' if n != 1 else ''}: " + ", ".join(
        _headline(i) for i in items
    )
    return subject if len(subject) <= limit else subject[: limit - 1].rstrip(", ") + "…"


def _order(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def key(i):
        rank = SEVERITIES.index(i["severity"]) if i["severity"] in SEVERITIES else 0
        dev = i.get("deviation_pct")
        return (-rank, -(abs(dev) if dev is not None and math.isfinite(dev) else 0.0), i["id"])

    return sorted(items, key=key)


def _context(provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    prov = dict(provenance or {})
    prov.setdefault("source", "kpi_lib.alerts.notify_new_incidents")
    prov.setdefault("generated_at", datetime.now(_tz()).isoformat(timespec="seconds"))
    prov.setdefault("host", socket.gethostname())
    return prov


class _Charts:
    """Render each incident's chart once per run, even when it goes into several emails."""

    def __init__(self) -> None:
        self.done: dict[int, tuple[Any, dict | None, str | None]] = {}

    def get(self, incident: Mapping[str, Any]):
        iid = incident["id"]
        if iid not in self.done:
            try:
                fig, result = incident_chart(incident)
                part = mail.figure_part(fig, f"incident-{iid}")
                self.done[iid] = (part, result.provenance(), None)
            except (KpiError, ValueError, KeyError, TypeError) as exc:  # a chart must not stop the alert
                log.warning("no chart for incident #%s: %s", iid, exc)
                self.done[iid] = (None, None, str(exc))
        return self.done[iid]


def build_alert_email(
    items: Sequence[Mapping[str, Any]],
    recipients: Sequence[str],
    provenance: Mapping[str, Any] | None = None,
    charts: _Charts | None = None,
    max_charts: int = MAX_CHARTS,
) -> mail.Email:
    """One email about a batch of incidents: a section (explanation, expected band, severity, chart) per
    incident, a CSV of the rows, and the provenance."""
    report, prov = alert_report(items, provenance, charts, max_charts)
    kpis, rows = alert_access(items)
    return report.to_email(
        alert_subject(_order(items)), list(recipients), kind="alert", provenance=prov, kpis=kpis, rows=rows
    )


def alert_access(items: Sequence[Mapping[str, Any]]) -> tuple[list[str], dict[str, list[str]] | None]:
    """The KPIs an alert shows and the rows it covers: incidents on one dimension's values cover
    those values (a Europe incident is Europe's business); anything else covers every row."""
    kpis = sorted({str(i["kpi"]) for i in items})
    dims = {i.get("dimension") for i in items}
    if len(dims) != 1 or None in dims:
        return kpis, None
    (dim,) = dims
    return kpis, {str(dim): sorted({str(i.get("dim_value")) for i in items})}


def _rule_fact(incident: Mapping[str, Any]) -> Any:
    """An alert rule's incident names its rule and links to it on the "Alert rules" page."""
    if not thresholds.is_rule_incident(incident):
        return incident.get("rule")
    name, url = str(incident["rule"]), thresholds.rule_url(str(incident["rule"]))
    return Html(f'alert rule <a href="{esc(url)}">{esc(name)}</a>', f"alert rule {name} ({url})")


def alert_report(
    items: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any] | None = None,
    charts: _Charts | None = None,
    max_charts: int = MAX_CHARTS,
) -> tuple[Report, dict[str, Any]]:
    """The alert email's content as a Report (it also renders in notebooks) and its provenance dict."""
    charts = charts or _Charts()
    items = _order(items)
    prov = _context(provenance)
    n = len(items)
    report = Report(
        f"{n} new KPI incident{'s' if n != 1 else ''}",
        f"Detected by the anomaly rules and the alert rules; {'times in ' + settings().timezone}. "
        "Incident ids are in ops.anomalies.",
    )
    overview = pd.DataFrame(
        {
            "#": [i["id"] for i in items],
            "series": [series_label(i) for i in items],
            "severity": [badge(i["severity"]) for i in items],
            "change": [signed_pct(i.get("deviation_pct")) for i in items],
            "started": [_when(i["started_at"]) for i in items],
        }
    )
    report.table(overview, html_columns=("severity",))
    queries = []
    for pos, inc in enumerate(items):
        fmt = _fmt(inc)
        report.add(
            f'<h3 style="font-size:15px;margin:18px 0 4px 0">#{inc["id"]} · {esc(_headline(inc))} '
            f"{badge(inc['severity'])}</h3>",
            f"\n#{inc['id']} {_headline(inc)} [{inc['severity']}]",
        )
        report.paragraph(inc.get("explanation") or "")
        band = (
            f"{fmt(inc['expected'])} (range {fmt(inc['lower_bound'])}–{fmt(inc['upper_bound'])})"
            if inc.get("expected") is not None
            else "–"
        )
        report.facts(
            {
                "Value at peak": f"{fmt(inc.get('value'))} at {_when(inc.get('peak_at') or inc['started_at'])}",
                "Expected": band,
                "Deviation": signed_pct(inc.get("deviation_pct"), 1),
                "Severity": Html(
                    badge(inc["severity"])
                    + (f" score {inc['score']:.1f}" if inc.get("score") is not None else ""),
                    f"{inc['severity']}"
                    + (f" (score {inc['score']:.1f})" if inc.get("score") is not None else ""),
                ),
                "Started": _when(inc["started_at"]),
                "Ended": _when(inc["ended_at"]) if inc.get("ended_at") else "ongoing",
                "Rule": _rule_fact(inc),
                "Drivers": inc.get("drivers"),
                "Series": inc["series_key"],
                "What to do": f"acknowledge or resolve it on the incidents dashboard, or `kpi alerts ack {inc['id']}`",
            }
        )
        if pos < max_charts:
            part, q, err = charts.get(inc)
            if part is not None:
                report.inline.append(part)
                report.add(
                    f'<p style="margin:6px 0"><img src="cid:{part.content_id}" alt="{esc(series_label(inc))}"'
                    f' width="640" style="max-width:100%;height:auto;border:1px solid #eaeef2"></p>',
                    f"[chart: {series_label(inc)}]",
                )
                queries.append({**q, "incident": inc["id"]})
            else:
                report.paragraph(f"(No chart: {err})", muted=True)
    if n > max_charts:
        report.paragraph(
            f"Charts for the first {max_charts} incidents only; all {n} are in incidents.csv.", muted=True
        )
    rows = pd.DataFrame(
        [{c: i.get(c) for c in INCIDENT_COLUMNS} for i in items], columns=list(INCIDENT_COLUMNS)
    )
    report.attach_csv(rows, "incidents.csv")
    prov["queries"] = [*prov.get("queries", []), *queries]
    prov["incidents"] = [i["id"] for i in items]
    report.provenance(prov)
    return report, prov


@dataclass
class AlertResult:
    """What :func:`notify_new_incidents` did."""

    incidents: pd.DataFrame  # the incidents that went into an email this time
    emails: list[dict[str, Any]] = field(default_factory=list)  # outbox_id, recipients, subject, incidents
    suppressed: list[dict[str, Any]] = field(default_factory=list)  # anomaly_id, recipient, reason
    summary: Report | None = None  # every new incident in one report (what the job notebook shows)
    delivery: mail.DeliveryReport | None = None

    def _repr_html_(self) -> str:
        if not self.emails:
            note = (
                f" ({len(self.suppressed)} suppressed until their series re-arms)" if self.suppressed else ""
            )
            return f"<p><b>No new incidents</b>: nothing was emailed{note}.</p>"
        rows = "".join(
            f"<li>#{e['outbox_id']} to {', '.join(e['recipients'])}: {esc(e['subject'])}</li>"
            for e in self.emails
        )
        return f"<p><b>{len(self.emails)} alert email(s) queued</b></p><ul>{rows}</ul>" + (
            self.summary._repr_html_() if self.summary else ""
        )


_NEW = """
select * from ops.anomalies
 where status = 'open'
   and (snoozed_until is null or snoozed_until <= %(now)s)
   and (%(kpis)s::text[] is null or kpi = any(%(kpis)s))
   and (%(since)s::timestamptz is null or started_at >= %(since)s)
 order by started_at, id
"""

_FIRING = """
select distinct on (n.series_key, n.recipient) n.series_key, n.recipient, n.anomaly_id, n.notified_at
  from ops.alert_notifications n join ops.anomalies a on a.id = n.anomaly_id
 where a.status <> 'resolved' and n.series_key = any(%s)
 order by n.series_key, n.recipient, n.notified_at desc
"""


class _Readers:
    """Recipients who are dashboard users (their ``email`` in users.yml) get only the incidents
    their roles let them read: a Europe manager, Europe's; a viewer, none on a masked KPI."""

    def __init__(self) -> None:
        self._users: dict[str, auth.User | None] = {}

    def may_read(self, recipient: str, incident: Mapping[str, Any]) -> bool:
        from email.utils import parseaddr

        address = parseaddr(recipient)[1].lower()
        if address not in self._users:
            self._users[address] = auth.user_by_email(address)
        who = self._users[address]
        if who is None:
            return True  # an address, not a user: routing alone decides
        _, rows = alert_access([incident])
        return who.may_read([str(incident["kpi"])], RowScope.of(rows) if rows else None)


def notify_new_incidents(
    routes: str | Path | Mapping[str, Any] | Routing | None = None,
    *,
    kpis: Sequence[str] | None = None,
    since: Any = None,
    provenance: Mapping[str, Any] | None = None,
    deliver: bool = False,
    max_charts: int = MAX_CHARTS,
    now: datetime | None = None,
) -> AlertResult:
    """Queue one email per group of recipients about the incidents they have not heard of yet.

    ``kpis``/``since`` narrow which incidents count (``since``: started at or after). ``provenance``
    (e.g. :func:`kpi_lib.jobs.provenance`) goes into every email. ``deliver=True`` also runs one
    outbox pass, so the email leaves now instead of at the worker's next poll. Nothing new: no email.
    A snoozed incident (or one held by its alert rule's quiet hours) waits until ``snoozed_until``;
    ``now`` (aware, default the database's clock) decides that and the cooldowns.
    """
    routing = load_routing(routes)
    since_ts = pd.Timestamp(since) if since is not None else None
    if since_ts is not None and since_ts.tzinfo is None:
        since_ts = since_ts.tz_localize(_tz())
    charts = _Charts()
    result = AlertResult(incidents=pd.DataFrame(columns=list(INCIDENT_COLUMNS)))
    with warehouse.connect_raw() as conn:
        conn.execute("select pg_advisory_xact_lock(hashtext('kpi_lib.alerts'))")
        now = now or conn.execute("select now()").fetchone()[0]
        with conn.cursor(row_factory=dict_row) as cur:
            new = cur.execute(
                _NEW,
                {
                    "kpis": list(kpis) if kpis else None,
                    "since": since_ts.to_pydatetime() if since_ts is not None else None,
                    "now": now,
                },
            ).fetchall()
        if not new:
            conn.commit()
            log.info("alerts: no open incidents to consider")
            return result
        ids = [i["id"] for i in new]
        notified = set(
            conn.execute(
                "select anomaly_id, recipient from ops.alert_notifications where anomaly_id = any(%s)", [ids]
            ).fetchall()
        )
        firing = {
            (k, r): (a, at) for k, r, a, at in conn.execute(_FIRING, [list({i["series_key"] for i in new})])
        }
        plan: dict[str, list[dict]] = {}
        readers = _Readers()
        for inc in new:
            for rcpt, cooldown in routing.recipients_for(inc).items():
                if (inc["id"], rcpt) in notified:
                    continue
                if not readers.may_read(rcpt, inc):  # a user's address: their roles and rows decide
                    result.suppressed.append(
                        {
                            "anomaly_id": inc["id"],
                            "recipient": rcpt,
                            "reason": f"{rcpt} belongs to a user whose role or rows do not cover this incident",
                        }
                    )
                    continue
                fired = firing.get((inc["series_key"], rcpt))
                if fired and fired[0] != inc["id"] and now - fired[1] < cooldown:
                    result.suppressed.append(
                        {
                            "anomaly_id": inc["id"],
                            "recipient": rcpt,
                            "reason": f"incident #{fired[0]} on {inc['series_key']} was emailed at "
                            f"{_when(fired[1])} and is not resolved (cooldown {cooldown})",
                        }
                    )
                    continue
                plan.setdefault(rcpt, []).append(inc)
                firing[(inc["series_key"], rcpt)] = (inc["id"], now)
        groups: dict[tuple[int, ...], list[str]] = {}
        for rcpt, items in plan.items():
            groups.setdefault(tuple(sorted(i["id"] for i in items)), []).append(rcpt)
        by_id = {i["id"]: i for i in new}
        for key, rcpts in sorted(groups.items()):
            items = [by_id[i] for i in key]
            email = build_alert_email(items, rcpts, provenance, charts, max_charts)
            dedup = "alert:" + hashlib.sha1(repr((key, sorted(rcpts))).encode()).hexdigest()
            outbox_id = mail.enqueue(email, dedup, conn=conn)
            with conn.cursor() as cur:
                cur.executemany(
                    "insert into ops.alert_notifications (anomaly_id, series_key, recipient, outbox_id)"
                    " values (%s, %s, %s, %s) on conflict (anomaly_id, recipient) do nothing",
                    [(i["id"], i["series_key"], r, outbox_id) for i in items for r in rcpts],
                )
            result.emails.append(
                {
                    "outbox_id": outbox_id,
                    "recipients": rcpts,
                    "subject": email.subject,
                    "incidents": list(key),
                }
            )
        conn.commit()
    emailed = sorted({i for e in result.emails for i in e["incidents"]})
    if emailed:
        items = [by_id[i] for i in emailed]
        result.incidents = pd.DataFrame([{c: i.get(c) for c in INCIDENT_COLUMNS} for i in _order(items)])
        result.summary = alert_report(items, provenance, charts, max_charts)[0]
    log.info(
        "alerts: %d email(s) for %d incident(s), %d suppressed",
        len(result.emails),
        len(emailed),
        len(result.suppressed),
    )
    if deliver and result.emails:
        result.delivery = mail.deliver_pending()
    return result


# --- alerts from the live stream --------------------------------------------------------------

IDLE_SCAN_S = 10.0
MIN_SCAN_INTERVAL_S = 1.0
#: A minute scan is ~80 series of ADTK detection (0.6-1 s of CPU); back to back on a busy stream
#: it took a whole core from the dashboards. Scans start far enough apart to use at most this
#: share of one core; changes in between are folded into the next scan (alerts stay within ~3 s).
SCAN_CPU_SHARE = 0.25
MAX_SCAN_INTERVAL_S = (
    5.0  # ... but alerts come first: a slow scan (the first imports the engine) waits no longer
)


def listen(
    grains: Sequence[str] = ("minute", "hour"),
    routes: str | Path | Mapping[str, Any] | Routing | None = None,
    stop: threading.Event | None = None,
    warmup_s: float | None = None,
    on_scan: Any = None,
) -> None:
    """On every data change, scan the KPIs kept per minute and e-mail new incidents at once.

    Hour grain is scanned once per closed hour. ``warmup_s`` (default ``KPI_ALERT_WARMUP_S`` or
    300) ignores minute incidents that start in the listener's first minutes: when a live stream
    starts, the jump from yesterday's level is not news. ``on_scan(result)`` observes each scan.
    """
    from . import kpis as semantic
    from . import stream

    stop = stop or threading.Event()
    warmup = float(os.environ.get("KPI_ALERT_WARMUP_S", 300) if warmup_s is None else warmup_s)
    live = [
        k.name
        for k in semantic.definitions().values()
        if any("minute" in semantic.facts()[f].grains for f in k.facts)
    ]
    changed = threading.Event()
    sub = stream.subscribe(lambda c: changed.set() if c.kind not in ("rejects",) else None)
    started = semantic.local_now()
    last_hour: Any = None
    log.info("alert listener: minute scans of %s, warm-up %.0fs", ", ".join(live), warmup)
    last_scan = next_scan = 0.0
    try:
        while not stop.is_set():
            # scan on every change, and every few seconds anyway: a minute that closes quietly
            # (an outage sends no events) must be looked at too
            if not changed.wait(1.0) and time.monotonic() - last_scan < IDLE_SCAN_S:
                continue
            if stop.wait(max(0.0, next_scan - time.monotonic())):
                break
            changed.clear()
            last_scan = time.monotonic()
            try:
                last_hour = _listen_once(grains, routes, live, started, warmup, last_hour, on_scan)
            except Exception:  # keep listening: one bad scan or a mail hiccup must not stop alerts
                log.exception("alert listener: scan or notification failed; retrying on the next change")
            took = time.monotonic() - last_scan
            next_scan = last_scan + min(max(MIN_SCAN_INTERVAL_S, took / SCAN_CPU_SHARE), MAX_SCAN_INTERVAL_S)
    finally:
        sub.close()


def _listen_once(grains, routes, live, started, warmup, last_hour, on_scan):
    """One listener pass: scan what changed, e-mail what is new. Returns the last hour scanned."""
    from . import kpis as semantic
    from .anomaly.scan import scan

    now = semantic.local_now()
    found: list[int] = []
    scales = thresholds.budget_scales()  # sensitivity set on the "Alert rules" page, read each pass
    if "minute" in grains:
        since = max(now - timedelta(minutes=10), started + timedelta(seconds=warmup))
        if since < now:
            res = scan(
                live, since=since, grains=("minute",), include_partial=True, now=now, budget_scale=scales
            )
            found += res.new_ids
            if on_scan:
                on_scan(res)
    hour = semantic.floor_period(now, "hour")
    if "hour" in grains and hour != last_hour:
        # hours that began before the warm-up ended are not news either (a stream starting up)
        since = max(
            hour - timedelta(hours=2), semantic.next_period(started + timedelta(seconds=warmup), "hour")
        )
        res = scan(since=since, grains=("hour",), now=now, budget_scale=scales) if since < hour else None
        last_hour = hour
        if res is not None:
            found += res.new_ids
            if on_scan:
                on_scan(res)
    # alert rules, re-read on every pass (an edit on the page applies at the next one); their
    # incidents start at a period's beginning (a day rule's at midnight), so the e-mail window
    # reaches back to them, and to incidents whose snooze or quiet hours just ended
    fired = thresholds.run(now=now)
    starts = [_local(t) for t in thresholds.released(now)] + [now - timedelta(hours=3)]
    if fired.new_ids:
        found += fired.new_ids
        starts += [_local(t) for t in fired.starts]
    if found or len(starts) > 1:
        out = notify_new_incidents(
            routes,
            since=min(starts),
            deliver=True,
            provenance={
                "job": "live alert listener (kpi alerts listen)",
                "trigger": "stream",
                "host": socket.gethostname(),
                "pid": os.getpid(),
            },
        )
        log.info("alert listener: %d new incidents, %d e-mails", len(found), len(out.emails))
    return last_hour
