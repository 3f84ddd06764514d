"""The intake catalog: every entry reads data; parameters are bound; errors are clear."""

from __future__ import annotations

import pytest

from kpi_lib import catalog
from kpi_lib.errors import CatalogError


def test_catalog_is_intake_v2_and_lists_every_entry(demo):
    cat = catalog.open_catalog()
    assert sorted(cat) == sorted(catalog.entry_names())
    assert len(catalog.entry_names()) >= 12


@pytest.mark.parametrize("name", catalog.entry_names())
def test_every_entry_reads_non_empty_data(demo, name):
    df = catalog.read(name)
    assert len(df) > 0, f"{name} returned no rows"


def test_parameters_filter_rows(demo):
    all_rows = catalog.read("sales_daily")
    europe = catalog.read("sales_daily", region="Europe", channel="Web")
    assert set(europe["region"]) == {"Europe"} and set(europe["channel"]) == {"Web"}
    assert 0 < len(europe) < len(all_rows)
    last_day = str(all_rows["day"].max())
    one_day = catalog.read("kpi_daily", start=last_day)
    assert set(map(str, one_day["period"])) == {last_day}


def test_hostile_parameter_is_just_a_value(demo):
    assert catalog.read("sales_daily", region="x' or '1'='1").empty


def test_unknown_parameter_and_entry_are_clear_errors(demo):
    with pytest.raises(CatalogError, match="it takes: start, end, region, channel"):
        catalog.read("sales_daily", country="FR")
    with pytest.raises(CatalogError, match="No catalog entry named 'nope'"):
        catalog.read("nope")


def test_kpi_definitions_live_in_catalog_metadata(demo):
    kpis = catalog.metadata()["metadata"]["kpis"]
    assert set(kpis) == {
        "revenue",
        "orders",
        "units",
        "aov",
        "customers",
        "new_customers",
        "gross_margin",
        "return_rate",
    }
    for name, d in kpis.items():
        for field in ("label", "unit", "format", "description", "expression", "dimensions", "up_is_good"):
            assert field in d, f"{name} lacks {field}"


def test_unreachable_server_gives_a_clear_error(demo, monkeypatch):
    from kpi_lib import config, warehouse

    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    config.reset()
    warehouse.dispose()
    try:
        with pytest.raises(Exception, match="Cannot connect to the warehouse .*DATABASE_URL"):
            catalog.open_catalog()
    finally:
        monkeypatch.undo()
        config.reset()
        warehouse.dispose()
        import os

        os.environ.pop("DATABASE_URL", None)
