"""The daily executive digest: KPIs against the previous day/week and last year, top movers by
dimension, open incidents and a few charts, as one HTML email (``schedules/daily_report.ipynb``).

Every number comes from :func:`kpi_lib.kpis.query`, so the digest agrees with the dashboards, and
the queries' catalog entries and SQL are listed in its provenance section.

    >>> from kpi_lib.mail import digest
    >>> d = digest.daily_digest()              # yesterday, in the business time zone   # doctest: +SKIP
    >>> d.kpis                                 # the KPI table as a DataFrame
    >>> d.send(["exec@example.com"], dedup_key="report:daily:2025-03-01")               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from .. import incidents as incident_store
from .. import kpis as kpi_layer
from ..config import settings
from ..mail.compose import Email
from ..mail.outbox import deliver_pending, enqueue
from .report import BLOCKS, Report, badge, signed_pct

log = logging.getLogger(__name__)

DEFAULT_KPIS = ("revenue", "orders", "aov", "customers", "gross_margin")


@dataclass
class Digest:
    """The digest's content: ``report`` is the email; the frames are there for notebooks and tests."""

    day: date
    report: Report
    subject: str
    kpis: pd.DataFrame
    movers: pd.DataFrame
    incidents: pd.DataFrame
    queries: list[dict[str, Any]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def email(self, recipients: Sequence[str]) -> Email:
        # it shows every KPI's numbers, movers and open incidents: readable by full access only
        return self.report.to_email(self.subject, list(recipients), kind="report", provenance=self.provenance)

    def send(self, recipients: Sequence[str], dedup_key: str | None = None, deliver: bool = True) -> int:
        """Queue the digest (once per ``dedup_key``) and, with ``deliver``, send it now; returns the outbox id."""
        key = (
            dedup_key
            or f"report:digest:{self.day}:{self.provenance.get('run_id') or datetime.now().isoformat()}"
        )
        outbox_id = enqueue(self.email(recipients), key)
        if deliver:
            deliver_pending()
        return outbox_id

    def _repr_html_(self) -> str:
        return self.report._repr_html_()


def _pct(change: float | None) -> str:
    if change is None or (isinstance(change, float) and not math.isfinite(change)):
        return "–"
    return signed_pct(change * 100)


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def daily_digest(
    day: str | date | None = None,
    kpis: Sequence[str] = DEFAULT_KPIS,
    movers_kpi: str = "revenue",
    movers_by: Sequence[str] = ("region", "channel", "category"),
    top_n: int = 3,
    provenance: Mapping[str, Any] | None = None,
    chart_days: int = 56,
    as_of: Any = None,
) -> Digest:
    """Build the digest for ``day`` (default: the last whole day before the as-of, see
    :func:`kpi_lib.kpis.as_of`: yesterday on live data, the day before an export ends on old data)."""
    when = kpi_layer.as_of(as_of)
    d = pd.Timestamp(day).date() if day else when.at.date() - timedelta(days=1)
    d0 = datetime.combine(d, datetime.min.time())
    d1, w0 = d0 + timedelta(days=1), d0 - timedelta(days=6)
    queries: list[dict[str, Any]] = []

    def q(*args, **kwargs):
        r = kpi_layer.query(*args, **kwargs)
        queries.append(r.provenance())
        return r

    rows = []
    for name in kpis:
        k = kpi_layer.get(name)
        day_r = q(name, "total", start=d0, end=d1, compare="previous_period")
        yoy = q(name, "total", start=d0, end=d1, compare="previous_year")
        week = q(name, "total", start=w0, end=d1, compare="previous_period")
        rows.append(
            {
                "kpi": name,
                "KPI": k.label,
                "day": _num(day_r.value),
                "vs previous day": day_r.change,
                "vs last year": yoy.change,
                "last 7 days": _num(week.value),
                "vs prior 7 days": week.change,
                "_fmt": k.format_compact,
                "_up": k.up_is_good,
            }
        )
    table = pd.DataFrame(rows)

    mk = kpi_layer.get(movers_kpi)
    movers = []
    for dim in movers_by:
        if dim not in mk.dimensions:
            continue
        df = q(movers_kpi, "total", start=w0, end=d1, by=[dim], compare="previous_period").df
        if df.empty:
            continue
        df = df.assign(delta=df["value"] - df["previous"].fillna(0.0))
        for _, r in df.reindex(df["delta"].abs().sort_values(ascending=False).index).head(top_n).iterrows():
            movers.append(
                {
                    "dimension": dim,
                    "value": r[dim],
                    "last 7 days": float(r["value"]),
                    "prior 7 days": _num(r["previous"]),
                    "delta": float(r["delta"]),
                    "change": _num(r["change"]),
                }
            )
    movers_df = pd.DataFrame(
        movers, columns=["dimension", "value", "last 7 days", "prior 7 days", "delta", "change"]
    )
    open_inc = incident_store.listing(status=("open", "acknowledged"), limit=50)

    head = table.iloc[0] if len(table) else None
    subject = f"[KPI report] {d:%a %d %b %Y}"
    if head is not None:
        subject += (
            f": {head['KPI']} {head['_fmt'](head['day'])} ({_pct(head['vs previous day'])} vs previous day)"
        )
    report = Report(
        f"Daily KPI report · {d:%A %d %B %Y}",
        f"The day's numbers against the day before, the same day last year and the past week "
        f"(times in {settings().timezone}; {when.describe()}).",
    )
    report.heading("Key numbers")

    shown = pd.DataFrame(
        {
            "KPI": table["KPI"],
            "day": [r["_fmt"](r["day"]) for _, r in table.iterrows()],
            "vs previous day": [_arrow(r["vs previous day"], r["_up"]) for _, r in table.iterrows()],
            "vs last year": [_arrow(r["vs last year"], r["_up"]) for _, r in table.iterrows()],
            "last 7 days": [r["_fmt"](r["last 7 days"]) for _, r in table.iterrows()],
            "vs prior 7 days": [_arrow(r["vs prior 7 days"], r["_up"]) for _, r in table.iterrows()],
        }
    )
    report.table(shown, html_columns=("vs previous day", "vs last year", "vs prior 7 days"))

    report.heading(f"Top movers: {mk.label.lower()}, last 7 days vs the 7 before")
    if movers_df.empty:
        report.paragraph("No breakdown data for this week.", muted=True)
    else:
        report.table(
            movers_df,
            formats={
                "last 7 days": mk.format_compact,
                "prior 7 days": mk.format_compact,
                "delta": lambda v: ("+" if v > 0 else "−" if v < 0 else "") + mk.format_compact(abs(v)),
                "change": _pct,
            },
        )

    report.heading("Charts")
    trend = q(movers_kpi, "day", start=d1 - timedelta(days=chart_days), end=d1, compare="previous_year")
    report.figure(
        _trend_chart(trend, mk), f"{movers_kpi}-trend", f"{mk.label}, last {chart_days} days vs last year"
    )
    if "region" in mk.dimensions:
        regions = q(movers_kpi, "day", start=d1 - timedelta(days=28), end=d1, by=["region"])
        report.figure(
            _by_chart(regions, mk, "region"), f"{movers_kpi}-by-region", f"{mk.label} by region, last 28 days"
        )

    report.heading(f"Open incidents ({len(open_inc)})")
    if open_inc.empty:
        report.paragraph("None: no open or acknowledged incidents.", muted=True)
    else:
        inc = pd.DataFrame(
            {
                "#": open_inc["id"],
                "series": [incident_store.series_label(r) for r in open_inc.to_dict("records")],
                "severity": [badge(s) for s in open_inc["severity"]],
                "status": open_inc["status"],
                "started": [f"{incident_store.local_time(t):%Y-%m-%d %H:%M}" for t in open_inc["started_at"]],
                "what happened": open_inc["explanation"],
            }
        )
        report.table(inc, html_columns=("severity",), max_rows=15)

    prov = dict(provenance or {})
    prov.setdefault("source", "kpi_lib.reports.digest.daily_digest")
    prov["report_date"] = d.isoformat()
    prov["as_of"] = f"{when.at.isoformat(timespec='seconds')} ({when.source})"
    prov["queries"] = _distinct_queries(queries)
    report.provenance(prov)
    table = table.drop(columns=["_fmt", "_up"])
    return Digest(d, report, subject, table, movers_df, open_inc, queries, prov)


def _arrow(change: float | None, up_is_good: bool) -> str:
    if change is None or (isinstance(change, float) and not math.isfinite(change)):
        return "–"
    good = (change > 0) == up_is_good
    color = "#1a7f37" if good else "#c0392b"
    if abs(change) < 0.005:
        color = "#57606a"
    return str(BLOCKS.change_arrow(color, "▲" if change > 0 else "▼" if change < 0 else "", _pct(change)))


def _distinct_queries(queries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per distinct SQL text (the digest runs the same shape for many KPIs and days)."""
    seen: dict[str, dict[str, Any]] = {}
    for qp in queries:
        key = qp.get("sql") or ""
        if key in seen:
            if qp["kpi"] not in seen[key]["kpi"].split(", "):
                seen[key]["kpi"] += f", {qp['kpi']}"
            continue
        seen[key] = dict(qp)
    return list(seen.values())


def _trend_chart(result, k):
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    df = result.df
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(df["period"], df["value"], color="#2c3e50", linewidth=1.3, label="this year")
    if "previous" in df and df["previous"].fillna(0).abs().sum() > 0:  # all zeros: no data a year ago
        ax.plot(
            df["period"], df["previous"], color="#95a5a6", linewidth=1.0, linestyle="--", label="last year"
        )
    ax.set_title(f"{k.label} per day", fontsize=10, loc="left")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: k.format_compact(v)))
    loc = AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="x-small", frameon=False)
    return fig


def _by_chart(result, k, dim: str):
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    df = result.df
    fig = Figure(figsize=(8, 2.8), layout="constrained")
    ax = fig.add_subplot()
    if not df.empty:
        for value, g in df.groupby(dim):
            ax.plot(g["period"], g["value"], linewidth=1.1, label=str(value))
    ax.set_title(f"{k.label} per day by {dim}", fontsize=10, loc="left")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: k.format_compact(v)))
    loc = AutoDateLocator()
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(loc))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="x-small", frameon=False, ncols=3)
    return fig
