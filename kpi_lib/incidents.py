"""Reading the incident store (ops.anomalies) for dashboards and reports."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from . import warehouse


def open_counts() -> dict[str, int]:
    """Open (not yet resolved) incidents per KPI."""
    with warehouse.connect_raw(autocommit=True) as conn:
        rows = conn.execute(
            "select kpi, count(*) from ops.anomalies where status <> 'resolved' group by kpi"
        ).fetchall()
    return {k: int(n) for k, n in rows}


def recent(
    kpi: str | None = None, since: datetime | None = None, status: str | None = None, limit: int = 500
) -> pd.DataFrame:
    """Incidents, newest first, optionally for one KPI, since a time, or with one status."""
    sql = (
        "select id, kpi, grain, dimension, dim_value, started_at, peak_at, ended_at, value, expected, "
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
    with warehouse.connect_raw(autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
