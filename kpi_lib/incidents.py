"""Reading the incident store (ops.anomalies) for dashboards and reports.

Reads go through :func:`kpi_lib.warehouse.read`: a reader sees the incidents of its own rows only
(a Europe manager: Europe's, not the KPI's as a whole, see 014_row_security.sql)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from . import kpis, warehouse
from .config import settings
from .errors import KpiError

#: how much of a series an incident's chart shows before the incident, and after it
CHART_CONTEXT = {
    "minute": (timedelta(hours=2), timedelta(minutes=20)),
    "hour": (timedelta(days=3), timedelta(days=1)),
    "day": (timedelta(days=60), timedelta(days=14)),
    "week": (timedelta(weeks=26), timedelta(weeks=4)),
    "month": (timedelta(days=730), timedelta(days=92)),
}
#: the columns of a stored band (``ops.anomalies.band``), beside its times
BAND = ("expected", "lower", "upper")


def chart_context(grain: str) -> tuple[timedelta, timedelta]:
    return CHART_CONTEXT.get(grain, CHART_CONTEXT["day"])


def band_frame(incident: Mapping[str, Any]) -> pd.DataFrame | None:
    """The incident's stored band (``ops.anomalies.band``: the expected value and usual range of
    each period its chart shows) as a frame indexed by naive business time, or None without one
    (incidents stored before bands were, and threshold rules, whose bound is one line). Read by id
    when the row came from :func:`listing`, which leaves bands out."""
    if "band" in incident:
        band = incident["band"]
    elif incident.get("id") is not None:
        with warehouse.read() as conn:  # row-level security applies, as to the listing
            row = conn.exec_driver_sql(
                "select band from ops.anomalies where id = %s", (int(incident["id"]),)
            ).fetchone()
        band = row[0] if row else None
    else:
        return None
    if not isinstance(band, Mapping) or not band.get("t"):  # None, or NaN from a frame
        return None
    t = pd.to_datetime(band["t"], utc=True).tz_convert(ZoneInfo(settings().timezone)).tz_localize(None)
    cols = {k: pd.to_numeric(pd.Series(band.get(k), dtype=object), errors="coerce").to_numpy() for k in BAND}
    return pd.DataFrame(cols, index=t)


def open_counts() -> dict[str, int]:
    """Open (not yet resolved) incidents per KPI."""
    with warehouse.read() as conn:
        rows = conn.exec_driver_sql(
            "select kpi, count(*) from ops.anomalies where status <> 'resolved' group by kpi"
        ).fetchall()
    return {k: int(n) for k, n in rows}


def recent(
    kpi: str | None = None, since: datetime | None = None, status: str | None = None, limit: int = 500
) -> pd.DataFrame:
    """Incidents, newest first, optionally for one KPI, since a time, or with one status."""
    sql, params = recent_sql(kpi, since, status, limit)
    with warehouse.read() as conn:
        cur = conn.exec_driver_sql(sql, tuple(params))
        return pd.DataFrame(cur.fetchall(), columns=list(cur.keys()))


def recent_sql(
    kpi: str | None = None, since: datetime | None = None, status: str | None = None, limit: int = 500
) -> tuple[str, list]:
    """The SQL :func:`recent` runs, and its bound parameters (Ask shows it as its source)."""
    sql = (
        "select id, series_key, kpi, grain, dimension, dim_value, started_at, peak_at, ended_at, value, expected, "
        "lower_bound, upper_bound, deviation_pct, severity, rule, explanation, drivers, status, "
        "acknowledged_by, acknowledged_at, resolved_by, resolved_at, comment from ops.anomalies where true"
    )
    params: list = []
    if kpi:
        sql += " and kpi = %s"
        params.append(kpi)
    if since is not None:
        sql += " and coalesce(ended_at, now()) >= %s"
        params.append(since)
    if status:
        sql += " and status = %s"
        params.append(status)
    sql += " order by started_at desc limit %s"
    params.append(limit)
    return sql, params


#: the columns :func:`listing` reads: every column but ``band`` (a chart's worth of numbers per
#: incident, read by :func:`band_frame` for the few incidents a page draws)
LISTED = (
    "id", "series_key", "kpi", "grain", "dimension", "dim_value", "started_at", "peak_at", "ended_at",
    "value", "expected", "lower_bound", "upper_bound", "deviation_pct", "score", "severity", "rule",
    "explanation", "drivers", "status", "detected_at", "updated_at", "acknowledged_by",
    "acknowledged_at", "resolved_by", "resolved_at", "comment", "snoozed_until",
)  # fmt: skip


def listing(
    status: Sequence[str] | None = ("open", "acknowledged"),
    kpis_: Sequence[str] | None = None,
    limit: int = 500,
) -> pd.DataFrame:
    """Incidents as a DataFrame, newest first (for dashboards, the digest and the CLI), as the
    current reader sees them (its row scope: see :mod:`kpi_lib.scope`)."""
    with warehouse.read() as conn:
        cur = conn.exec_driver_sql(
            f"select {', '.join(LISTED)} from ops.anomalies where (%(s)s::text[] is null or status = any(%(s)s))"
            " and (%(k)s::text[] is null or kpi = any(%(k)s)) order by started_at desc, id desc limit %(n)s",
            {"s": list(status) if status else None, "k": list(kpis_) if kpis_ else None, "n": limit},
        )
        return pd.DataFrame(cur.fetchall(), columns=list(cur.keys()))


def local_time(ts: Any) -> pd.Timestamp | None:
    """A timestamptz as naive business-time (what kpis.query and the charts use)."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)) or ts is pd.NaT:
        return None
    t = pd.Timestamp(ts)
    return t.tz_convert(ZoneInfo(settings().timezone)).tz_localize(None) if t.tzinfo else t


