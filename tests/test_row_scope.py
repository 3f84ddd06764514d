"""Row scopes: a reader sees only its rows, and PostgreSQL itself enforces it.

The answers are checked against pandas over silver; the database's own enforcement is checked with
raw SQL as the reader role (forged and missing scopes, tables behind the scoped views, writes)."""

from __future__ import annotations

import os

import pandas as pd
import psycopg
import pytest
from conftest import silver_frame

from kpi_lib import catalog, kpis, warehouse
from kpi_lib.errors import QueryError
from kpi_lib.scope import EVERYTHING, NOTHING, RowScope, using

EUROPE = RowScope.of({"region": ["Europe"]})


@pytest.fixture(scope="module")
def silver(demo):
    df = silver_frame()
    df["v"] = df["quantity"] * df["unit_price"] * (1 - df["discount"])
    df["day"] = df["ordered_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    return df


def _window(silver):
    end = silver["day"].max()
    return end - pd.Timedelta(days=30), end


def test_a_scoped_reader_gets_its_rows_only(silver):
    start, end = _window(silver)
    inside = silver[(silver["day"] >= start) & (silver["day"] < end)]
    with using(EUROPE):
        total = kpis.query("revenue", "total", start=start, end=end).value
        by_region = kpis.query("revenue", "total", start=start, end=end, by=["region"]).df
    assert total == pytest.approx(inside.loc[inside["region"] == "Europe", "v"].sum())
    assert by_region["region"].tolist() == ["Europe"]
    everyone = kpis.query("revenue", "total", start=start, end=end).value
    assert everyone == pytest.approx(inside["v"].sum()) and everyone > total  # cache keyed by scope


def test_asking_outside_the_scope_says_so(silver):
    start, end = _window(silver)
    with using(EUROPE), pytest.raises(QueryError, match="outside your rows"):
        kpis.query("revenue", "total", start=start, end=end, where={"region": "Asia Pacific"})


def test_a_category_scope_reads_only_relations_that_carry_category(silver):
    start, end = _window(silver)
    books = RowScope.of({"category": ["Books"]})
    inside = silver[(silver["day"] >= start) & (silver["day"] < end) & (silver["category"] == "Books")]
    with using(books):
        assert kpis.query("revenue", "total", start=start, end=end).value == pytest.approx(inside["v"].sum())
        with pytest.raises(QueryError, match="not kept by category"):
            kpis.query("customers", "total", start=start, end=end)


def test_dimension_values_follow_the_scope(demo):
    with using(EUROPE):
        assert kpis.dimension_values("region") == ["Europe"]
    assert len(kpis.dimension_values("region")) > 1


def _as_reader(token: str | None, sql: str):
    with warehouse.read(EVERYTHING) as conn:  # the reader role; then replace its scope
        conn.exec_driver_sql("select set_config('kpi.scope', %s, true)", (token or "",))
        return conn.exec_driver_sql(sql).fetchall()


@pytest.mark.parametrize(
    "relation",
    [
        "gold.sales_daily",
        "gold.sales_hourly",
        "gold.category_daily",
        "gold.customer_returns",
        "silver.orders",
    ],
)
def test_the_database_enforces_the_scope_on_every_relation(demo, relation):
    col = "region"
    regions = {
        r[0] for r in _as_reader(warehouse.scope_token(EUROPE), f"select distinct {col} from {relation}")
    }
    assert regions == {"Europe"}
    assert _as_reader(None, f"select count(*) from {relation}") == [(0,)]  # no scope: no rows


def test_lines_follow_their_orders_scope(demo):
    rows = _as_reader(
        warehouse.scope_token(EUROPE),
        "select distinct o.region from silver.order_lines l join silver.orders o using (order_id)",
    )
    assert rows == [("Europe",)]
    hidden = _as_reader(
        warehouse.scope_token(EUROPE),
        "select count(*) from silver.order_lines l where not exists "
        "(select 1 from silver.orders o where o.order_id = l.order_id)",
    )
    assert hidden == [(0,)]


def test_a_forged_or_widened_scope_reads_nothing(demo):
    token = warehouse.scope_token(EUROPE)
    body, sig = token.split(".")
    widened = b'{"region":["Asia Pacific","Europe"]}'.hex() + "." + sig
    assert _as_reader(widened, "select count(*) from gold.sales_daily") == [(0,)]
    assert _as_reader(body + "." + "0" * 64, "select count(*) from gold.sales_daily") == [(0,)]
    assert _as_reader(warehouse.scope_token(NOTHING), "select count(*) from gold.sales_daily") == [(0,)]


@pytest.mark.parametrize(
    "sql",
    [
        "select * from gold_store.sales_daily",
        "select * from ops.scope_key",
        "select * from ops.reader_credentials",
        "select * from ops.audit_log",
        "insert into silver.orders (order_id, ordered_at, region, channel) values ('x', now(), 'Europe', 'Web')",
        "set role postgres",
    ],
)
def test_the_reader_role_has_least_privilege(demo, sql):
    with pytest.raises(Exception) as info:
        _as_reader(warehouse.scope_token(EVERYTHING), sql)
    assert isinstance(info.value.orig if hasattr(info.value, "orig") else info.value, psycopg.Error)


def test_a_served_process_without_a_reader_reads_nothing(demo, monkeypatch):
    monkeypatch.setenv("KPI_PROXY_SECRET", "x")  # as behind `kpi serve`, and no user said who reads
    with pytest.raises(QueryError, match="No one is signed in"):
        kpis.query("revenue", "total")


def test_a_scoped_notebook_user_reads_the_catalog_in_scope(demo, monkeypatch):
    from kpi_lib import auth

    auth.set_user("scope-nb", "scope-nb-password", ["analyst"], scope={"region": ["Europe"]})
    monkeypatch.setenv("KPI_USER", "scope-nb")
    df = catalog.read("sales_daily")
    assert set(df["region"]) == {"Europe"}
    monkeypatch.delenv("KPI_USER")
    assert len(set(catalog.read("sales_daily")["region"])) > 1
    assert os.environ.get("DATABASE_URL") is None  # the catalog has its own variable
