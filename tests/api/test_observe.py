"""/metrics (Prometheus text from every process), /readyz and the health score, on the real server."""

from __future__ import annotations

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kpi_lib.observe.health import Level, score

LEVELS = {"page_load", "freshness", "query", "errors", "cache", "alert_latency", "view_lag"}


def test_metrics_parse_and_cover_requests_queries_ingest_and_live(api, server):
    api().get(
        "/api/query", params={"kpi": "orders", "grain": "total", "start": "2024-01-01", "end": "2024-02-01"}
    )
    r = api("api-admin").get("/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in (
        "kpi_http_request_seconds",
        "kpi_query_seconds",
        "kpi_ingest_events",
        "kpi_ingest_rejects",
        "kpi_outbox_messages",
        "kpi_cache_hits",
        "kpi_view_lag_versions",
        "kpi_view_owed_versions",
        "kpi_live_sessions",
        "kpi_warehouse_up",
    ):
        assert name in families, name
    api_requests = [
        s
        for s in families["kpi_http_request_seconds"].samples
        if s.name.endswith("_count") and s.labels["surface"] == "api"
    ]
    assert sum(s.value for s in api_requests) >= 1
    lag = {s.labels["view"]: s.value for s in families["kpi_view_lag_versions"].samples}
    owed = {s.labels["view"]: s.value for s in families["kpi_view_owed_versions"].samples}
    assert set(owed) == set(lag) and all(0 <= owed[v] <= lag[v] for v in lag)
    queries = [s for s in families["kpi_query_seconds"].samples if s.name.endswith("_count")]
    assert sum(s.value for s in queries) >= 1 and all(s.labels["level"] for s in queries)


def test_real_users_page_timings_reach_the_metrics_by_kind_of_page(api):
    """A dashboard's posted timing counts until the page was usable (its load event when it has no
    such moment), labelled by the kind of page only: a path label would let any client add series."""

    def ready_counts() -> dict:
        text = api("api-admin").get("/metrics").text
        fam = {f.name: f for f in text_string_to_metric_families(text)}.get("kpi_page_ready_seconds")
        if fam is None:
            return {}
        out: dict = {}
        for s in fam.samples:
            if s.name.endswith("_count") or s.name.endswith("_sum"):
                out[(s.name.rsplit("_", 1)[1], s.labels["kind"])] = s.value
        return out

    before = ready_counts()
    post = api().post
    assert (
        post("/api/rum", json={"page": "/panel/executive", "load_ms": 400, "usable_ms": 7000}).status_code
        == 204
    )
    assert post("/api/rum", json={"page": "/voila/voila/render/x.ipynb", "load_ms": 900}).status_code == 204
    after = ready_counts()
    grew = {k: after[k] - before.get(k, 0.0) for k in after}
    assert grew[("count", "panel")] == 1 and grew[("sum", "panel")] == pytest.approx(7.0)
    assert grew[("count", "voila")] == 1 and grew[("sum", "voila")] == pytest.approx(0.9)
    assert {kind for _, kind in after} <= {"panel", "voila", "other"}


def test_metrics_are_for_administrators(api, server):
    assert requests.get(server + "/metrics", timeout=30).status_code == 401
    assert api("api-exec").get("/metrics").status_code == 403


def test_readyz_checks_each_part(server):
    r = requests.get(server + "/readyz", timeout=30)
    doc = r.json()
    assert doc["checks"]["warehouse"]["ok"] and doc["checks"]["listener"]["ok"]
    assert "smtp" in doc["checks"]  # this test server runs without its mail sink: reported, not hidden
    assert r.status_code == (200 if doc["ready"] else 503)
    assert doc["ready"] == all(c["ok"] for c in doc["checks"].values())


def test_health_score_lists_every_service_level(api):
    api().get(
        "/api/query", params={"kpi": "orders", "grain": "total", "start": "2024-01-01", "end": "2024-02-01"}
    )
    doc = api().get("/api/health").json()
    assert 0 <= doc["score"] <= 100
    levels = {lv["name"]: lv for lv in doc["levels"]}
    assert set(levels) == LEVELS
    assert levels["query"]["measured"] is not None and levels["cache"]["target"] == 0.85


def test_the_score_is_the_mean_of_measured_levels():
    met = Level("query", "query p95", 0.1, "s", measured=0.05)
    missed = Level("errors", "error rate", 0.01, "ratio", measured=0.015)  # half way to twice the target
    low_hits = Level("cache", "cache hit rate", 0.85, "ratio", higher_is_better=True, measured=0.425)
    unknown = Level("page_load", "page load p95", 2.0, "s")
    doc = score([met, missed, low_hits, unknown])
    assert [lv["score"] for lv in doc["levels"]] == [1.0, pytest.approx(0.5), 0.0, None]
    assert doc["score"] == 50 and doc["measured"] == 3
    assert score([unknown])["score"] == 100


def test_page_load_counts_a_dashboard_until_a_person_could_use_it(db):
    """A dashboard whose load event fired at 0.4 s but was usable only at 5 s counts 5 s: its
    scripts do not hold up the load event, and its charts come after it."""
    from kpi_lib.observe import health

    marker = "/panel/test-usable-page"
    try:
        db.cursor().executemany(
            "insert into ops.page_loads (login, page, load_ms, painted_ms, usable_ms) values (%s, %s, %s, %s, %s)",
            [("rum-test", marker, 400.0, 300.0, 5000.0)] * 60,
        )
        db.execute(
            "insert into ops.page_loads (login, page, load_ms) values ('rum-test', '/voila/plain', 700.0)"
        )
        measured = health.levels()[0]
        assert measured.name == "page_load" and measured.measured >= 4.0 and measured.met is False
    finally:
        db.execute("delete from ops.page_loads where login = 'rum-test'")


def test_view_lag_counts_only_changes_the_views_owe_a_refresh_for(demo):
    """A live stream filling today is read from the base tables, so the views are not behind for it
    (the refresher leaves them, by design): the view-lag level must not fail a healthy live system.
    A change to a day a week ago is owed, and counts from its commit. In one transaction, rolled
    back: nothing stays in the warehouse."""
    from kpi_lib import warehouse as wh
    from kpi_lib.observe import health

    with wh.connect_raw() as conn:
        try:
            before = health._warehouse_levels(conn)["view_lag"]
            assert before < 20 * 86400  # this session's warehouse is minutes old
            batch = (
                "insert into ops.batches (kind, source, touched_from, touched_to, committed_at)"
                " values ('ingest', 'view-lag-test', now() - %s::interval, now() - %s::interval,"
                " now() - interval '30 days')"
            )
            conn.execute(batch, ["0 minutes", "0 minutes"])  # today only, 30 days unrefreshed
            assert health._warehouse_levels(conn)["view_lag"] == before
            conn.execute(batch, ["7 days", "7 days"])  # a week ago: owed
            assert health._warehouse_levels(conn)["view_lag"] >= 30 * 86400
        finally:
            conn.rollback()
