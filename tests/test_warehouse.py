"""The warehouse: migrations, time zone, bring-your-own server."""

from __future__ import annotations

import os
import uuid

import psycopg
import pytest
from conftest import service_missing

from kpi_lib import config, gold, warehouse
from kpi_lib.errors import WarehouseError


def test_migrations_reapply_cleanly(demo, db):
    before = db.execute("select count(*) from silver.order_lines").fetchone()[0]
    applied = warehouse.migrate(force=True)
    assert [p.name for p in warehouse.migration_files()] == applied
    assert warehouse.migrate() == []  # nothing new: nothing applied
    after = db.execute("select count(*) from silver.order_lines").fetchone()[0]
    assert after == before > 0
    assert db.execute("select ops.business_tz()").fetchone()[0] == "UTC"


def test_status_reports_running_embedded_server(demo):
    st = warehouse.status()
    assert st.running and st.embedded and st.version.startswith("18")


def test_bad_timezone_is_a_clear_error(demo):
    with pytest.raises(WarehouseError, match="not a time zone"):
        gold.apply_timezone("Mars/Olympus_Mons")


def _external_server() -> str:
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error as exc:
        service_missing(f"no PostgreSQL service on 127.0.0.1:5432 for the bring-your-own-server test ({exc})")
    return url


@pytest.mark.external
def test_database_url_uses_an_existing_server(demo, tmp_path, monkeypatch):
    """DATABASE_URL switches everything (migrations, demo, queries) to another server."""
    from kpi_lib import cache, kpis
    from kpi_lib.demo import load_demo

    admin_url = _external_server()
    name = f"kpi_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/{name}")
        monkeypatch.setenv("KPI_HOME", str(tmp_path))
        config.reset()
        warehouse.dispose()
        cache.clear()
        warehouse.init()
        assert not os.path.exists(tmp_path / "pgdata"), "an embedded server was started despite DATABASE_URL"
        load_demo(lines=5_000, days=30, seed=3)
        r = kpis.query("orders", "total", start="2000-01-01", end="2100-01-01")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            expected = conn.execute("select count(*) from silver.orders where has_sale").fetchone()[0]
            server = conn.execute("show server_version").fetchone()[0]
        assert r.value == expected > 0
        assert not server.startswith("18"), "queried the embedded server, not the external one"
    finally:
        warehouse.dispose()
        cache.clear()
        monkeypatch.undo()
        config.reset()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
            admin.execute(f'drop role if exists "{warehouse.reader_role(name)}"')
