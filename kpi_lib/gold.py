"""Keeping gold current: hourly rollups after each change, materialized views after that.

The hourly tables (``gold.sales_hourly`` and friends) are recomputed for exactly the hours a change
touched, inside the writer's transaction, so they are never stale. The materialized views (daily
rollups, products, RFM) are refreshed afterwards, concurrently so readers never wait; each records
the data version it reflects in ``ops.mv_state`` and the query layer reads it only for days no later
change has touched.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import psycopg

from . import warehouse
from .config import settings

log = logging.getLogger(__name__)

# Refresh order matters: the daily views read the hourly tables, RFM reads silver.
MATERIALIZED_VIEWS = (
    "gold.sales_daily",
    "gold.category_daily",
    "gold.product_daily",
    "gold.customer_returns",
    "gold.customer_rfm",
)


def stored(view: str) -> str:
    """Where a gold materialized view's rows live: gold.<name> is the row-scoped view over
    gold_store.<name> (sql/005_gold_views.sql); the catalog, queries and ops.mv_state use gold.<name>."""
    return view.replace("gold.", "gold_store.", 1)


def refresh_range(conn: psycopg.Connection, first: datetime, last: datetime) -> int:
    """Recompute the hourly rollups for the hours holding ``first``..``last``; returns lines read."""
    return conn.execute("select gold.refresh_range(%s, %s)", [first, last]).fetchone()[0]


def current_version(conn: psycopg.Connection) -> int:
    return conn.execute("select coalesce(max(version), 0) from ops.batches").fetchone()[0]


def refresh_views(concurrently: bool = True, conn: psycopg.Connection | None = None) -> dict[str, int]:
    """Refresh every gold materialized view; returns milliseconds per view.

    With ``conn`` given, runs inside the caller's transaction (a full load does this so readers
    see old or new data, never a mix); otherwise each view refreshes in its own transaction.
    """
    timings: dict[str, int] = {}
    own = conn is None
    c = conn or warehouse.connect_raw(autocommit=True)
    try:
        # the customer_returns sorts spill to disk at 10 M order lines with less
        c.execute("set work_mem = '512MB'")
        for mv in MATERIALIZED_VIEWS:
            t0 = time.perf_counter()
            version = current_version(c)
            how = "concurrently " if concurrently else ""
            c.execute(f"refresh materialized view {how}{stored(mv)}")
            ms = int((time.perf_counter() - t0) * 1000)
            c.execute(
                "insert into ops.mv_state (mv_name, refreshed_version, refreshed_at, duration_ms) "
                "values (%s, %s, now(), %s) on conflict (mv_name) do update set "
                "refreshed_version = excluded.refreshed_version, refreshed_at = excluded.refreshed_at, "
                "duration_ms = excluded.duration_ms",
                [mv, version, ms],
            )
            timings[mv] = ms
            log.info("refreshed %s in %d ms (version %s)", mv, ms, version)
        c.execute("reset work_mem")
    finally:
        if own:
            c.close()
    return timings


def rebuild(conn: psycopg.Connection, kind: str = "rebuild", source: str | None = None) -> int:
    """Recompute every hourly rollup from silver and refresh the views; returns the new version."""
    first, last = conn.execute("select min(ordered_at), max(ordered_at) from silver.orders").fetchone()
    if first is not None:
        refresh_range(conn, first, last)
    version = conn.execute(
        "select ops.bump_version(%s, %s, %s, %s, %s, 0)",
        [kind, source, first, last, 0],
    ).fetchone()[0]
    refresh_views(concurrently=False, conn=conn)
    return version


def apply_timezone(tz: str | None = None) -> bool:
    """Make ``tz`` (default ``KPI_TIMEZONE``) the business time zone. When it changes on a warehouse
    with data, gold is rebuilt in the same transaction: hour and day boundaries moved."""
    with warehouse.connect_raw() as conn:
        changed = warehouse.set_timezone(conn, tz)
        if changed and conn.execute("select exists (select 1 from silver.orders)").fetchone()[0]:
            rebuild(conn, kind="timezone", source=tz or settings().timezone)
        conn.commit()
    return changed


def init() -> list[str]:
    """The warehouse ready to use: server, migrations, reader role, then the business time zone."""
    applied = warehouse.init()
    apply_timezone()
    return applied


REFRESH_LOCK = "kpi_lib.view_refresher"
KEEP_LIVE_DAYS = 2  # changes to only today and yesterday are read from base tables, not refreshed
# A batch of ops.batches the views owe a refresh for: it changed a day older than KEEP_LIVE_DAYS.
# Views go stale only for the days that later batches touched, and the planner reads base tables
# for those; so a stream filling today (and yesterday, late orders) is no reason to rebuild two
# years of views (nor is a view "behind" for it). Older days, or a day closing, are.
OWED_REFRESH = (
    "kind <> 'rejects' and touched_from < (date_trunc('day', now() at time zone ops.business_tz()) "
    f"- interval '{KEEP_LIVE_DAYS - 1} days') at time zone ops.business_tz()"
)


def view_lag(conn: psycopg.Connection) -> dict[str, dict]:
    """Each materialized view's last refresh and how far behind it is: every change since
    (``behind``) and, of those, the ones it owes a refresh for (``owed``, see OWED_REFRESH). One
    query; a view never refreshed counts every change."""
    rows = conn.execute(
        "select v.name, m.refreshed_at, m.duration_ms, count(b.version),"
        f" count(b.version) filter (where {OWED_REFRESH})"
        " from unnest(%s::text[]) v(name) left join ops.mv_state m on m.mv_name = v.name"
        " left join ops.batches b on b.version > coalesce(m.refreshed_version, 0)"
        " group by v.name, m.refreshed_at, m.duration_ms",
        [list(MATERIALIZED_VIEWS)],
    ).fetchall()
    found = {r[0]: {"refreshed_at": r[1], "refresh_ms": r[2], "behind": r[3], "owed": r[4]} for r in rows}
    return {mv: found[mv] for mv in MATERIALIZED_VIEWS}  # in refresh order


def refresh_views_if_behind() -> bool:
    """Refresh the materialized views if older days changed since their last refresh, unless another
    process is doing it (an advisory lock: one refresher in the cluster). True if this one did.

    A serving process runs this after changes, paced (``kpi serve``); queries stay exact meanwhile,
    as the planner reads base tables for the days a view does not cover yet."""
    with warehouse.connect_raw(autocommit=True) as conn:
        if not conn.execute("select pg_try_advisory_lock(hashtext(%s))", [REFRESH_LOCK]).fetchone()[0]:
            return False
        try:
            behind = conn.execute(
                "select count(*) from ops.batches where version > "
                f"(select coalesce(min(refreshed_version), 0) from ops.mv_state) and {OWED_REFRESH}"
            ).fetchone()[0]
            missing = (
                len(MATERIALIZED_VIEWS) - conn.execute("select count(*) from ops.mv_state").fetchone()[0]
            )
            if behind or missing:
                refresh_views(concurrently=True, conn=conn)
                return True
            return False
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", [REFRESH_LOCK])
