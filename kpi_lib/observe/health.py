"""The health score (0-100), computed from named service levels, each measured against its target.

| service level | target | measured from |
|---|---|---|
| page load p95 | <= 2.0 s | real users' page timings (ops.page_loads), last 24 h: until the page was usable where it says (the dashboards), else its load event |
| freshness p95 | <= 1.0 s | live ingest batches: newest event -> committed in gold, last 24 h |
| query p95 | <= 0.1 s | the API's KPI queries (kpi_query_seconds, every process) |
| error rate | <= 1 % | front-door and API responses that were 5xx (kpi_http_request_seconds) |
| cache hit rate | >= 85 % | answers from L1/L2 over all answers, every process, last hour |
| alert latency p95 | <= 10 s | incident detected -> alert e-mail sent, last 24 h |
| view lag | <= 120 s | how long the oldest materialized view has waited for a refresh it owes (a change to a day before yesterday: today's and yesterday's are read from base tables, gold.OWED_REFRESH) |

A level that meets its target scores 1; one that misses scores less the further it misses (0 at
twice the target, or at half a "higher is better" target). The health score is the mean over the
levels that have data, times 100. Levels without data are listed and left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .. import cache, gold, warehouse
from . import metrics

#: a page's time in ops.page_loads: until a person could use it where the page says (the
#: dashboards), else its load event
READY_MS = "coalesce(usable_ms, load_ms)"


@dataclass
class Level:
    name: str
    label: str
    target: float
    unit: str  # s | ratio
    higher_is_better: bool = False
    measured: float | None = None

    @property
    def met(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.target if self.higher_is_better else self.measured <= self.target

    @property
    def score(self) -> float | None:
        if self.measured is None:
            return None
        if self.met:
            return 1.0
        if self.higher_is_better:
            return max(0.0, (self.measured - self.target / 2) / (self.target / 2))
        return max(0.0, 1 - (self.measured - self.target) / self.target)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met, "score": self.score}


def _quantile(family: str, q: float, where=lambda labels: True) -> float | None:
    """histogram_quantile over every process's buckets of ``family`` (linear within a bucket)."""
    buckets: dict[float, float] = {}
    for metric in metrics.registry().collect():
        if metric.name != family:
            continue
        for s in metric.samples:
            if s.name == f"{family}_bucket" and where(s.labels):
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
    if not buckets or buckets.get(float("inf"), 0) == 0:
        return None
    edges = sorted(buckets)
    total = buckets[float("inf")]
    rank, prev_edge, prev_count = q * total, 0.0, 0.0
    for edge in edges:
        if buckets[edge] >= rank:
            if edge == float("inf"):
                return prev_edge
            inside = buckets[edge] - prev_count
            return prev_edge + (edge - prev_edge) * ((rank - prev_count) / inside if inside else 1)
        prev_edge, prev_count = edge, buckets[edge]
    return prev_edge


def _error_rate() -> float | None:
    total = errors = 0.0
    for metric in metrics.registry().collect():
        if metric.name != "kpi_http_request_seconds":
            continue
        for s in metric.samples:
            if s.name.endswith("_count"):
                total += s.value
                errors += s.value if s.labels.get("status", "").startswith("5") else 0
    return errors / total if total else None


def _warehouse_levels(conn=None) -> dict[str, float | None]:
    """The levels measured in the warehouse, read on ``conn`` (a psycopg connection) or a new one."""
    if conn is None:
        with warehouse.connect_raw(autocommit=True, start=False) as conn:
            return _warehouse_levels(conn)
    fresh = conn.execute(
        "select percentile_cont(0.95) within group (order by extract(epoch from committed_at - touched_to))"
        " from ops.batches where kind = 'ingest' and committed_at > now() - interval '24 hours'"
        " and touched_to > committed_at - interval '1 hour'"
    ).fetchone()[0]
    alert = conn.execute(
        "select percentile_cont(0.95) within group (order by extract(epoch from o.sent_at - a.detected_at))"
        " from ops.alert_notifications n join ops.outbox o on o.id = n.outbox_id"
        " join ops.anomalies a on a.id = n.anomaly_id"
        " where o.sent_at is not null and o.sent_at > now() - interval '24 hours'"
    ).fetchone()[0]
    lag = conn.execute(
        "select coalesce(max(extract(epoch from now() - b.first_pending)), 0) from ops.mv_state m"
        " cross join lateral (select min(committed_at) as first_pending from ops.batches"
        f"  where version > m.refreshed_version and {gold.OWED_REFRESH}) b"
        " where b.first_pending is not null"
    ).fetchone()[0]
    pages = None
    if conn.execute("select to_regclass('ops.page_loads')").fetchone()[0]:
        pages = conn.execute(
            f"select percentile_cont(0.95) within group (order by {READY_MS}) / 1000.0"
            " from ops.page_loads"
            " where at > now() - interval '24 hours'"
        ).fetchone()[0]
    return {"page_load": pages, "freshness": fresh, "alert_latency": alert, "view_lag": float(lag)}


def _hit_rate() -> float | None:
    hits = cache.shared_stats()["hits"]
    total = sum(hits.values())
    return (hits.get("L1", 0) + hits.get("L2", 0)) / total if total else None


def levels() -> list[Level]:
    found = _warehouse_levels()
    out = [
        Level("page_load", "page load p95", 2.0, "s", measured=found["page_load"]),
        Level("freshness", "freshness p95", 1.0, "s", measured=found["freshness"]),
        Level("query", "query p95", 0.1, "s", measured=_quantile("kpi_query_seconds", 0.95)),
        Level("errors", "error rate", 0.01, "ratio", measured=_error_rate()),
        Level("cache", "cache hit rate", 0.85, "ratio", higher_is_better=True, measured=_hit_rate()),
        Level("alert_latency", "alert latency p95", 10.0, "s", measured=found["alert_latency"]),
        Level("view_lag", "materialized-view lag", 120.0, "s", measured=found["view_lag"]),
    ]
    for lv in out:
        if lv.measured is not None:
            lv.measured = float(lv.measured)
    return out


def score(found: list[Level] | None = None) -> dict[str, Any]:
    """``{"score": 0-100, "levels": [...]}`` (see the table above)."""
    found = found if found is not None else levels()
    scored = [lv.score for lv in found if lv.score is not None]
    value = round(100 * sum(scored) / len(scored)) if scored else 100
    return {"score": value, "measured": len(scored), "levels": [lv.as_dict() for lv in found]}
