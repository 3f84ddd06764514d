"""Reading the incident store (ops.anomalies) for dashboards and reports.

Reads go through :func:`kpi_lib.warehouse.read`: a reader sees the incidents of its own rows only
(a Europe manager: Europe's, not the KPI's as a whole, see 014_row_security.sql)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from . import warehouse


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
    with warehouse.read() as conn:
        cur = conn.exec_driver_sql(sql, tuple(params))
        return pd.DataFrame(cur.fetchall(), columns=list(cur.keys()))
