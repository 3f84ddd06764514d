"""Gold is derived from silver only: its rollups add up to silver's numbers, a rebuild restores them,
and gold.init() is safe to run again."""

from __future__ import annotations

import pytest
from conftest import silver_frame

from kpi_lib import gold


def _gold_totals(db) -> tuple[float, float]:
    return db.execute("select sum(revenue), sum(units) from gold.sales_hourly").fetchone()


def test_hourly_rollups_add_up_to_silver(demo, db):
    df = silver_frame()
    revenue = (df["quantity"] * df["unit_price"] * (1 - df["discount"])).sum()
    got_revenue, got_units = _gold_totals(db)
    assert got_revenue == pytest.approx(revenue, rel=1e-9)
    assert got_units == pytest.approx(df["quantity"].sum(), rel=1e-9)


def test_a_rebuild_restores_rollups_lost_from_gold(demo, db):
    before = _gold_totals(db)
    version = db.execute("select max(version) from ops.batches").fetchone()[0]
    with db.transaction():
        db.execute("delete from gold.sales_hourly where hour = (select max(hour) from gold.sales_hourly)")
        assert _gold_totals(db) != before
        assert gold.rebuild(db, kind="rebuild", source="test") > version  # a new data version
        assert _gold_totals(db) == pytest.approx(before, rel=1e-12)


def test_init_again_changes_nothing(demo):
    assert gold.init() == []  # every migration is applied already
    assert gold.apply_timezone() is False  # the zone is the configured one
