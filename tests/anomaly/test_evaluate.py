"""event_scores(): found events, false alarms and what a label excuses, on hand-made alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kpi_lib.anomaly.evaluate import SeriesKey, event_scores, kpi_frames, rules_for

LABELS = pd.DataFrame(
    [
        {
            "label_id": "outage",
            "kind": "region_outage",
            "kpi": "orders",
            "grain": "hour",
            "dimension": "region",
            "dim_value": "Europe",
            "starts_at": pd.Timestamp("2026-01-25 10:00", tz="UTC"),
            "ends_at": pd.Timestamp("2026-01-25 15:00", tz="UTC"),
        },
        {
            "label_id": "decline",
            "kind": "slow_decline",
            "kpi": "revenue",
            "grain": "day",
            "dimension": None,
            "dim_value": None,
            "starts_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "ends_at": pd.Timestamp("2026-01-20", tz="UTC"),
        },
    ]
)


def _alarms(grain: str, *times: str) -> pd.Series:
    freq = "h" if grain == "hour" else "D"
    idx = pd.date_range("2025-12-01", "2026-02-01", freq=freq, tz="UTC", inclusive="left")
    s = pd.Series(0, index=idx)
    for t in times:
        s[pd.Timestamp(t, tz="UTC")] = 1
    return s


def test_found_within_grace_on_the_labels_own_series_and_false_elsewhere():
    scores = event_scores(
        {
            SeriesKey("orders", "hour", "region", "Europe"): _alarms(
                "hour", "2026-01-25 16:00"
            ),  # end + 1 h: found
            SeriesKey("revenue", "day"): _alarms("day", "2026-01-28"),  # after the end + 2 days: false
            SeriesKey("orders", "hour", "region", "Asia Pacific"): _alarms(
                "hour", "2026-01-25 11:00"
            ),  # other region
        },
        LABELS,
        grace=2,
    )
    found = scores.events.set_index("label_id")
    assert found.loc["outage", "found"] and found.loc["outage", "lag_periods"] == 6
    assert not found.loc["decline", "found"]
    assert scores.found == 1 and scores.false_alarms == 2
    assert set(scores.false["dim_value"].fillna("-")) == {"-", "Asia Pacific"}
    assert scores.f1 == pytest.approx(2 * 1 / (2 * 1 + 2 + 1))


def test_a_label_excuses_alarms_on_series_that_contain_its_slice():
    scores = event_scores(
        {
            SeriesKey("revenue", "hour"): _alarms("hour", "2026-01-25 12:00"),  # overall: contains Europe
            SeriesKey("aov", "hour", "category", "Books"): _alarms(
                "hour", "2026-01-25 12:00"
            ),  # other dimension
            SeriesKey("revenue", "day", "region", "Europe"): _alarms(
                "day", "2026-01-25"
            ),  # day grain, same day
            SeriesKey("orders", "hour", "region", "Asia Pacific"): _alarms(
                "hour", "2026-01-05 12:00"
            ),  # in the
            # overall decline's window: a label without a dimension explains every series
            SeriesKey("revenue", "day"): _alarms("day", "2026-01-21"),  # the decline, end + 1 day
        },
        LABELS,
        grace=2,
    )
    assert scores.false_alarms == 0
    assert scores.found == 1 and scores.f1 == pytest.approx(2 / 3)


def test_windows_limit_where_alarms_count_and_plain_tuples_work():
    alarms = {("orders", "hour", "region", "Europe"): _alarms("hour", "2025-12-05 03:00", "2026-01-25 11:00")}
    everywhere = event_scores(alarms, LABELS)
    assert everywhere.false_alarms == 1
    recent = event_scores(alarms, LABELS, windows={"hour": ("2026-01-01", "2026-02-01")})
    assert recent.false_alarms == 0 and recent.found == 1
    assert recent.as_dict()["recall"] == 0.5


def test_kpi_frames_follow_the_catalog_definitions():
    orders = pd.DataFrame(
        {
            "order_id": ["A", "B", "R"],
            "region": ["Europe", "Europe", "Europe"],
            "ordered_at": pd.to_datetime(
                ["2026-01-01 10:05", "2026-01-01 10:50", "2026-01-01 12:10"], utc=True
            ),
        }
    )
    lines = pd.DataFrame(
        {
            "order_id": ["A", "A", "B", "R"],
            "category": ["Books", "Grocery", "Books", "Books"],
            "quantity": [2.0, 1.0, 1.0, -1.0],
            "unit_price": [10.0, 4.0, 20.0, 10.0],
            "discount": [0.5, 0.0, 0.0, 0.0],
        }
    )
    out = kpi_frames(orders, lines, "hour", "2026-01-01 10:00+00:00", "2026-01-01 13:00+00:00")
    t10, t11, t12 = (pd.Timestamp(f"2026-01-01 {h}:00", tz="UTC") for h in (10, 11, 12))
    assert out[SeriesKey("revenue", "hour")][t10] == pytest.approx(10 + 4 + 20)
    assert out[SeriesKey("orders", "hour")][t10] == 2
    assert out[SeriesKey("aov", "hour")][t10] == pytest.approx(17)
    assert out[SeriesKey("orders", "hour", "category", "Books")][t10] == 2  # orders containing Books
    assert out[SeriesKey("revenue", "hour")][t11] == 0 and np.isnan(out[SeriesKey("aov", "hour")][t11])
    assert out[SeriesKey("return_rate", "hour", "category", "Books")][t10] == 0
    assert out[SeriesKey("revenue", "hour")][t12] == -10 and np.isnan(
        out[SeriesKey("return_rate", "hour")][t12]
    )


def test_rules_for_picks_per_kpi_then_per_grain():
    key = SeriesKey("aov", "hour")
    assert (
        rules_for(key, {("aov", "hour"): "business_hourly_ratio", "hour": "business_hourly"})
        == "business_hourly_ratio"
    )
    assert rules_for(key, {"hour": "business_hourly"}) == "business_hourly"
    assert rules_for(key, {"day": "business_daily"}) == "default"
    spec = {"extends": "business_hourly"}
    assert rules_for(key, spec) is spec
