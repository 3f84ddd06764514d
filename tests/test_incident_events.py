"""Incidents grouped into events (kpi_lib.incidents.events): the rule alone, no warehouse."""

from __future__ import annotations

import pandas as pd

from kpi_lib import incidents

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2019-05-13", tz="UTC")


def inc(iid, kpi="orders", start=0, days=1, value=0.0, grain="day", dim=None, severity="high", key=None):
    start_at = T0 + start * DAY
    return {
        "id": iid,
        "kpi": kpi,
        "grain": grain,
        "dimension": dim,
        "dim_value": "X" if dim else None,
        "series_key": key or f"{kpi}|{grain}|{iid}",
        "started_at": start_at,
        "peak_at": start_at,
        "ended_at": start_at + (days - 1) * DAY,
        "value": value,
        "expected": 100.0,
        "deviation_pct": value - 100.0,
        "severity": severity,
    }


def ids(groups):
    return [[i["id"] for i in g] for g in groups]


def test_an_outage_seen_on_days_one_three_and_four_is_one_event_led_by_the_whole_business():
    items = [
        inc(1, dim="region", start=0),
        inc(2, kpi="revenue", start=2),  # a 3-day shift alarms on the third day
        inc(3, kpi="units", dim="category", start=3),  # a run of zeros on the fourth
        inc(4, start=0, severity="medium"),
    ]
    assert ids(incidents.events(items)) == [[2, 4, 1, 3]]  # whole business, then severity, then start
    assert ids(incidents.events(items, kpi="units")) == [[3, 2, 4, 1]]  # the KPI asked about first


def test_the_other_way_another_grain_a_later_time_and_a_rule_stand_alone():
    items = [
        inc(1),
        inc(2, value=300.0),  # above what was expected
        inc(3, grain="hour"),
        inc(4, start=10),  # a week later
        inc(5, key="rule:low-orders"),  # an alert rule someone asked for by name
        {**inc(6), "value": None},  # no direction
    ]
    assert sorted(ids(incidents.events(items))) == [[1], [2], [3], [4], [5], [6]]


def test_chains_join_in_any_order_of_the_input():
    chain = [inc(1, start=0), inc(2, start=3), inc(3, start=6), inc(4, start=20)]
    for items in (chain, chain[::-1], [chain[2], chain[0], chain[3], chain[1]]):
        groups = incidents.events(items)
        assert sorted(sorted(g) for g in ids(groups)) == [[1, 2, 3], [4]]


def test_the_widest_event_comes_first_among_equally_severe_ones():
    items = [inc(1, start=30), inc(2, start=0), inc(3, start=1, dim="region"), inc(4, start=2, kpi="units")]
    assert ids(incidents.weightiest_first(incidents.events(items))) == [[2, 4, 3], [1]]
