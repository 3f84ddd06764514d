"""The alert e-mail: one per group of recipients, with a chart per incident, the incidents as a
table and CSV, and where each number came from. Built here; :mod:`kpi_lib.alerts` decides who gets
which incidents and queues the mail."""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from markupsafe import Markup

from .. import incidents as incident_store
from .. import mail, thresholds
from ..config import settings
from ..errors import KpiError
from .report import BLOCKS, SEVERITY_COLORS, Html, Report, badge, signed_pct

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


def business_tz() -> ZoneInfo:
    return ZoneInfo(settings().timezone)


_local = incident_store.local_time


def when_text(ts: Any) -> str:
    t = _local(ts)
    return "–" if t is None else f"{t:%Y-%m-%d %H:%M} {settings().timezone}"


series_label = incident_store.series_label


def _kpi(incident: Mapping[str, Any]):
    """The incident's KPI definition (None when the catalog no longer has it)."""
    from .. import kpis

    try:
        return kpis.get(incident["kpi"])
    except KpiError:
        return None


def _fmt(incident: Mapping[str, Any]):
    k = _kpi(incident)
    return k.format_compact if k else (lambda v: "–" if v is None else f"{v:,.4g}")


# --- charts -------------------------------------------------------------------------------------


def incident_chart(incident: Mapping[str, Any]):
    """(matplotlib Figure, kpis.QueryResult) of the incident's series with the incident marked.

    The series comes from :func:`kpi_lib.kpis.query`, so the chart shows what dashboards show, and the
    query's SQL and catalog entries go into the email's provenance.
    """
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from .. import kpis

    grain = incident["grain"] if incident["grain"] in incident_store.CHART_CONTEXT else "day"
    before, after = incident_store.CHART_CONTEXT[grain]
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
    band = incident_store.band_frame(incident)
    if band is not None:  # the usual range of every period shown, so the incident is seen leaving it
        band = (
            band[(band.index >= df["period"].min()) & (band.index <= df["period"].max())] if len(df) else band
        )
        ax.fill_between(
            band.index,
            band["lower"].to_numpy(dtype=float),
            band["upper"].to_numpy(dtype=float),
            color="#3498db",
            alpha=0.18,
            linewidth=0,
            step="mid",
            label="expected range",
        )
        ax.plot(
            band.index, band["expected"], color="#3498db", linestyle="--", linewidth=1.0, label="expected"
        )
    elif lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
        ax.fill_between(
            [start, span_end],
            [lo, lo],
            [hi, hi],
            color="#3498db",
            alpha=0.18,
            linewidth=0,
            label="expected range",
        )
    if band is None and exp is not None and math.isfinite(exp):
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


def change_text(incident: Mapping[str, Any], digits: int = 0) -> str:
    """'−94%'; '+R$12.4K' (the amount, in the KPI's currency) when nothing was expected, so there
    is no percent; '−4.2 pts' for a KPI that is itself a percentage (a margin at -39.5% against
    23.8% expected is not '−266%')."""
    pct, value, expected = incident.get("deviation_pct"), incident.get("value"), incident.get("expected")
    if (k := _kpi(incident)) and k.is_percent and value is not None and expected is not None:
        diff = (value - expected) * 100
        if math.isfinite(diff):
            return ("+" if diff > 0 else "−" if diff < 0 else "") + f"{abs(diff):.1f} pts"
    if (pct is None or not math.isfinite(pct)) and value is not None and expected is not None:
        diff = value - expected
        if math.isfinite(diff) and diff:
            return ("+" if diff > 0 else "−") + _fmt(incident)(abs(diff))
    return signed_pct(pct, digits)


def _headline(incident: Mapping[str, Any]) -> str:
    """'Orders in Europe −94%', 'Revenue in PR +R$12.4K'."""
    return f"{series_label(incident)} {change_text(incident)}"


def alert_subject(items: Sequence[Mapping[str, Any]], limit: int = 110) -> str:
    """'[KPI alert] 2 new incidents: Orders in Europe −94%, Revenue +40%' (cut with … when long);
    an event's related incidents are counted after its lead: 'Orders −100% (+7 at the same time)'."""
    n = len(items)
    heads = []
    for group in incident_store.weightiest_first(incident_store.events(items)):
        more = f" (+{len(group) - 1} at the same time)" if len(group) > 1 else ""
        heads.append(_headline(group[0]) + more)
    subject = f"[KPI alert] {n} new incident{'s' if n != 1 else ''}: " + ", ".join(heads)
    return subject if len(subject) <= limit else subject[: limit - 1].rstrip(", ") + "…"


