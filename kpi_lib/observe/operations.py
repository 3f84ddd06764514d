"""What the Operations page shows, read from the warehouse: real users' page timings, adoption
(active sessions, daily active users, most-viewed KPIs) and the health score's service levels."""

from __future__ import annotations

from typing import Any

from .. import cache, warehouse
from . import health


def _rows(conn, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, params)
    names = [d.name for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def overview() -> dict[str, Any]:
    with warehouse.connect_raw(autocommit=True) as conn:
        hourly = _rows(
            conn,
            # a dashboard's time is until a person could use it (its load event comes long before)
            "select date_trunc('hour', at) as hour, count(*) as n,"
            f" percentile_cont(0.5) within group (order by {health.READY_MS}) as p50,"
            f" percentile_cont(0.95) within group (order by {health.READY_MS}) as p95"
            " from ops.page_loads where at > now() - interval '24 hours' group by 1 order by 1",
        )
        recent = _rows(
            conn,
            "select at, login, page, ttfb_ms, load_ms, painted_ms, usable_ms from ops.page_loads"
            " order by at desc limit 20",
        )
        sessions = conn.execute(
            "select count(*) from ops.sessions where revoked_at is null and expires_at > now()"
            " and last_seen_at > now() - interval '15 minutes'"
        ).fetchone()[0]
        daily = _rows(
            conn,
            "select (at at time zone ops.business_tz())::date as day, count(distinct actor) as users"
            " from ops.audit_log where at > now() - interval '7 days'"
            " and action in ('sign-in', 'view', 'api query', 'ask', 'query') group by 1 order by 1",
        )
        viewed = _rows(
            conn,
            "select target as kpi, count(*) as n from ops.audit_log where at > now() - interval '7 days'"
            " and action in ('api query', 'query') group by 1 order by 2 desc limit 10",
        )
        slowest = _rows(
            conn,
            "select at, actor, target as kpi, details->>'grain' as grain, details->>'cache_level' as level,"
            " (details->>'elapsed_ms')::float8 as ms from ops.audit_log"
            " where action = 'api query' and at > now() - interval '24 hours' and details ? 'elapsed_ms'"
            " order by (details->>'elapsed_ms')::float8 desc limit 10",
        )
        query_hourly = _rows(
            conn,
            "select date_trunc('hour', at) as hour, count(*) as n,"
            " percentile_cont(0.5) within group (order by (details->>'elapsed_ms')::float8) as p50,"
            " percentile_cont(0.95) within group (order by (details->>'elapsed_ms')::float8) as p95"
            " from ops.audit_log where action = 'api query' and details ? 'elapsed_ms'"
            " and at > now() - interval '24 hours' group by 1 order by 1",
        )
        fresh_hourly = _rows(
            conn,
            "select date_trunc('hour', committed_at) as hour, count(*) as n,"
            " percentile_cont(0.5) within group (order by extract(epoch from committed_at - touched_to) * 1000) as p50,"
            " percentile_cont(0.95) within group (order by extract(epoch from committed_at - touched_to) * 1000) as p95"
            " from ops.batches where kind = 'ingest' and committed_at > now() - interval '24 hours'"
            " and touched_to > committed_at - interval '1 hour' group by 1 order by 1",
        )
    levels = health.score()
    return {
        "health": levels,
        "hourly": hourly,
        "recent": recent,
        "active_sessions": sessions,
        "daily_users": daily,
        "most_viewed": viewed,
        "cache": cache.shared_stats(),
        "slowest": slowest,
        "charts": {
            "page loads (until usable where the page says)": polyline(hourly),
            "freshness (live event -> in gold)": polyline(fresh_hourly),
            "API query time": polyline(query_hourly),
        },
    }


def polyline(hourly: list[dict[str, Any]], width: int = 600, height: int = 120) -> dict[str, str]:
    """SVG points for p50 and p95 page load over the last 24 hours (no script: the page's policy)."""
    if not hourly:
        return {"p50": "", "p95": "", "max": "0"}
    top = max(float(r["p95"] or 0) for r in hourly) or 1.0
    step = width / max(1, len(hourly) - 1)

    def points(key: str) -> str:
        return " ".join(
            f"{i * step:.1f},{height - float(r[key] or 0) / top * (height - 10):.1f}"
            for i, r in enumerate(hourly)
        )

    return {"p50": points("p50"), "p95": points("p95"), "max": f"{top:.0f}"}
