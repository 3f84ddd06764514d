"""What `kpi status` shows: server, rows per layer, data freshness, view lag and cache counters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import cache, gold, replicas, warehouse
from .config import settings

TABLES = [
    ("bronze", "bronze.events"),
    ("bronze", "bronze.rejects"),
    ("bronze", "bronze.file_loads"),
    ("silver", "silver.orders"),
    ("silver", "silver.order_lines"),
    ("silver", "silver.customers"),
    ("silver", "silver.products"),
    ("gold", "gold.sales_hourly"),
    ("gold", "gold.category_hourly"),
    ("gold", "gold.customer_hourly"),
    ("gold", "gold.sales_minute"),
    ("gold", "gold.sales_daily"),
    ("gold", "gold.category_daily"),
    ("gold", "gold.product_daily"),
    ("gold", "gold.customer_returns"),
    ("gold", "gold.customer_rfm"),
]


def _rejects(conn) -> dict[str, Any]:
    """Rejected rows: all of them (bronze is append-only, so a file loaded again keeps its earlier
    loads' rejects), and what the latest load of each file rejected, which is what is still wrong."""
    total = conn.execute("select count(*) from bronze.rejects").fetchone()[0]
    files = conn.execute(
        "select distinct on (path) path, loaded_at, rows_in, rejected from bronze.file_loads"
        " order by path, id desc"
    ).fetchall()
    return {
        "total": int(total),
        "latest_loads": [
            {"file": Path(p).name, "loaded_at": at, "rows": int(n), "rejected": int(r)}
            for p, at, n, r in files
        ],
    }


def status() -> dict[str, Any]:
    srv = warehouse.status()
    info: dict[str, Any] = {
        "server": {"running": srv.running, "url": srv.url, "version": srv.version, "embedded": srv.embedded}
    }
    if not srv.running:
        return info
    with warehouse.connect_raw(autocommit=True) as conn:
        # Exact counts for small tables, planner estimates for the big ones (count(*) on 10 M rows is slow).
        rows = []
        for layer, table in TABLES:
            est = conn.execute(
                "select reltuples::bigint from pg_class where oid = to_regclass(%s)", [table]
            ).fetchone()
            n = est[0] if est else None
            if n is None or n < 2_000_000:
                n = conn.execute(f"select count(*) from {table}").fetchone()[0]
            rows.append({"layer": layer, "table": table, "rows": int(n)})
        info["tables"] = rows
        version, last_at, last_kind = conn.execute(
            "select version, committed_at, kind from ops.batches order by version desc limit 1"
        ).fetchone() or (0, None, None)
        latest = conn.execute("select max(ordered_at) from silver.orders").fetchone()[0]
        info["freshness"] = {
            "version": version,
            "latest_order": latest,
            "last_change": last_at,
            "last_change_kind": last_kind,
            "timezone": settings().timezone,
        }
        info["rejects"] = _rejects(conn)
        views = [
            {
                "name": mv,
                "refreshed_at": lag["refreshed_at"],
                "refresh_ms": lag["refresh_ms"],
                "behind_versions": lag["behind"],
                # of those, the changes to days older than yesterday (the refresher's to do)
                "owed_versions": lag["owed"],
            }
            for mv, lag in gold.view_lag(conn).items()
        ]
        info["views"] = views
        # the fast path's landings not yet moved to silver and gold (acknowledged, not yet on a page)
        waiting = (0, 0, None)
        if conn.execute("select to_regclass('bronze.landings')").fetchone()[0]:  # migrated (kpi init)
            waiting = conn.execute(
                "select count(*), coalesce(sum(events), 0), min(landed_at) from bronze.landings"
                " where moved_at is null"
            ).fetchone()
        mover = None
        if conn.execute("select to_regclass('bronze.landings')").fetchone()[0]:
            from .stream.move import leader_status

            mover = leader_status(conn)
        info["landings"] = {
            "waiting": waiting[0],
            "events": int(waiting[1]),
            "oldest": waiting[2],
            "mover": mover,  # the standing mover that leads (kpi serve, kpi move), or None
        }
    c = cache.shared_stats()
    c["redis"] = settings().redis_url
    info["cache"] = c
    info["replicas"] = replicas.status()
    return info
