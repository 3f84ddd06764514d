"""A private warehouse for fault tests that write: their events never reach the session's warehouse
(old event days there would leave its materialized views stale for the tests that follow)."""

from __future__ import annotations

import psycopg
import pytest
from conftest import free_port
from pgnode import PgNode, warehouse_on


@pytest.fixture()
def private_db(tmp_path):
    """kpi_lib switched to a fresh, migrated warehouse on a private server; yields a connection to it
    (autocommit)."""
    node = PgNode(free_port()).init().start()
    try:
        with psycopg.connect(node.url(), autocommit=True) as admin:
            admin.execute("create database kpi")
        with warehouse_on(node.url("kpi"), tmp_path / "home"):
            with psycopg.connect(node.url("kpi"), autocommit=True) as conn:
                yield conn
    finally:
        node.remove()