def by_severity(items: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    def key(i):
        rank = SEVERITIES.index(i["severity"]) if i["severity"] in SEVERITIES else 0
        dev = i.get("deviation_pct")
        return (-rank, -(abs(dev) if dev is not None and math.isfinite(dev) else 0.0), i["id"])

    return sorted(items, key=key)


def _context(provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    prov = dict(provenance or {})
    prov.setdefault("source", "kpi_lib.alerts.notify_new_incidents")
    prov.setdefault("generated_at", datetime.now(business_tz()).isoformat(timespec="seconds"))
    prov.setdefault("host", socket.gethostname())
    return prov


class ChartCache:
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
    charts: ChartCache | None = None,
    max_charts: int = MAX_CHARTS,
) -> mail.Email:
    """One email about a batch of incidents: a section (explanation, expected band, severity, chart) per
    incident, a CSV of the rows, and the provenance."""
    report, prov = alert_report(items, provenance, charts, max_charts)
    kpis, rows = alert_access(items)
    return report.to_email(
        alert_subject(by_severity(items)),
        list(recipients),
        kind="alert",
        provenance=prov,
        kpis=kpis,
        rows=rows,
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
    return Html(str(BLOCKS.rule_link(url, name)), f"alert rule {name} ({url})")


def alert_report(
    items: Sequence[Mapping[str, Any]],
    provenance: Mapping[str, Any] | None = None,
    charts: ChartCache | None = None,
    max_charts: int = MAX_CHARTS,
) -> tuple[Report, dict[str, Any]]:
    """The alert email's content as a Report (it also renders in notebooks) and its provenance dict."""
    charts = charts or ChartCache()
    items = by_severity(items)
    groups = incident_store.weightiest_first(incident_store.events(items))
    lead_of = incident_store.lead_of(groups)  # each incident's event, by its lead
    grouped = len(groups) < len(items)
    prov = _context(provenance)
    n = len(items)
    report = Report(
        f"{n} new KPI incident{'s' if n != 1 else ''}"
        + (f" in {len(groups)} event{'s' if len(groups) != 1 else ''}" if grouped else ""),
        f"Detected by the anomaly rules and the alert rules; {'times in ' + settings().timezone}. "
        "Incident ids are in ops.anomalies."
        + (
            " Incidents at the same grain that moved the same way at the same time are one event:"
            " each event is told once, by its lead, with the others listed under it."
            if grouped
            else ""
        ),
    )
    ordered = [i for g in groups for i in g]
    overview = {
        "#": [i["id"] for i in ordered],
        "series": [series_label(i) for i in ordered],
        "severity": [badge(i["severity"]) for i in ordered],
        "change": [change_text(i) for i in ordered],
        "started": [when_text(i["started_at"]) for i in ordered],
    }
    if grouped:
        overview["event"] = [
            "" if lead_of[i["id"]] == i["id"] else f"with #{lead_of[i['id']]}" for i in ordered
        ]
    report.table(pd.DataFrame(overview), html_columns=("severity",))
    queries = []
    for pos, group in enumerate(groups):
        inc, related = group[0], group[1:]
        fmt = _fmt(inc)
        report.add(
            BLOCKS.incident_heading(inc["id"], _headline(inc), Markup(badge(inc["severity"]))),
            f"\n#{inc['id']} {_headline(inc)} [{inc['severity']}]",
        )
        report.paragraph(inc.get("explanation") or "")
        if related:
            n_rel = len(related)
            named = "; ".join(f"{_headline(r)} (#{r['id']}, {r['severity']})" for r in related[:5])
            report.paragraph(
                f"At the same time, {n_rel} more incident{'s' if n_rel != 1 else ''} of this event"
                f" (marked “with #{inc['id']}” in the table above): {named}"
                + (f" and {n_rel - 5} more." if n_rel > 5 else ".")
            )
        band = (
            f"{fmt(inc['expected'])} (range {fmt(inc['lower_bound'])}–{fmt(inc['upper_bound'])})"
            if inc.get("expected") is not None
            else "–"
        )
        report.facts(
            {
                "Value at peak": f"{fmt(inc.get('value'))} at {when_text(inc.get('peak_at') or inc['started_at'])}",
                "Expected": band,
                "Deviation": change_text(inc, 1),
                "Severity": Html(
                    badge(inc["severity"])
                    + (f" score {inc['score']:.1f}" if inc.get("score") is not None else ""),
                    f"{inc['severity']}"
                    + (f" (score {inc['score']:.1f})" if inc.get("score") is not None else ""),
                ),
                "Started": when_text(inc["started_at"]),
                "Ended": when_text(inc["ended_at"]) if inc.get("ended_at") else "ongoing",
                "Rule": _rule_fact(inc),
                "Drivers": inc.get("drivers"),
                "Series": inc["series_key"],
                "What to do": (
                    f"acknowledge or resolve {'them' if related else 'it'} on the incidents dashboard, or "
                    f"`kpi alerts ack {' '.join(str(i['id']) for i in group)}`"
                ),
            }
        )
        if pos < max_charts:
            part, q, err = charts.get(inc)
            if part is not None:
                report.inline.append(part)
                report.add(
                    BLOCKS.figure(part.content_id, series_label(inc), 640), f"[chart: {series_label(inc)}]"
                )
                queries.append({**q, "incident": inc["id"]})
            else:
                report.paragraph(f"(No chart: {err})", muted=True)
    if len(groups) > max_charts:
        report.paragraph(
            f"Charts for the first {max_charts} {'events' if grouped else 'incidents'} only;"
            f" all {n} incidents are in incidents.csv.",
            muted=True,
        )
    rows = pd.DataFrame(
        [{**{c: i.get(c) for c in INCIDENT_COLUMNS}, "event": lead_of[i["id"]]} for i in ordered],
        columns=[*INCIDENT_COLUMNS, "event"],
    )
    report.attach_csv(rows, "incidents.csv")
    prov["queries"] = [*prov.get("queries", []), *queries]
    prov["incidents"] = [i["id"] for i in items]
    report.provenance(prov)
    return report, prov
