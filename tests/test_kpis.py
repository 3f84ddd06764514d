"""The semantic layer: every default KPI equals an independent pandas computation from silver."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import silver_frame

from kpi_lib import kpis
from kpi_lib.errors import QueryError

KPIS = ["revenue", "orders", "units", "aov", "customers", "new_customers", "gross_margin", "return_rate"]


def expected_kpis(lines: pd.DataFrame, grain: str, by: list[str], tz: str = "UTC") -> pd.DataFrame:
    """The KPI definitions, written again in pandas from raw silver rows."""
    df = lines.copy()
    local = df["ordered_at"].dt.tz_convert(tz).dt.tz_localize(None)
    df["period"] = local.dt.to_period({"day": "D", "month": "M"}[grain]).dt.start_time
    df["v"] = df["quantity"] * df["unit_price"] * (1 - df["discount"])
    df["costed_v"] = np.where(df["unit_cost"].notna(), df["v"], 0.0)
    df["cost"] = (df["quantity"] * df["unit_cost"]).fillna(0.0)
    df["sold"] = df["quantity"].clip(lower=0)
    df["returned"] = (-df["quantity"]).clip(lower=0)
    positive = df[df["quantity"] > 0]  # orders count where they sold something (in that category)
    first = lines.groupby("customer_id")["ordered_at"].min()
    orders_first = positive[
        positive["customer_id"].notna() & (positive["ordered_at"] == positive["customer_id"].map(first))
    ]
    keys = ["period", *by]
    g = df.groupby(keys)
    out = pd.DataFrame(
        {
            "revenue": g["v"].sum(),
            "units": g["quantity"].sum(),
            "costed": g["costed_v"].sum(),
            "cost": g["cost"].sum(),
            "sold": g["sold"].sum(),
            "returned": g["returned"].sum(),
        }
    )
    out["orders"] = positive.groupby(keys)["order_id"].nunique()
    out["customers"] = positive.dropna(subset=["customer_id"]).groupby(keys)["customer_id"].nunique()
    out["new_customers"] = orders_first.groupby(keys)["customer_id"].nunique()
    out = out.fillna({"orders": 0, "customers": 0, "new_customers": 0})
    out["aov"] = out["revenue"] / out["orders"].replace(0, np.nan)
    out["gross_margin"] = (out["costed"] - out["cost"]) / out["costed"].replace(0, np.nan)
    out["return_rate"] = out["returned"] / out["sold"].replace(0, np.nan)
    return out.reset_index()


@pytest.fixture(scope="module")
def silver(demo):
    return silver_frame()


def _compare(kpi: str, grain: str, by: list[str], silver: pd.DataFrame, tz: str = "UTC") -> int:
    local = silver["ordered_at"].dt.tz_convert(tz).dt.tz_localize(None)
    start, end = local.min().normalize(), local.max().normalize() + pd.Timedelta(days=1)
    if grain == "month":
        start, end = start.replace(day=1), (end + pd.offsets.MonthBegin(1))
    got = kpis.query(kpi, grain, start=start, end=end, by=by).df
    want = expected_kpis(silver, grain, by, tz)[["period", *by, kpi]].rename(columns={kpi: "want"})
    merged = got.merge(want, on=["period", *by], how="outer")
    if kpis.get(kpi).additive:
        merged = merged.fillna({"value": 0.0, "want": 0.0})
    both = merged.dropna(subset=["value", "want"], how="all")
    assert both["value"].notna().all() and both["want"].notna().all(), both[both.isna().any(axis=1)].head()
    np.testing.assert_allclose(both["value"], both["want"], rtol=1e-9, atol=1e-6)
    return len(both)


@pytest.mark.parametrize("kpi", KPIS)
@pytest.mark.parametrize("grain", ["day", "month"])
def test_kpi_equals_pandas_by_region(kpi, grain, silver):
    rows = _compare(kpi, grain, ["region"], silver)
    assert rows >= (5 * 3 if grain == "month" else 5 * 100)


@pytest.mark.parametrize("kpi", ["revenue", "orders", "aov", "return_rate"])
def test_kpi_by_category_and_channel_totals(kpi, silver):
    assert _compare(kpi, "month", ["category"], silver) > 0
    assert _compare(kpi, "day", ["channel"], silver) > 0


def test_product_dimension_and_top_n(silver):
    r = kpis.query(
        "revenue",
        "total",
        start="2000-01-01",
        end="2100-01-01",
        by=["product"],
        top=3,
        where={"category": "Electronics"},
    )
    e = silver[silver["category"] == "Electronics"]
    want = (e["quantity"] * e["unit_price"] * (1 - e["discount"])).groupby(e["product_name"]).sum()
    want = want.sort_values(ascending=False).head(3)
    assert list(r.df["product"]) == list(want.index)
    np.testing.assert_allclose(r.df["value"], want.values, rtol=1e-9)


def test_filters_match_pandas(silver):
    r = kpis.query(
        "orders",
        "total",
        start="2000-01-01",
        end="2100-01-01",
        where={"region": ["Europe", "Latin America"], "channel": "Web"},
    )
    s = silver[
        silver["region"].isin(["Europe", "Latin America"])
        & (silver["channel"] == "Web")
        & (silver["quantity"] > 0)
    ]
    assert r.value == s["order_id"].nunique()
    assert "any(:w_region)" in r.sql and r.params["w_region"] == ["Europe", "Latin America"]


def test_hour_grain_matches_pandas(silver):
    last = silver["ordered_at"].max().tz_localize(None).floor("D")
    r = kpis.query("revenue", "hour", start=last - pd.Timedelta(days=2), end=last, where={"region": "Europe"})
    s = silver[(silver["region"] == "Europe")].copy()
    s["hour"] = s["ordered_at"].dt.tz_localize(None).dt.floor("h")
    s = s[(s["hour"] >= last - pd.Timedelta(days=2)) & (s["hour"] < last)]
    want = (s["quantity"] * s["unit_price"] * (1 - s["discount"])).groupby(s["hour"]).sum()
    got = r.df.set_index("period")["value"]
    assert len(got) == 48  # every hour present, zeros included
    np.testing.assert_allclose(got.reindex(want.index), want, rtol=1e-9)


def _distinct_customers(silver, start, end, grain, by, where) -> pd.DataFrame:
    """Active customers per period, counted again in pandas from silver."""
    s = silver[(silver["quantity"] > 0) & silver["customer_id"].notna()].copy()
    s["day"] = s["ordered_at"].dt.tz_localize(None).dt.floor("D")
    s = s[(s["day"] >= start) & (s["day"] < end)]
    for dim, value in where.items():
        s = s[s[dim] == value]
    if grain == "total":
        return (
            s.groupby(list(by))["customer_id"].nunique().rename("want").reset_index()
            if by
            else (pd.DataFrame({"want": [s["customer_id"].nunique()]}))
        )
    s["period"] = s["day"].dt.to_period({"day": "D", "week": "W-SUN", "month": "M"}[grain]).dt.start_time
    return s.groupby(["period", *by])["customer_id"].nunique().rename("want").reset_index()


def test_distinct_customers_are_sums_over_the_returns_table(silver):
    """Whole days with one value per filter come from gold.customer_returns (L3), and equal a recount;
    a range starting mid-week counts its first week from the range start."""
    last = silver["ordered_at"].max().tz_localize(None).floor("D")
    start, end = last - pd.Timedelta(days=45), last - pd.Timedelta(days=3)  # a Tuesday or any day
    for grain in ("total", "day", "week", "month"):
        for by, where in (
            ((), {}),
            (("region",), {}),
            (("channel",), {"region": "Europe"}),
            ((), {"channel": "Web"}),
        ):
            r = kpis.query("customers", grain, start=start, end=end, by=by, where=where, use_cache=False)
            assert r.cache_level == "L3" and "gold.customer_returns" in r.sql, (grain, by, r.sql)
            want = _distinct_customers(silver, start, end, grain, by, where)
            keys = ([] if grain == "total" else ["period"]) + list(by)
            got = r.df.merge(want, on=keys, how="outer") if keys else r.df.join(want)
            got = got.fillna({"value": 0.0, "want": 0.0})
            assert len(got) and (got["want"] > 0).any()
            np.testing.assert_array_equal(
                got["value"].to_numpy(), got["want"].to_numpy(), err_msg=f"{grain} {by} {where}"
            )
    # two regions at once are not a sum of scopes: the base table answers, still exactly
    two = {"region": ["Europe", "North America"]}
    r = kpis.query("customers", "total", start=start, end=end, where=two, use_cache=False)
    assert "customer_returns" not in r.sql
    s = silver[(silver["quantity"] > 0) & silver["region"].isin(two["region"])]
    s = s[(s["ordered_at"].dt.tz_localize(None) >= start) & (s["ordered_at"].dt.tz_localize(None) < end)]
    assert r.value == s["customer_id"].nunique()


def test_previous_period_comparison(silver):
    r = kpis.query("revenue", "total", start="2000-01-01", end="2000-02-01", compare="previous_period")
    assert r.value == 0.0 and r.previous == 0.0 and r.change is None
    end = silver["ordered_at"].max().tz_localize(None).normalize()
    r = kpis.query("revenue", "day", start=end - pd.Timedelta(days=14), end=end, compare="previous_period")
    one = kpis.query("revenue", "day", start=end - pd.Timedelta(days=28), end=end - pd.Timedelta(days=14)).df
    assert list(r.df["previous"]) == list(one["value"])
    np.testing.assert_allclose(r.df["change"], (r.df["value"] - r.df["previous"]) / r.df["previous"])


def test_errors_list_the_valid_names(demo):
    with pytest.raises(QueryError, match="KPIs: revenue, orders"):
        kpis.query("revenu", "day")
    with pytest.raises(QueryError, match="Grains: minute, hour, day, week, month, total"):
        kpis.query("revenue", "fortnight")
    with pytest.raises(QueryError, match="Dimensions for customers: region, channel"):
        kpis.query("customers", "day", by=["category"])
    with pytest.raises(QueryError, match="only kept per day"):
        kpis.query("revenue", "hour", by=["product"])
    with pytest.raises(QueryError, match="not a date"):
        kpis.query("revenue", "day", start="yesterday-ish")


def test_values_are_bound_never_formatted(demo):
    hostile = "Europe'; drop table silver.orders; --"
    r = kpis.query("revenue", "total", where={"region": hostile})
    assert hostile not in r.sql and r.params["w_region"] == [hostile]
    assert r.value == 0.0


def test_business_timezone_moves_day_boundaries(silver, db):
    from kpi_lib import config, gold

    tz = "America/New_York"
    try:
        gold.apply_timezone(tz)
        config.reset()
        import os

        os.environ["KPI_TIMEZONE"] = tz
        config.reset()
        assert _compare("revenue", "day", ["region"], silver, tz=tz) > 0
        assert _compare("customers", "day", [], silver, tz=tz) > 0
    finally:
        import os

        os.environ.pop("KPI_TIMEZONE", None)
        config.reset()
        gold.apply_timezone("UTC")


def _minutes_ago_today(minutes: int, i: int = 0) -> pd.Timestamp:
    """A moment a few minutes ago that is still today in the business's time zone (just after
    midnight: a second into today), so the live-today tests hold at any hour."""
    from kpi_lib.config import settings

    now = pd.Timestamp(kpis.local_now())
    at = max(now - pd.Timedelta(minutes=minutes), now.floor("D") + pd.Timedelta(seconds=1 + i))
    return at.tz_localize(settings().timezone)


def _order(tag: str, at: pd.Timestamp, customer: str, region: str, channel: str, price: float = 10) -> dict:
    """One streamed order of one line, identified by ``tag``."""
    return {
        "event_id": f"{tag}-{at.timestamp()}",
        "order_id": f"{tag.upper()}{at.timestamp()}",
        "ordered_at": at.isoformat(),
        "customer_id": customer,
        "region": region,
        "channel": channel,
        "lines": [{"product_id": "P1001", "quantity": 1, "unit_price": price}],
    }


def test_distinct_customers_across_today_equal_a_recount(demo, db):
    """The live shortcut (closed days + today's newcomers) must agree with counting everything again."""

    from kpi_lib import stream

    now = _minutes_ago_today(5)
    returning = db.execute(
        "select customer_id, region from silver.orders where customer_id is not null "
        "and ordered_at < now() - interval '3 days' order by ordered_at desc limit 1"
    ).fetchone()
    events = [
        _order("d1", now, returning[0], returning[1], "Web"),
        _order("d2", now, f"CNEW{now.timestamp()}", "Europe", "Web"),
    ]
    stream.ingest(events, source="test-distinct")
    today = kpis.local_now().date()
    start, end = today - pd.Timedelta(days=20), today + pd.Timedelta(days=1)
    for by, where in (((), {}), (("region",), {}), ((), {"channel": "Web"})):
        r = kpis.query("customers", "total", start=start, end=end, by=by, where=where)
        assert "plus new since then" in r.sql
        k = kpis.get("customers")
        s, e = kpis.default_range("total", start, end)
        sql, params, _, _ = kpis.plan_sql(k, "total", s, e, by, kpis._normalise_where(k, where))
        recount = kpis._run(sql, params)
        got = r.df.set_index(list(by))["value"] if by else r.df["value"]
        want = recount.set_index(list(by))["value"] if by else recount["value"]
        np.testing.assert_array_equal(
            got.sort_index().to_numpy() if by else got.to_numpy(),
            want.sort_index().to_numpy() if by else want.to_numpy(),
        )


def test_a_live_days_customers_are_counted_once_for_the_total_and_the_day_series(demo, db):
    """A live page asks for the distinct total and then the day series: the day's customers are
    counted once (the series' last day comes from the cache), and both stay exact as orders arrive."""

    from kpi_lib import stream

    today = kpis.local_now().date()
    start, end = today - pd.Timedelta(days=20), today + pd.Timedelta(days=1)
    kpis.query("customers", "day", start=start, end=end)  # the closed days, cached
    for i in range(2):
        at = _minutes_ago_today(5, i)
        landed = stream.ingest(
            [_order(f"once{i}", at, f"CONCE{at.timestamp()}{i}", "Europe", "Web")], source="test-once"
        )
        assert landed.loaded == 1, landed.reasons
        total = kpis.query("customers", "total", start=start, end=end)
        day = kpis.query("customers", "day", start=start, end=end)
        assert day.cache_level == "L1", day.cache_level  # today's count came with the total
        assert "this day's value is the column seen" in day.sql  # its SQL says where the number is
        recount = kpis.query("customers", "day", start=start, end=end, use_cache=False)
        pd.testing.assert_frame_equal(day.df, recount.df, check_dtype=False)
        everyone = kpis.query("customers", "total", start=start, end=end, use_cache=False)
        assert total.value == everyone.value
        assert day.df["value"].iloc[-1] >= 1 + i  # the new customers are in today's count


def test_a_late_order_on_a_closed_day_keeps_distinct_customers_exact(silver, demo):
    """A batch touching an older day makes the returns table stale from that day on: the days
    before still come from it, the rest from the base table, and the count stays exact."""
    from kpi_lib import stream

    last = silver["ordered_at"].max().tz_localize(None).floor("D")
    start, end = last - pd.Timedelta(days=45), last - pd.Timedelta(days=3)
    late = (last - pd.Timedelta(days=10) + pd.Timedelta(hours=12)).tz_localize("UTC")
    landed = stream.ingest(
        [_order("late", late, f"CLATE{late.timestamp()}", "Latin America", "Retail Store", price=3)],
        source="test-late",
    )
    assert landed.loaded == 1, landed.reasons
    now = silver_frame()
    for grain, by in (("total", ()), ("total", ("region",)), ("day", ("channel",)), ("week", ())):
        r = kpis.query("customers", grain, start=start, end=end, by=by, use_cache=False)
        want = _distinct_customers(now, start, end, grain, by, {})
        keys = ([] if grain == "total" else ["period"]) + list(by)
        got = (r.df.merge(want, on=keys, how="outer") if keys else r.df.join(want)).fillna(0.0)
        np.testing.assert_array_equal(
            got["value"].to_numpy(), got["want"].to_numpy(), err_msg=f"{grain} {by}"
        )
        if grain != "week":  # days before the late one still come from the returns table
            assert "gold.customer_returns" in r.sql and "gold.customer_hourly" in r.sql, r.sql


def test_as_of_is_the_latest_data_unless_live_or_explicit(demo):
    latest = kpis.latest_data()
    assert latest is not None
    # a warehouse last fed two days ago is shown as of its newest order, not as of today
    old = kpis.as_of(wall=latest + pd.Timedelta(days=2))
    assert (old.at, old.source) == (latest, "latest data")
    assert old.describe() == f"as of {latest.day} {latest:%b %Y %H:%M} (latest data)"
    # a newest order minutes old means a live stream: the wall clock
    wall = latest + pd.Timedelta(minutes=10)
    assert (kpis.as_of(wall=wall).at, kpis.as_of(wall=wall).source) == (wall, "live")
    # an explicit time always wins
    assert kpis.as_of("2025-03-01 10:00", wall=wall).at == pd.Timestamp("2025-03-01 10:00")


def test_default_window_ends_at_the_as_of(silver):
    as_of = pd.Timestamp("2026-09-15 13:20")
    r = kpis.query("revenue", "day", as_of=as_of)
    assert (r.start, r.end) == (pd.Timestamp("2026-06-18"), pd.Timestamp("2026-09-16"))  # 90 days
    assert r.as_of.source == "explicit" and r.provenance()["as_of"] == "2026-09-15T13:20:00"
    local = silver["ordered_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    days = silver[(local >= r.start) & (local < r.end)]
    expected = (days["quantity"] * days["unit_price"] * (1 - days["discount"])).sum()
    assert r.df["value"].sum() == pytest.approx(expected)
