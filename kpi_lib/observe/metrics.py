"""Prometheus metrics from every `kpi serve` process (prometheus-client, multiprocess mode).

`kpi serve` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before it starts its children,
so the front door, the API and any other process that records here write to the same place, and
``GET /metrics`` (the front door) sums them. Numbers the warehouse already keeps (ingest, rejects,
outbox, job runs, cache hits per level across processes, view lag) are read at scrape time by
:class:`WarehouseCollector` rather than counted twice.
"""

from __future__ import annotations

import logging
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .. import cache, gold, warehouse

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Histogram(
    "kpi_http_request_seconds",
    "Front-door and API request latency",
    ["surface", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
QUERIES = Histogram(
    "kpi_query_seconds",
    "KPI query latency by the cache level that answered (L1/L2 cache, L3 view, L4 base tables; "
    "answer: the API's kept answers)",
    ["level"],
    buckets=LATENCY_BUCKETS,
)
PAGES = Histogram(
    "kpi_page_ready_seconds",
    "Real users' page timings (posted by the pages): navigation -> the page a person can use, or its "
    "load event where a page has no such moment; kind: panel, voila or other",
    ["kind"],
    buckets=(0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30),
)
LIVE_SESSIONS = Gauge("kpi_live_sessions", "Open /api/live WebSockets", multiprocess_mode="livesum")
LIVE_PUSHES = Counter("kpi_live_messages", "Messages pushed on /api/live", ["type"])


def observe_request(surface: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(surface, method, str(status)).observe(seconds)


def observe_query(level: str, seconds: float) -> None:
    QUERIES.labels(level or "unknown").observe(seconds)


def observe_page(path: str, seconds: float) -> None:
    """One real user's page timing, labelled by the kind of page (never its path: a label per path
    would let any client add series)."""
    kind = "panel" if path.startswith("/panel/") else "voila" if path.startswith("/voila/") else "other"
    PAGES.labels(kind).observe(seconds)


class WarehouseCollector:
    """What the warehouse knows, read at scrape time: one short query per family."""

    def collect(self):
        try:
            with warehouse.connect_raw(autocommit=True, start=False) as conn:
                ingest = conn.execute(
                    "select coalesce(sum(events), 0), coalesce(sum(rejected), 0), coalesce(max(version), 0)"
                    " from ops.batches where kind = 'ingest'"
                ).fetchone()
                outbox = dict(
                    conn.execute("select status, count(*) from ops.outbox group by status").fetchall()
                )
                jobs = conn.execute(
                    "select job, status, count(*) from ops.job_runs group by job, status"
                ).fetchall()
                alert_p95, fresh_p95 = conn.execute(
                    "select (select percentile_cont(0.95) within group (order by extract(epoch from o.sent_at - a.detected_at))"
                    "  from ops.alert_notifications n join ops.outbox o on o.id = n.outbox_id"
                    "  join ops.anomalies a on a.id = n.anomaly_id where o.sent_at > now() - interval '24 hours'),"
                    " (select percentile_cont(0.95) within group (order by extract(epoch from committed_at - touched_to))"
                    "  from ops.batches where kind = 'ingest' and committed_at > now() - interval '24 hours'"
                    "  and touched_to > committed_at - interval '1 hour')"
                ).fetchone()
                lag = gold.view_lag(conn)
            stats = cache.shared_stats()
        except Exception as exc:  # noqa: BLE001 - a scrape must answer even with the warehouse down
            log.warning("warehouse metrics unavailable: %s", exc)
            yield GaugeMetricFamily("kpi_warehouse_up", "Could the warehouse be read", value=0)
            return
        yield GaugeMetricFamily("kpi_warehouse_up", "Could the warehouse be read", value=1)
        yield CounterMetricFamily("kpi_ingest_events", "Events ingested (COPY path)", value=float(ingest[0]))
        yield CounterMetricFamily(
            "kpi_ingest_rejects", "Events rejected with a reason", value=float(ingest[1])
        )
        yield GaugeMetricFamily("kpi_data_version", "The newest data version", value=float(ingest[2]))
        box = GaugeMetricFamily("kpi_outbox_messages", "E-mails in the outbox by status", labels=["status"])
        for status in ("pending", "sending", "sent", "dead"):
            box.add_metric([status], float(outbox.get(status, 0)))
        yield box
        runs = CounterMetricFamily("kpi_job_runs", "Job runs by job and outcome", labels=["job", "status"])
        for job, status, n in jobs:
            runs.add_metric([job, status], float(n))
        yield runs
        if alert_p95 is not None:
            yield GaugeMetricFamily(
                "kpi_alert_latency_p95_seconds",
                "Incident detected -> alert e-mail sent, p95, last 24 h",
                value=float(alert_p95),
            )
        if fresh_p95 is not None:
            yield GaugeMetricFamily(
                "kpi_freshness_p95_seconds",
                "Live event -> committed in gold, p95, last 24 h",
                value=float(fresh_p95),
            )
        views = GaugeMetricFamily(
            "kpi_view_lag_versions", "Data versions a materialized view is behind", labels=["view"]
        )
        owed = GaugeMetricFamily(
            "kpi_view_owed_versions",
            "Of those, the changes to days before yesterday: the refreshes owed (today's and yesterday's "
            "are read from the base tables; alert on this one)",
            labels=["view"],
        )
        for name, v in lag.items():
            views.add_metric([name], float(v["behind"]))
            owed.add_metric([name], float(v["owed"]))
        yield views
        yield owed
        hits = CounterMetricFamily(
            "kpi_cache_hits", "Answers by level, all processes, last hour", labels=["level"]
        )
        for level, n in stats["hits"].items():
            hits.add_metric([level], float(n))
        yield hits
        misses = CounterMetricFamily(
            "kpi_cache_misses", "Cache misses by level, all processes, last hour", labels=["level"]
        )
        for level, n in stats["misses"].items():
            misses.add_metric([level], float(n))
        yield misses


def registry() -> CollectorRegistry:
    """Every process's metrics (multiprocess mode when `kpi serve` set it up) plus the warehouse's."""
    reg = CollectorRegistry()
    if os.environ.get(ENV):
        multiprocess.MultiProcessCollector(reg)
    else:  # a single process (a notebook, a test): this process's own metrics
        for collector in (REQUESTS, QUERIES, LIVE_SESSIONS, LIVE_PUSHES):
            reg.register(collector)
    reg.register(WarehouseCollector())
    return reg


def exposition() -> bytes:
    return generate_latest(registry())