def series_label(incident: Mapping[str, Any]) -> str:
    """'Orders in Europe', 'Revenue via Web', 'Revenue' (KPI label from the catalog when it is known)."""
    try:
        label = kpis.get(incident["kpi"]).label
    except KpiError:
        label = str(incident["kpi"])
    dim, value = incident.get("dimension"), incident.get("dim_value")
    if not dim:
        return label
    return f"{label} {'via' if dim == 'channel' else 'in'} {value}"


#: how long after an incident's last stamp (start, peak or end) another may start and still be the
#: same event: the period that stamp opens, plus the time between the alarms of one event (the
#: rules that see a week-long outage alarm on its first, third and fourth day: a spike, a 3-day
#: shift, a run of zeros; and each incident ends where its rows return inside their band, often on
#: the day it began)
JOIN_GAP = {
    "minute": timedelta(minutes=1 + 15),
    "hour": timedelta(hours=1 + 3),
    "day": timedelta(days=1 + 3),
    "week": timedelta(weeks=1 + 1),
    "month": timedelta(days=31 + 31),
}
_RANK = {"low": 0, "medium": 1, "high": 2}


def _direction(incident: Mapping[str, Any]) -> int:
    value, expected = incident.get("value"), incident.get("expected")
    try:
        diff = float(value) - float(expected)
    except (TypeError, ValueError):
        return 0
    return 0 if not math.isfinite(diff) else (diff > 0) - (diff < 0)


def _instant(value: Any) -> pd.Timestamp | None:
    """A time to compare incidents by: UTC without its zone when it has one (no business-time
    conversion: this runs over a thousand incidents on each refresh of a page)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    t = pd.Timestamp(value)
    return t.tz_convert("UTC").tz_localize(None) if t.tzinfo else t


def _span(incident: Mapping[str, Any]) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """(its start, its last stamp)."""
    start = _instant(incident.get("started_at"))
    if start is None:
        return None
    stamps = [t for t in (_instant(incident.get(c)) for c in ("peak_at", "ended_at")) if t is not None]
    return start, max([start, *stamps])


def lead_first(group: Sequence[Mapping[str, Any]], kpi: str | None = None) -> list[Mapping[str, Any]]:
    """The incident that tells an event best first: the KPI asked about (``kpi``), the business as a
    whole before a slice, then the most severe, then the first to start (when it began), then the
    largest move."""

    def key(i: Mapping[str, Any]):
        dev = i.get("deviation_pct")
        size = abs(float(dev)) if dev is not None and math.isfinite(float(dev)) else 0.0
        start = _instant(i.get("started_at")) or pd.Timestamp.max
        rank = -_RANK.get(str(i.get("severity")), 0)
        other = kpi is not None and i.get("kpi") != kpi
        sliced = isinstance(i.get("dimension"), str) and bool(i.get("dimension"))  # NaN from a frame is none
        return (other, sliced, rank, start, -size, i.get("id") or 0)

    return sorted(group, key=key)


def events(
    items: Sequence[Mapping[str, Any]],
    kpi: str | None = None,
    masked: Callable[[str], bool] | None = None,
) -> list[list[Mapping[str, Any]]]:
    """Incidents grouped into the events behind them: a shop shut for a week drops its orders, its
    revenue and every country's and category's at once, and that is one thing to read about, not
    eight. Incidents are one event when they are at the same grain, move the same way (all above
    or all below what was expected) and overlap in time, or start within :data:`JOIN_GAP` of each
    other's end (chains count: A with B, B with C). An alert
    rule's incident stands alone: someone asked for that rule by name; so does one of a KPI the reader
    has ``masked`` (which way it moved is a value). Rows may come from a frame (NaN for missing). Each
    group starts with its lead (:func:`lead_first`, the ``kpi`` asked about first); groups keep the
    order of their leads in ``items``."""
    groups: list[list[Mapping[str, Any]]] = []
    joinable: dict[tuple[str, int], list[tuple[pd.Timestamp, pd.Timestamp, int]]] = {}
    for n, inc in enumerate(items):
        span, way = _span(inc), _direction(inc)
        alone = str(inc.get("series_key") or "").startswith("rule:") or bool(masked and masked(inc["kpi"]))
        if span is None or way == 0 or alone:
            groups.append([inc])  # joins nothing, and nothing joins it
        else:
            joinable.setdefault((str(inc.get("grain")), way), []).append((*span, n))
    for (grain, _), spans in joinable.items():  # one sweep per grain and direction, by start
        gap = JOIN_GAP.get(grain, JOIN_GAP["day"])
        current: list[Mapping[str, Any]] = []
        reach = pd.Timestamp.min
        for start, end, n in sorted(spans, key=lambda x: (x[0], x[2])):
            if current and start < reach + gap:
                current.append(items[n])
                reach = max(reach, end)
            else:
                if current:
                    groups.append(current)
                current, reach = [items[n]], end
        groups.append(current)
    order = {id(i): n for n, i in enumerate(items)}
    led = [lead_first(g, kpi) for g in groups]
    return sorted(led, key=lambda g: order[id(g[0])])


def lead_of(groups: Sequence[Sequence[Mapping[str, Any]]]) -> dict[int, int]:
    """Incident id -> the id of its event's lead (itself for a lead or an incident alone)."""
    return {int(i["id"]): int(g[0]["id"]) for g in groups for i in g}


def weightiest_first(groups: list[list[Mapping[str, Any]]]) -> list[list[Mapping[str, Any]]]:
    """Events the most severe first and, among equals, the widest (a week-long outage in every
    country before one slice's blip); otherwise in the order given."""
    return sorted(groups, key=lambda g: (min(-_RANK.get(str(i.get("severity")), 0) for i in g), -len(g)))
