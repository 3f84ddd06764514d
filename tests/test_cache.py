"""The cache: L1 bounds, versioned keys, and L2 shared between processes through a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest
from conftest import service_missing

from kpi_lib import cache, config, kpis, warehouse


def test_arrow_round_trip_keeps_types_and_metadata():
    df = pd.DataFrame(
        {
            "period": pd.to_datetime(["2025-01-01", "2025-01-02"]),
            "region": ["A", "B"],
            "value": [1.5, float("nan")],
        }
    )
    out, meta = cache.decode(cache.encode(df, {"sql": "select 1", "entries": ["x"]}))
    pd.testing.assert_frame_equal(out, df)
    assert meta == {"sql": "select 1", "entries": ["x"]}


def test_l1_evicts_least_recently_used_within_its_memory_bound(monkeypatch):
    monkeypatch.setenv("KPI_CACHE_MAX_MB", "1")
    config.reset()
    l1 = cache._L1()
    try:
        big = 400 * 1024
        l1.put("a", "A", big)
        l1.put("b", "B", big)
        assert l1.get("a") == "A"  # a is now the most recently used
        l1.put("c", "C", big)  # over 1 MB: b goes
        assert l1.get("b") is None and l1.get("a") == "A" and l1.get("c") == "C"
        assert l1.bytes <= 1024 * 1024
    finally:
        monkeypatch.undo()
        config.reset()


def test_l1_entries_expire(monkeypatch):
    monkeypatch.setenv("KPI_CACHE_TTL_S", "0")
    config.reset()
    try:
        l1 = cache._L1()
        l1.put("k", "v", 10)
        assert l1.get("k") is None
    finally:
        monkeypatch.undo()
        config.reset()


def test_l1_drops_a_questions_superseded_answers():
    """Versions only grow in a process: once a question's newer answer is stored, the older one
    can never be asked for again and must not sit in the budget until the LRU finds it."""
    l1 = cache._L1()
    l1.put("q:1", "old", 10)
    l1.put("other:1", "other", 10)
    l1.put("q:2", "new", 10)
    assert l1.get("q:1") is None and l1.get("q:2") == "new" and l1.get("other:1") == "other"
    assert (l1.entries(), l1.bytes) == (2, 20)
    l1.put("q:1", "late", 10)  # a slower thread finishing an older version changes nothing
    assert l1.get("q:2") == "new" and l1.get("q:1") is None
    l1.put("q:views3", "from the views", 10)  # another kind of version stamp replaces it too
    assert l1.get("q:2") is None and l1.get("q:views3") == "from the views"


def test_live_batches_leave_one_answer_per_question_in_l1(demo):
    """A live worker asks the same questions after every batch: L1 must not fill with the
    superseded answers (the soak's Panel workers grew ~100 MB/hour that way)."""
    from kpi_lib import stream

    tag = uuid.uuid4().hex[:8]

    def ask():
        return kpis.query("revenue", "month", by=["channel"], start="2000-01-01", end="2100-01-01")

    cache.clear()
    before = ask()
    held = (cache._l1.entries(), cache._l1.bytes)
    for i in range(3):
        stream.ingest(
            [
                {
                    "event_id": f"l1-{tag}-{i}",
                    "order_id": f"L1{tag}{i}",
                    "ordered_at": "2024-06-03T10:00:00+00:00",
                    "customer_id": "CL1",
                    "region": "Europe",
                    "channel": "Web",
                    "lines": [
                        {"product_id": "P1001", "category": "Books", "quantity": 1, "unit_price": 10.0}
                    ],
                }
            ]
        )
        after = ask()
        assert after.version > before.version and after.cache_level != "L1"  # a fresh answer ...
        assert after.df["value"].sum() == pytest.approx(before.df["value"].sum() + 10.0 * (i + 1))
        assert cache._l1.entries() == held[0]  # ... in place of the old one
        assert cache._l1.bytes < 1.05 * held[1]
    assert ask().cache_level == "L1"


def test_warm_query_is_answered_from_l1_with_the_same_numbers(demo):
    cold = kpis.query("revenue", "month", by=["channel"], start="2000-01-01", end="2100-01-01")
    warm = kpis.query("revenue", "month", by=["channel"], start="2000-01-01", end="2100-01-01")
    assert warm.cache_level == "L1"
    pd.testing.assert_frame_equal(cold.df, warm.df)
    assert warm.sql == cold.sql and warm.catalog_entries == cold.catalog_entries


REDIS_URL = "redis://127.0.0.1:6379/15"

CHILD = """
import json, sys
import kpi_lib
from kpi_lib import cache
r = kpi_lib.query("orders", "week", by=["region"], start="2000-01-01", end="2100-01-01")
print(json.dumps({"level": r.cache_level, "total": float(r.df["value"].sum()), "hits": cache.stats.hits}))
"""


@pytest.mark.external
def test_two_processes_share_l2_through_redis(demo):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        service_missing(f"no Redis at {REDIS_URL} ({exc})")
    client.flushdb()
    env = {**os.environ, "REDIS_URL": REDIS_URL, "KPI_CACHE_MAX_MB": "64"}
    # a fresh catalog path per run would change nothing; a fresh Redis db makes the first miss certain

    def child() -> dict:
        out = subprocess.run(
            [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    first, second = child(), child()
    assert first["level"] in ("L3", "L4", "L3+L4")  # computed by the first process
    assert second["level"] == "L2"  # served to a different process from Redis
    assert second["total"] == first["total"]
    assert any(k.startswith(b"kpi:q:") for k in client.keys("*"))
    client.flushdb()


def test_redis_down_degrades_to_l1(demo, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    config.reset()
    try:
        r = kpis.query("units", "total", where={"region": f"nowhere-{uuid.uuid4().hex}"})  # an L1 miss
        assert r.value == 0.0 and r.cache_level in ("L3", "L4", "L3+L4")
    finally:
        monkeypatch.undo()
        config.reset()
        cache._redis_down_until = 0.0


def test_live_orders_for_today_leave_the_views_alone_but_older_days_refresh_them(demo, db):
    """Rebuilding two years of materialized views for every live batch would eat the server; the
    planner reads base tables for the days batches touched, so only older days need a refresh."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from kpi_lib import gold, stream

    def order(at: datetime, tag: str) -> dict:
        return {
            "event_id": f"mv-{tag}",
            "order_id": f"MV{tag}",
            "ordered_at": at.isoformat(),
            "customer_id": "CMV",
            "region": "Europe",
            "channel": "Web",
            "lines": [{"product_id": "P1001", "category": "Books", "quantity": 1, "unit_price": 10.0}],
        }

    # the session's `kpi serve` runs its own paced refresher under the same advisory lock, so either
    # may do a refresh: the test checks what is owed and that it gets done, not who did it
    def owed(version: int | None = None) -> int:
        with warehouse.connect_raw() as conn:
            if version is not None:  # does this one batch owe the views a refresh?
                sql = f"select count(*) from ops.batches where version = %s and {gold.OWED_REFRESH}"
                return conn.execute(sql, [version]).fetchone()[0]
            return sum(v["owed"] for v in gold.view_lag(conn).values())

    def caught_up() -> bool:
        deadline = time.monotonic() + 60
        while owed() and time.monotonic() < deadline:
            gold.refresh_views_if_behind() or time.sleep(0.2)  # False: the server holds the lock
        return owed() == 0

    assert caught_up()  # start from views that are up to date
    tag = uuid.uuid4().hex[:8]
    # one pinned instant for every date below: the warehouse's own now(), which OWED_REFRESH judges
    # "today" by (a run across midnight keeps this day; its order then counts as yesterday's, live too)
    as_of = db.execute("select now()").fetchone()[0]
    today = as_of.astimezone(ZoneInfo(kpis.settings().timezone)).date()

    def region_revenue(start):
        end = today + timedelta(days=2)  # past the pinned day whatever the hour
        return kpis.query("revenue", "total", start=start, end=end, where={"region": "Europe"}).value

    before = region_revenue(today)
    live = stream.ingest([order(as_of, "today" + tag)])
    assert owed(live.version) == 0 and owed() == 0  # today's orders: nothing to rebuild
    assert gold.refresh_views_if_behind() is False
    assert region_revenue(today) == pytest.approx(before + 10.0)  # and the answer is still exact
    week = today - pd.Timedelta(days=7)
    before = region_revenue(week)
    late = stream.ingest([order(as_of - timedelta(days=5), "late" + tag)])
    assert owed(late.version) == 1  # a late order five days back: the views owe a refresh
    assert caught_up()  # ... and catch up
    assert region_revenue(week) == pytest.approx(before + 10.0)
